"""The application factory: state on AppKeys, the pool and the change listener in cleanup_ctx, routes."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import aiohttp_session
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server.config import Config
from server.dashboard import add_dashboard_routes
from server.db import open_database
from server.drain import close_websockets
from server.health import setup_operations
from server.keys import (CONFIG, DATABASE_URL, DB, LISTENER, OPENAPI, REPLYING, RESOURCES, SEALER,
                         SOCKET_COUNTER, SUBSCRIPTIONS, WEBSOCKETS)
from server.limits import SocketCounter
from server.live import Listener
from server.openapi import build_openapi, openapi_view
from server.resources import RESOURCES as DECLARED_RESOURCES, check_queries
from server.resources.base import Resource
from server.rest import add_resource_routes, api_errors
from server.rest_auth import add_auth_routes
from server.secret import Sealer, load_secret
from server.sessions import session_storage
from server.sockets import credential_watch_ctx
from server.sql import load_queries
from server.subscriptions import Registry
from server.ws import websocket_handler


class AccessLogger(AbstractAccessLogger):
    """One line a request, with the path only: query strings may carry a token."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %s %.1fms', request.remote, request.method, request.path,
                         response.status, response.body_length, time * 1000)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    app[DB] = await open_database(app[DATABASE_URL], load_queries(config.sql_dir),
                                  minsize=config.db_pool_min, maxsize=config.db_pool_max,
                                  timeout=config.db_timeout_seconds)
    check_queries(tuple(app[RESOURCES].values()), app[DB].queries)
    yield
    await app[DB].close()


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """The change listener and the periodic pruning of the change log, for this process."""
    config = app[CONFIG]
    app[SUBSCRIPTIONS] = Registry(app[RESOURCES])
    app[LISTENER] = listener = Listener(
        app[DB], app[SUBSCRIPTIONS], poll_seconds=config.changes_poll_seconds,
        timeout=config.db_timeout_seconds, retain_seconds=config.changes_retain_seconds,
        retain_rows=config.changes_retain_rows)
    tasks = [asyncio.create_task(listener.run()),
             asyncio.create_task(listener.prune_every(config.changes_prune_seconds))]
    try:  # serve once caught up, so /readyz (and READY=1) hold from the first request
        await asyncio.wait_for(listener.position(), config.db_timeout_seconds)
    except asyncio.TimeoutError:
        pass  # /readyz says "not ready" until the listener catches up
    yield
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)


def create_app(config: Config, database_url: str,
               resources: tuple[Resource, ...] = DECLARED_RESOURCES) -> web.Application:
    secret = load_secret(config)
    # api_errors is outermost, so the session middleware still sees (and saves) every answer.
    app = web.Application(middlewares=[api_errors])
    aiohttp_session.setup(app, session_storage(config, secret))
    app[CONFIG] = config
    app[DATABASE_URL] = database_url
    app[RESOURCES] = {resource.name: resource for resource in resources}
    app[WEBSOCKETS] = {}
    app[REPLYING] = {}
    app[SOCKET_COUNTER] = SocketCounter(config.max_sockets, config.max_sockets_per_user)
    app[SEALER] = Sealer(secret)
    app[OPENAPI] = build_openapi(resources)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.cleanup_ctx.append(credential_watch_ctx)  # after the pool: stopped before it closes
    setup_operations(app)  # /healthz, /readyz, /metrics (server/health.py)
    app.on_shutdown.append(close_websockets)
    app.router.add_get("/ws/", websocket_handler)
    app.router.add_get("/ws", websocket_handler)
    add_resource_routes(app)
    add_auth_routes(app)
    app.router.add_get("/api/openapi.json", openapi_view)
    add_dashboard_routes(app)
    return app
