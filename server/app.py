"""The application factory: state on AppKeys, the pool and the change listener in cleanup_ctx, routes."""
from __future__ import annotations

import asyncio
import logging
import weakref
from typing import AsyncIterator

from aiohttp import WSCloseCode, web
from aiohttp.abc import AbstractAccessLogger

from server.config import Config
from server.db import open_database
from server.keys import CONFIG, DATABASE_URL, DB, LISTENER, RESOURCES, SUBSCRIPTIONS, WEBSOCKETS
from server.live import Listener
from server.resources import RESOURCES as DECLARED_RESOURCES, check_queries
from server.resources.base import Resource
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
    yield
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)


async def close_websockets(app: web.Application) -> None:
    for ws in set(app[WEBSOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")


def create_app(config: Config, database_url: str,
               resources: tuple[Resource, ...] = DECLARED_RESOURCES) -> web.Application:
    app = web.Application()
    app[CONFIG] = config
    app[DATABASE_URL] = database_url
    app[RESOURCES] = {resource.name: resource for resource in resources}
    app[WEBSOCKETS] = weakref.WeakSet()
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.on_shutdown.append(close_websockets)
    app.router.add_get("/ws/", websocket_handler)
    app.router.add_get("/ws", websocket_handler)
    return app


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
