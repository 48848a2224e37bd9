"""The application factory: state on AppKeys; the pool, the listener and the connections in cleanup_ctx; routes."""
from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import aiohttp_session
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server.accounts.secret import Sealer, load_secret
from server.accounts.sessions import session_storage
from server.config import Config
from server.live.listener import Listener
from server.live.subscriptions import Registry
from server.resources import RESOURCES as DECLARED_RESOURCES
from server.resources import check_queries
from server.resources.declaration import Resource
from server.store.db import open_database
from server.store.queries import load_queries
from server.web.auth_api import add_auth_routes, over_https
from server.web.connection import Connections
from server.web.front import CLIENT, front_door
from server.web.health import setup_operations
from server.web.http import http_errors
from server.web.keys import ASYNCAPI, CONFIG, CONNECTIONS, DB, LISTENER, METRICS, OPENAPI, RESOURCES, SEALER, SUBSCRIPTIONS
from server.web.asyncapi import asyncapi_view, build_asyncapi
from server.web.openapi import build_openapi, openapi_view
from server.web.page import add_page_routes
from server.web.rest import add_resource_routes
from server.web.ws import websocket_handler

log = logging.getLogger(__name__)


class AccessLogger(AbstractAccessLogger):
    """One line a request, with the path only: query strings may carry a token."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        # The same fields apart for JSON logs (server/ops/logs.py); the path only, never the query.
        remote = request.get(CLIENT) or request.remote  # relayed by a trusted proxy: the client's address
        fields = {"remote": remote, "method": request.method, "path": request.path,
                  "status": response.status, "bytes": response.body_length, "ms": round(time * 1000, 1)}
        self.logger.info('%s "%s %s" %s %s %.1fms', remote, request.method, request.path,
                         response.status, response.body_length, time * 1000, extra={"access": fields})


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """With workers, a scrape reads every worker's files: the counts kept in plain numbers reach
    them within FLUSH_SECONDS; all of them at exit (first in, so last out: after the sockets close)."""
    metrics = app[METRICS]
    task = asyncio.create_task(metrics.keep_flushing()) if metrics.multiprocess_dir is not None else None
    yield
    if task is not None:
        task.cancel()
        await asyncio.wait([task])
    metrics.flush()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    assert config.database_url, "the embedded PostgreSQL is started before the app (server/ops/cli.py)"
    app[DB] = await open_database(config.database_url, load_queries(config.sql_dir),
                                  minsize=config.db_pool_min, maxsize=config.db_pool_max,
                                  timeout=config.db_timeout_seconds,
                                  idempotency_retain=config.idempotency_retain_seconds)
    check_queries(tuple(app[RESOURCES].values()), app[DB].queries)
    yield
    await app[DB].close()


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """The change listener and the periodic pruning of the change log, for this process."""
    config = app[CONFIG]
    app[SUBSCRIPTIONS] = Registry(app[RESOURCES], config.max_subscriptions)
    app[LISTENER] = listener = Listener(
        app[DB], app[SUBSCRIPTIONS], poll_seconds=config.changes_poll_seconds,
        timeout=config.db_timeout_seconds, retain_seconds=config.changes_retain_seconds,
        retain_rows=config.changes_retain_rows, audit_seconds=config.audit_retain_seconds,
        grace_seconds=config.changes_listener_grace_seconds)
    tasks = [asyncio.create_task(listener.run()),
             asyncio.create_task(listener.prune_every(config.changes_prune_seconds))]
    try:  # serve once caught up, so /readyz (and READY=1) hold from the first request
        await asyncio.wait_for(listener.position(), config.db_timeout_seconds)
    except asyncio.TimeoutError:
        pass  # /readyz says "not ready" until the listener catches up
    yield
    for task in tasks:
        task.cancel()
    # Bounded: a listener whose cancel is lost (seen once in a few runs under uvloop, right after the
    # database was killed and restarted: the task stays "cancelling" with nothing left to wake it)
    # must not hold up the shutdown for ever.
    _, stuck = await asyncio.wait(tasks, timeout=config.db_timeout_seconds + 1)
    if stuck:
        log.warning("the change listener did not stop within %.0f s; shutting down without it",
                    config.db_timeout_seconds + 1)
    await listener.forget()


async def connections_ctx(app: web.Application) -> AsyncIterator[None]:
    """The open sockets and their credential re-check; after the pool, so stopped before it closes."""
    app[CONNECTIONS] = connections = Connections(app[CONFIG], app[DB], app[RESOURCES], app[LISTENER],
                                                 app[SUBSCRIPTIONS], app[METRICS])
    async with connections.watching_credentials():
        yield


async def close_connections(app: web.Application) -> None:
    await app[CONNECTIONS].close_all()  # each after its reply in flight, with 1001


def create_app(config: Config, resources: tuple[Resource, ...] = DECLARED_RESOURCES,
               metrics_dir: str | None = None) -> web.Application:
    """`metrics_dir`: where the workers of `serve --workers N` share their metrics (server/ops/workers.py)."""
    secret = load_secret(config)
    app = web.Application()
    aiohttp_session.setup(app, session_storage(config, secret, over_https))
    app.middlewares.append(http_errors)  # inside the session middleware, which then sees every answer
    app.middlewares.insert(0, front_door(config))  # outermost: a foreign Host costs nothing more
    app[CONFIG] = config
    app[RESOURCES] = {resource.name: resource for resource in resources}
    app[SEALER] = Sealer(secret)
    app[OPENAPI] = build_openapi(resources)
    app[ASYNCAPI] = build_asyncapi(resources, app[OPENAPI])
    app.cleanup_ctx.append(metrics_ctx)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.cleanup_ctx.append(connections_ctx)
    setup_operations(app, metrics_dir)  # /healthz, /readyz, /metrics (server/web/health.py)
    app.on_shutdown.append(close_connections)
    app.router.add_get("/ws/", websocket_handler)
    app.router.add_get("/ws", websocket_handler)
    add_resource_routes(app)
    add_auth_routes(app)
    app.router.add_get("/api/openapi.json", openapi_view)
    app.router.add_get("/api/asyncapi.json", asyncapi_view)
    add_page_routes(app)
    return app
