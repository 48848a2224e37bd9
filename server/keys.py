"""Every piece of application state, as typed AppKeys."""
from __future__ import annotations

import weakref
from typing import Awaitable, Callable

from aiohttp import web

from server.config import Config
from server.db import Database
from server.metrics import Metrics
from server.resources.base import Resource

CONFIG = web.AppKey("config", Config)
DATABASE_URL = web.AppKey("database_url", str)
DB = web.AppKey("db", Database)
RESOURCES = web.AppKey("resources", dict[str, Resource])
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse])

# Operations (server/health.py): /readyz passes when every probe returns True.
ReadinessProbe = Callable[[web.Application], Awaitable[bool]]
METRICS = web.AppKey("metrics", Metrics)
READINESS_PROBES = web.AppKey("readiness_probes", list[ReadinessProbe])
