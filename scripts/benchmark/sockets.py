"""Worker jobs that hold many sockets: idle sockets (memory, open rate) and subscribers (fan-out)."""
from __future__ import annotations

import asyncio
import json
import time
from multiprocessing.connection import Connection
from typing import Any

from benchmark import wire
from benchmark.codec import loads
from benchmark.load import Target
from benchmark.workers import hear, tell


async def open_many(target: Target, count: int, concurrency: int, on_message: Any = None,
                    budget: float | None = None) -> tuple[list[wire.WebSocket], list[str], float]:
    """Open `count` authenticated sockets, `concurrency` handshakes at a time; (sockets, errors, seconds).

    With a `budget` (seconds), handshakes not done by then are abandoned and counted as errors, so a
    server that stops answering costs bounded time."""
    sockets: list[wire.WebSocket] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            try:
                handler = on_message(index) if on_message else None
                sockets.append(await wire.connect(target.host, target.port, target.ws_url_path, handler, 30))
            except (OSError, asyncio.TimeoutError, wire.HandshakeError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    started = time.monotonic()
    tasks = [asyncio.ensure_future(one(index)) for index in range(count)]
    _, pending = await asyncio.wait(tasks, timeout=budget)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        errors.append(f"{len(pending)} sockets not opened within {budget:.0f} s")
    return sockets, errors, time.monotonic() - started


async def hold_idle(conn: Connection, target: Target, count: int, concurrency: int) -> dict[str, Any]:
    """Open the sockets from the parent's start time, report, keep them idle until it has measured."""
    tell(conn, "ready")
    await asyncio.sleep(max(0.0, hear(conn) - time.monotonic()))
    cpu = time.process_time()
    sockets, errors, _ = await open_many(target, count, concurrency)
    tell(conn, {"opened": len(sockets), "errors": len(errors), "error_examples": errors[:3],
                "finished_at": time.monotonic(), "client_cpu_s": time.process_time() - cpu})
    await asyncio.get_running_loop().run_in_executor(None, hear, conn)
    alive = sum(not ws.closed.done() for ws in sockets)
    for ws in sockets:
        ws.close()
    await asyncio.sleep(0.5)
    return {"still_open": alive}


class Subscriber:
    """Records when each pushed update arrives, keyed by the tag the writer put in last_name."""

    def __init__(self, receipts: list[tuple[str, float]], replies: list[dict[str, Any]]) -> None:
        self.receipts, self.replies = receipts, replies

    def __call__(self, data: bytes) -> None:
        now = time.monotonic()
        payload = loads(data)["payload"]
        if payload.get("action") == "update" and isinstance(payload.get("data"), dict):
            self.receipts.append((payload["data"].get("last_name", ""), now))
        else:
            self.replies.append(payload)


async def subscribe_and_listen(conn: Connection, target: Target, first: int, count: int, pk: int,
                               budget: float) -> dict[str, Any]:
    """Open `count` sockets subscribed to patient `pk` within `budget` s; record pushes until the parent says stop."""
    receipts: list[tuple[str, float]] = []
    replies: list[dict[str, Any]] = []
    deadline = time.monotonic() + budget
    sockets, errors, seconds = await open_many(target, count, 64, lambda _: Subscriber(receipts, replies), budget)
    for index, ws in enumerate(sockets):
        frame = {"stream": target.live_stream,
                 "payload": {"action": "subscribe_instance", "pk": pk, "request_id": f"sub-{first + index}"}}
        ws.send(wire.client_frame(json.dumps(frame).encode()))
    deadline = max(deadline, time.monotonic() + 10)  # at least 10 s for the subscription replies
    while len(replies) < len(sockets) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    statuses = [reply.get("response_status") for reply in replies]
    tell(conn, {"subscribed": statuses.count(201), "open_errors": errors[:3], "opened": len(sockets),
                "unanswered": len(sockets) - len(replies), "open_seconds": seconds,
                "refusals": [r for r in replies if r.get("response_status") != 201][:1]})
    writes = await asyncio.get_running_loop().run_in_executor(None, hear, conn)
    await _drain(receipts, writes * statuses.count(201))
    alive = sum(not ws.closed.done() for ws in sockets)
    for ws in sockets:
        ws.close()
    return {"receipts": receipts, "still_open": alive}


DRAIN_QUIET, DRAIN_CAP = 3.0, 60.0  # seconds: pushes later than this are counted as lost


async def _drain(receipts: list[tuple[str, float]], expected: int, quiet: float = DRAIN_QUIET,
                 cap: float = DRAIN_CAP) -> None:
    """Wait for the last pushes: until all arrived, or none came for `quiet` seconds."""
    deadline, last_count, last_change = time.monotonic() + cap, -1, time.monotonic()
    while len(receipts) < expected and time.monotonic() < deadline:
        if len(receipts) != last_count:
            last_count, last_change = len(receipts), time.monotonic()
        elif time.monotonic() - last_change > quiet:
            return
        await asyncio.sleep(0.05)
