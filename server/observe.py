"""What ws.py reports about each connection and request: one log line with the connection id, and the metrics."""
from __future__ import annotations

import logging
from typing import Any, Mapping

from aiohttp import web

from server.keys import METRICS, RESOURCES

log = logging.getLogger("server.ws")


def connection_opened(app: web.Application, connection: int, username: str, remote: str | None) -> None:
    app[METRICS].websockets_open.inc()
    log.info("ws %d open: user %s from %s", connection, username, remote, extra={"connection": connection})


def connection_closed(app: web.Application, connection: int, code: int | None) -> None:
    app[METRICS].websockets_open.dec()
    log.info("ws %d closed: code %s", connection, code, extra={"connection": connection})


def frame_received(app: web.Application) -> None:
    app[METRICS].frames.labels("in").inc()


def frame_sent(app: web.Application) -> None:
    """Call once per frame written to a socket (replies and, with issue 4, pushes)."""
    app[METRICS].frames.labels("out").inc()


def _labels(app: web.Application, stream: str | None, action: Any) -> tuple[str, str]:
    # Labels come from the server's own names only: client text would grow the metrics without bound.
    if stream is None:
        return "(invalid frame)", "(none)"
    resource = app[RESOURCES].get(stream)
    if resource is None:
        return "(unknown stream)", "(none)"
    if isinstance(action, str) and action in resource.actions:
        return stream, action
    return stream, "(unknown action)"


def request_answered(app: web.Application, connection: int, stream: str | None,
                     reply: Mapping[str, Any], seconds: float) -> None:
    """Count and time one reply; a failed one also gets a log line (never the request's data)."""
    status = reply["response_status"]
    stream_label, action_label = _labels(app, stream, reply["action"])
    metrics = app[METRICS]
    metrics.requests.labels(stream_label, action_label, str(status)).inc()
    metrics.request_seconds.labels(stream_label, action_label).observe(seconds)
    if status >= 400:
        log.log(logging.WARNING if status >= 500 else logging.INFO,
                "ws %d request failed: stream %s action %s status %d", connection, stream_label,
                action_label, status, extra={"connection": connection})
