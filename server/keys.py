"""Every piece of application state, as typed AppKeys."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from server.auth import Principal
from server.config import Config
from server.db import Database
from server.limits import SocketCounter
from server.resources.base import Resource
from server.secret import Sealer

CONFIG = web.AppKey("config", Config)
DATABASE_URL = web.AppKey("database_url", str)
DB = web.AppKey("db", Database)
RESOURCES = web.AppKey("resources", dict[str, Resource])
# Every open socket and who opened it (server/sockets.py re-checks their credentials).
WEBSOCKETS = web.AppKey("websockets", dict[web.WebSocketResponse, Principal])
SEALER = web.AppKey("sealer", Sealer)
OPENAPI = web.AppKey("openapi", dict[str, Any])  # built once from the declarations
# server/limits.py and server/drain.py: open sockets per user; each socket's lock held while it replies.
SOCKET_COUNTER = web.AppKey("socket_counter", SocketCounter)
REPLYING = web.AppKey("replying", dict[web.WebSocketResponse, asyncio.Lock])
