"""One serving process: the app on its port, READY once it can serve, watchdog pings, graceful stop on SIGTERM."""
from __future__ import annotations

import asyncio
import logging
import os
import contextlib
import dataclasses
import signal
from typing import AsyncIterator, Awaitable, Callable

import uvloop
from aiohttp import web

from server.app import AccessLogger, create_app
from server.web.keys import METRICS
from server.config import Config
from server.ops.tls import tls_context
from server.store.db import DatabaseUnavailable
from server.web.health import is_ready

log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT = 10.0  # seconds for open requests after the sockets got 1001; systemd allows 15

Report = Callable[[str], None]  # receives "READY=1", "WATCHDOG=1", "STOPPING=1"


@dataclasses.dataclass(frozen=True)
class ServeSpec:
    """What a serving process needs; picklable, so a spawned worker gets it as is."""

    config: Config                    # with the database_url to use (the embedded one resolved)
    host: str
    port: int
    reuse_port: bool = False          # several processes listen on the same port
    watchdog: float | None = None     # seconds between WATCHDOG=1 reports; None: no watchdog
    metrics_dir: str | None = None    # the workers' shared metrics (server/ops/workers.py)
    announce: bool = True             # log "serving ..." once bound (a worker leaves that to its parent)
    replacement: bool = False         # a worker started in place of one that died (counted in /metrics)


def announce(spec: ServeSpec) -> None:
    """The start-up line, once the port is ours; through logging, so that it is JSON with --log-format json."""
    secure = "s" if spec.config.certfile else ""
    log.info("dashboard-server: serving ws%s://%s:%d/ws/, the dashboard at http%s://%s:%d/",
             secure, spec.host, spec.port, secure, spec.host, spec.port)


def cannot_listen(spec: ServeSpec, exc: OSError) -> OSError:
    """One clear line for a port that is taken (or not ours to take)."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)  # the loop's own wording varies
    return OSError(f"cannot listen on {spec.host}:{spec.port}: {reason.lower()} (is another server running there?)")


def run(main: Awaitable[None]) -> None:
    """Run a serving coroutine on uvloop: more requests per CPU second (docs/benchmarks.md)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def serve(spec: ServeSpec, report: Report) -> None:
    """Serve until SIGTERM or SIGINT; report READY=1 once the port accepts and the database answers."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(spec.config, metrics_dir=spec.metrics_dir)
    if spec.replacement:  # each replacement counts itself; with workers, /metrics adds up every process's
        app[METRICS].worker_restarts.inc()
    # keepalive_timeout: a connection that sends no request (no handshake) in time is dropped.
    runner = web.AppRunner(app, access_log_class=AccessLogger, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           keepalive_timeout=spec.config.handshake_timeout_seconds)
    await runner.setup()  # opens the database pool (cleanup_ctx); raises DatabaseUnavailable
    try:
        try:
            await web.TCPSite(runner, spec.host, spec.port, reuse_port=spec.reuse_port or None,
                              ssl_context=tls_context(spec.config)).start()
        except OSError as exc:
            raise cannot_listen(spec, exc) from None
        if spec.announce:
            announce(spec)
        if not await became_ready(app, spec.config.db_timeout_seconds * 2):
            raise DatabaseUnavailable("the database does not answer (or the change listener cannot catch up)")
        report("READY=1")
        async with watchdog_pings(spec.watchdog, report):
            await stop.wait()
        report("STOPPING=1")
    finally:
        await runner.cleanup()  # stops accepting, closes sockets with 1001, then the pool


async def became_ready(app: web.Application, within: float) -> bool:
    """Wait until every readiness probe passes (the change listener's first pass takes a moment)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await is_ready(app):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@contextlib.asynccontextmanager
async def watchdog_pings(interval: float | None, report: Report) -> AsyncIterator[None]:
    """WATCHDOG=1 every interval, from this event loop: a blocked loop stops the pings, and systemd notices."""
    async def ping_forever(every: float) -> None:
        while True:
            report("WATCHDOG=1")
            await asyncio.sleep(every)

    task = asyncio.create_task(ping_forever(interval)) if interval else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
