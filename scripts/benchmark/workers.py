"""Client worker processes: each runs one coroutine on its own event loop (uvloop when installed)."""
from __future__ import annotations

import asyncio
import multiprocessing
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable, Coroutine

Job = Callable[..., Coroutine[Any, Any, Any]]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def _entry(job: Job, conn: Connection, args: tuple[Any, ...]) -> None:
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            result = runner.run(job(conn, *args))
        conn.send(("result", result))
    except BaseException:  # the parent must hear about it, whatever it was
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class Worker:
    """A forked client process running job(conn, *args); talk to it with send()/receive()."""

    def __init__(self, job: Job, *args: Any) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_entry, args=(job, child, args), daemon=True)
        self.process.start()
        child.close()

    def receive(self, timeout: float = 120.0) -> Any:
        """The worker's next message; raises if it failed or went silent."""
        if not self.conn.poll(timeout):
            self.process.kill()
            raise RuntimeError(f"client worker silent for {timeout:.0f} s")
        try:
            kind, value = self.conn.recv()
        except EOFError:
            raise RuntimeError("client worker died") from None
        if kind == "error":
            raise RuntimeError(f"client worker failed:\n{value}")
        return value

    def send(self, value: Any) -> None:
        self.conn.send(("message", value))

    def join(self) -> None:
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


def tell(conn: Connection, value: Any) -> None:
    """From inside a worker: an intermediate message to the parent."""
    conn.send(("message", value))


def hear(conn: Connection) -> Any:
    """From inside a worker: wait for the parent's next message."""
    return conn.recv()[1]


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """(first_index, count) for each part; no empty parts."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    out, first = [], 0
    for part in range(parts):
        count = base + (1 if part < extra else 0)
        out.append((first, count))
        first += count
    return out
