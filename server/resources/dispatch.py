"""One dispatch for both transports: permission, then the action, and one except ladder to an outcome.

/ws/ frames the outcome as an envelope (server/web/connection.py), /api/ as a DRF-shaped HTTP
answer (server/web/rest.py); both call run_action.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Mapping, NamedTuple

from server.errors import ApiError, Forbidden, InternalError, MethodNotAllowed
from server.resources.declaration import Call

log = logging.getLogger(__name__)

# A payload, or (REST) how to read it: a body is read only after the permission check.
Payload = Mapping[str, Any] | Callable[[], Awaitable[Mapping[str, Any]]]


class Outcome(NamedTuple):
    """What a request came to: a status and data, or the error that answers it."""

    status: int
    data: Any = None
    error: ApiError | None = None

    @classmethod
    def failed(cls, error: ApiError) -> Outcome:
        return cls(error.status, None, error)


async def run_action(call: Call, action: str | None, payload: Payload, asked: str | None = None) -> Outcome:
    """Check and run one request; always an outcome, whatever went wrong.

    `action` is None where the transport names nothing this resource has; `asked` is how a 405
    names what was asked for (the action by default; REST says the HTTP method)."""
    try:
        if not call.resource.allows(call.user, action):
            raise Forbidden()
        handler = call.resource.actions.get(action) if action is not None else None
        if handler is None:
            raise MethodNotAllowed([f'Method "{asked or action}" not allowed.'])
        status, data = await handler(call, payload if not callable(payload) else await payload())
    except ApiError as exc:
        return Outcome.failed(exc)
    except Exception:
        log.exception("request failed: stream %s action %s", call.resource.name, asked or action)
        return Outcome.failed(InternalError())
    return Outcome(status, data)
