"""`serve --workers N`: N forked server processes sharing one port through SO_REUSEPORT.

One Python process tops out at one core; with N of them the kernel spreads new connections
across the processes (each keeps its own event loop, pool and sockets). The parent only starts
them, forwards SIGTERM/SIGINT, and stops them all if one exits on its own. The embedded
PostgreSQL belongs to the parent, which stops it after the last worker has gone.
"""
from __future__ import annotations

import logging
import os
import signal
from typing import Callable

log = logging.getLogger(__name__)


def _start(serve: Callable[[], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        serve()
    except BaseException:  # a worker must never return into the parent's code
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        os._exit(code)


def run_workers(serve: Callable[[], None], count: int) -> int:
    """Run serve() in `count` child processes until they exit; non-zero if one died on its own."""
    children = {_start(serve) for _ in range(count)}
    stopping = False

    def stop(signum: int = signal.SIGTERM, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        while children:
            pid, code = os.wait()
            children.discard(pid)
            if not stopping:
                log.error("worker %d exited (status %d); stopping the others", pid, code)
                status = 1
                stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
