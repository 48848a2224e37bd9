"""The application factory: state on AppKeys, the pool in cleanup_ctx, routes."""
from __future__ import annotations

import logging
from typing import AsyncIterator

import aiohttp_session
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server.config import Config
from server.db import open_database
from server.drain import close_websockets
from server.keys import (CONFIG, DATABASE_URL, DB, OPENAPI, REPLYING, RESOURCES, SEALER, SOCKET_COUNTER,
                         WEBSOCKETS)
from server.limits import SocketCounter
from server.redact import install_redaction
from server.openapi import build_openapi, openapi_view
from server.resources import RESOURCES as DECLARED_RESOURCES, check_queries
from server.resources.base import Resource
from server.rest import add_resource_routes, api_errors
from server.rest_auth import add_auth_routes
from server.secret import Sealer, load_secret
from server.sessions import session_storage
from server.sockets import credential_watch_ctx
from server.sql import load_queries
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
    app.cleanup_ctx.append(credential_watch_ctx)  # after the pool: stopped before it closes
    app.on_shutdown.append(close_websockets)
    app.router.add_get("/ws/", websocket_handler)
    app.router.add_get("/ws", websocket_handler)
    add_resource_routes(app)
    add_auth_routes(app)
    app.router.add_get("/api/openapi.json", openapi_view)
    return app


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    install_redaction()  # server/redact.py: no token reaches the logs, whoever logs it
