"""Operations endpoints: /healthz (alive), /readyz (can serve), /metrics (Prometheus), none authenticated."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import AsyncIterator, Iterable, Iterator

from aiohttp import web

from server.config import networks
from server.resources.declaration import Resource
from server.web.front import CLIENT
from server.web.keys import CONFIG, DB, LISTENER, METRICS, READINESS_PROBES, RESOURCES, ReadinessProbe
from server.web.metrics import Metrics
from server.web.rest import resource_routes

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0        # seconds; a load balancer asks often and wants a quick answer
POOL_SAMPLE_SECONDS = 2.0  # how often each worker copies its pool's state into the gauges


def plain(status: int, text: str) -> web.Response:
    # Deliberately bare: no version, no reason, nothing about the database (the log has that).
    return web.Response(status=status, text=text + "\n", headers={"Cache-Control": "no-store"})


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers."""
    return plain(200, "ok")


async def database_answers(app: web.Application) -> bool:
    """Readiness probe: `SELECT 1` through the pool within PROBE_TIMEOUT."""
    async with asyncio.timeout(min(PROBE_TIMEOUT, app[CONFIG].db_timeout_seconds)):
        row = await app[DB].fetch_one("health.ping")
    return row == {"ok": 1}


async def is_ready(app: web.Application) -> bool:
    """Every readiness probe passes: the database answers and the change listener is connected and caught up."""
    for probe in app[READINESS_PROBES]:
        try:
            ready = await probe(app)
        except Exception as exc:  # any failure means "not ready"; why goes to the log, not the reply
            log.warning("not ready: %s: %s", getattr(probe, "__name__", probe), str(exc).strip() or type(exc).__name__)
            ready = False
        if not ready:
            return False
    return True


async def readyz(request: web.Request) -> web.Response:
    """200 when the process can serve, else 503; a load balancer takes it out of rotation meanwhile."""
    return plain(200, "ready") if await is_ready(request.app) else plain(503, "not ready")


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text format, to clients in `metrics_allow` only (activity volume is not for everyone).
    A request relayed by a proxy not in trusted_proxies is nobody's: its peer is the proxy, not the client."""
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        address = None
    relayed_by_stranger = "X-Forwarded-For" in request.headers and CLIENT not in request
    if address is None or relayed_by_stranger or not any(address in network for network in networks(request.app[CONFIG].metrics_allow)):
        raise web.HTTPNotFound()  # the same answer as for a path that does not exist
    sample_pool(request.app)
    body, content_type = request.app[METRICS].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def sample_pool(app: web.Application) -> None:
    app[METRICS].sample_process()
    if DB in app:
        app[METRICS].set_pool(*app[DB].pool_stats())
    if LISTENER in app:
        app[METRICS].set_listener_lag(app[LISTENER].health.pending_age(asyncio.get_running_loop().time()))


async def listener_ready(app: web.Application) -> bool:
    """The change listener holds its connection and has caught up with the log lately."""
    config, health = app[CONFIG], app[LISTENER].health
    lag = health.lag(asyncio.get_running_loop().time())
    return health.connected and lag is not None and lag <= 3 * config.changes_poll_seconds + config.db_timeout_seconds


async def pool_sampler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Keep this process's pool gauges fresh: a scrape is answered by whichever worker accepts it."""
    async def sample_forever() -> None:
        while True:
            sample_pool(app)
            await asyncio.sleep(POOL_SAMPLE_SECONDS)

    task = asyncio.create_task(sample_forever())
    yield
    task.cancel()
    app[METRICS].set_pool(0, 0, 0)


def served_requests(resources: Iterable[Resource]) -> Iterator[tuple[str, str, str]]:
    """(transport, stream, action) of every request the transports serve: /ws/ every action, /api/ its routes'."""
    for resource in resources:
        yield from (("ws", resource.name, action) for action in resource.actions)
        yield from (("rest", resource.name, action) for _, methods in resource_routes(resource)
                    for action in methods.values())


def setup_operations(app: web.Application, metrics_dir: str | None = None) -> None:
    """Install metrics, readiness probes and the three endpoints; call after the database's cleanup_ctx."""
    app[METRICS] = Metrics(metrics_dir)
    app[METRICS].expect_requests(served_requests(app[RESOURCES].values()))
    probes: list[ReadinessProbe] = [database_answers, listener_ready]
    app[READINESS_PROBES] = probes
    app.cleanup_ctx.append(pool_sampler_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
