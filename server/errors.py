"""The server's own errors: each carries its status and the protocol's exact text, for both transports.

Whatever raises them (an action, authentication, a limit, the database module), one mapping turns
them into a reply: an envelope on /ws/ (server/web/connection.py), a DRF-shaped body on HTTP
(server/web/http.py).
"""
from __future__ import annotations

import math
from typing import Any, Mapping


class ApiError(Exception):
    """An expected failure of a request; `errors` is the envelope's errors list.

    `headers` only matter over HTTP (WWW-Authenticate, Allow, Retry-After, ...)."""

    status = 500
    headers: Mapping[str, str] = {}

    def __init__(self, errors: list[Any]) -> None:
        super().__init__(errors)
        self.errors = errors

    @property
    def detail(self) -> Any:
        """The first error: DRF's {"detail": ...} text, or a {field: messages} object."""
        return self.errors[0] if self.errors else "Error"


class BadRequest(ApiError):
    status = 400


class ReferenceViolation(BadRequest):
    """A write broke a foreign key: the generic actions name the field from the constraint."""

    def __init__(self, table: str | None, constraint: str | None) -> None:
        super().__init__([{"non_field_errors": ["Invalid data."]}])  # when no field claims it
        self.table = table
        self.constraint = constraint


class CheckViolation(BadRequest):
    """A write broke a CHECK constraint: the resource's schema names the field (constraint_errors)."""

    def __init__(self, table: str | None, constraint: str | None) -> None:
        super().__init__([{"non_field_errors": ["Invalid data."]}])  # when the schema claims none
        self.table = table
        self.constraint = constraint


class Unauthorized(ApiError):
    """No or bad credentials; over HTTP the 401 names the Token scheme, as DRF's does."""

    status = 401
    headers = {"WWW-Authenticate": "Token"}

    def __init__(self, detail: str = "Authentication credentials were not provided.") -> None:
        super().__init__([detail])


class Forbidden(ApiError):
    status = 403

    def __init__(self, detail: str = "You do not have permission to perform this action.") -> None:
        super().__init__([detail])


class NotFound(ApiError):
    status = 404

    def __init__(self, detail: str = "Not found") -> None:
        super().__init__([detail])


class PathNotFound(NotFound):
    """An HTTP path that names nothing at all, not even a malformed id: DRF's generic text.
    (A resource's NotFound is answered over HTTP as "No <Model> matches the given query.")"""

    def __init__(self) -> None:
        super().__init__("Not found.")


class MethodNotAllowed(ApiError):
    """`allow` is the HTTP Allow header (the methods a REST path serves), when there is one."""

    status = 405

    def __init__(self, errors: list[Any], allow: str | None = None) -> None:
        super().__init__(errors)
        if allow is not None:
            self.headers = {"Allow": allow}


class Conflict(ApiError):
    status = 409


class IdempotencyKeyTaken(Conflict):
    """A create whose idempotency key is recorded already (rolled back): the caller replays the first."""

    def __init__(self) -> None:
        super().__init__(["A create with this idempotency key was made already."])


class Gone(ApiError):
    """A cursor older than the retained change history."""

    status = 410

    def __init__(self) -> None:
        super().__init__(["Cursor expired, list again."])


class NotAcceptable(ApiError):
    """An HTTP Accept header that JSON does not satisfy."""

    status = 406

    def __init__(self) -> None:
        super().__init__(["Could not satisfy the request Accept header."])


class UnsupportedMediaType(ApiError):
    status = 415


class UpgradeRequired(ApiError):
    """A plain HTTP request to /ws/."""

    status = 426
    headers = {"Upgrade": "websocket"}

    def __init__(self) -> None:
        super().__init__(["Use a WebSocket client."])


class Throttled(ApiError):
    """Over a rate limit; `wait` is whole seconds until the next attempt may pass (DRF's text)."""

    status = 429

    def __init__(self, wait: float) -> None:
        self.wait = max(1, math.ceil(wait)) if math.isfinite(wait) else 86400
        unit = "second" if self.wait == 1 else "seconds"
        super().__init__([f"Request was throttled. Expected available in {self.wait} {unit}."])
        self.headers = {"Retry-After": str(self.wait)}


class TooManyConnections(ApiError):
    """A socket cap reached before the upgrade: 503 for the process, 429 for one user."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__([detail])
        self.status = status


class TooManySubscriptions(TooManyConnections):
    """A subscription cap: 429 for the socket, 503 for the process."""


class InternalError(ApiError):
    """An unexpected fault, already logged with its traceback."""

    def __init__(self) -> None:
        super().__init__(["Internal server error"])


class IdempotencyKeyReused(ApiError):
    """An idempotency key already used for a different request (Stripe answers 422 too)."""

    status = 422

    def __init__(self) -> None:
        super().__init__(["This idempotency key was already used with a different request."])


class Unavailable(ApiError):
    """The database cannot be reached; nothing was sent, or nothing can have been written: safe to retry."""

    status = 503

    def __init__(self) -> None:
        super().__init__(["Service unavailable, try again."])


class OutcomeUnknown(ApiError):
    """A write was sent and no answer came in time: it may or may not have been committed."""

    status = 504

    def __init__(self) -> None:
        super().__init__(["Outcome unknown: the database did not confirm this write in time. "
                          "Check before retrying, or retry with the same idempotency key."])
