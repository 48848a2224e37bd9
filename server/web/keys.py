"""Every piece of application state, as typed AppKeys."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from aiohttp import web

from server.accounts.secret import Sealer
from server.config import Config
from server.live.listener import Listener
from server.live.subscriptions import Registry
from server.resources.declaration import Resource
from server.store.db import Database
from server.web.connection import Connections
from server.web.metrics import Metrics

CONFIG = web.AppKey("config", Config)      # its database_url is the one this process uses
DB = web.AppKey("db", Database)
RESOURCES = web.AppKey("resources", dict[str, Resource])
SEALER = web.AppKey("sealer", Sealer)
OPENAPI = web.AppKey("openapi", dict[str, Any])  # built once from the declarations
ASYNCAPI = web.AppKey("asyncapi", dict[str, Any])  # the same, for /ws/

# Live changes (server/live/): the listener (its .health, for /readyz) and who is subscribed.
LISTENER = web.AppKey("listener", Listener)
SUBSCRIPTIONS = web.AppKey("subscriptions", Registry)

# Every open /ws/ connection (server/web/connection.py): re-checked while open, closed at shutdown.
CONNECTIONS = web.AppKey("connections", Connections)

# Operations (server/web/health.py): /readyz passes when every probe returns True.
ReadinessProbe = Callable[[web.Application], Awaitable[bool]]
METRICS = web.AppKey("metrics", Metrics)
READINESS_PROBES = web.AppKey("readiness_probes", list[ReadinessProbe])
