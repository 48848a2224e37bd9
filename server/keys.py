"""Every piece of application state, as typed AppKeys."""
from __future__ import annotations

import weakref

from aiohttp import web

from server.config import Config
from server.db import Database
from server.live import Listener
from server.resources.base import Resource
from server.subscriptions import Registry

CONFIG = web.AppKey("config", Config)
DATABASE_URL = web.AppKey("database_url", str)
DB = web.AppKey("db", Database)
RESOURCES = web.AppKey("resources", dict[str, Resource])
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse])
LISTENER = web.AppKey("listener", Listener)           # its .health: connected, lag (for /readyz)
SUBSCRIPTIONS = web.AppKey("subscriptions", Registry)
