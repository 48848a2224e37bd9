"""Every piece of application state, as typed AppKeys."""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from aiohttp import web

from server.auth import Principal
from server.config import Config
from server.db import Database
from server.limits import SocketCounter
from server.live import Listener
from server.metrics import Metrics
from server.outbox import Outbox
from server.resources.base import Resource
from server.secret import Sealer
from server.subscriptions import Registry

CONFIG = web.AppKey("config", Config)
DATABASE_URL = web.AppKey("database_url", str)
DB = web.AppKey("db", Database)
RESOURCES = web.AppKey("resources", dict[str, Resource])
# Every open socket and who opened it (server/sockets.py re-checks their credentials).
WEBSOCKETS = web.AppKey("websockets", dict[web.WebSocketResponse, Principal])
SEALER = web.AppKey("sealer", Sealer)
OPENAPI = web.AppKey("openapi", dict[str, Any])  # built once from the declarations

# Operations (server/health.py): /readyz passes when every probe returns True.
ReadinessProbe = Callable[[web.Application], Awaitable[bool]]
METRICS = web.AppKey("metrics", Metrics)
READINESS_PROBES = web.AppKey("readiness_probes", list[ReadinessProbe])

# Live changes (server/live.py, server/subscriptions.py).
LISTENER = web.AppKey("listener", Listener)           # its .health: connected, lag (for /readyz)
SUBSCRIPTIONS = web.AppKey("subscriptions", Registry)

# server/limits.py and server/drain.py: open sockets per user; each socket's lock (held while it
# replies) and outbox, so that shutdown sends the reply in flight before closing.
SOCKET_COUNTER = web.AppKey("socket_counter", SocketCounter)
REPLYING = web.AppKey("replying", dict[web.WebSocketResponse, tuple[asyncio.Lock, Outbox]])
