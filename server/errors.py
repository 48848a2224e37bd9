"""The server's own errors: each carries the reply status and the protocol's exact text."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An expected failure of a request; `errors` is the envelope's errors list."""

    status = 500

    def __init__(self, errors: list[Any]) -> None:
        super().__init__(errors)
        self.errors = errors


class BadRequest(ApiError):
    status = 400


class ReferenceViolation(BadRequest):
    """A write broke a foreign key: the generic actions name the field from the constraint."""

    def __init__(self, table: str | None, constraint: str | None) -> None:
        super().__init__([{"non_field_errors": ["Invalid data."]}])  # when no field claims it
        self.table = table
        self.constraint = constraint


class Forbidden(ApiError):
    status = 403

    def __init__(self) -> None:
        super().__init__(["You do not have permission to perform this action."])


class NotFound(ApiError):
    status = 404

    def __init__(self) -> None:
        super().__init__(["Not found"])


class MethodNotAllowed(ApiError):
    status = 405


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    """The database cannot be reached; nothing was written."""

    status = 503

    def __init__(self) -> None:
        super().__init__(["Service unavailable, try again."])


def invalid(field: str, *messages: str) -> BadRequest:
    """A 400 in DRF's shape: one object mapping the field to its messages."""
    return BadRequest([{field: list(messages)}])


class Gone(ApiError):
    """A cursor older than the retained change history."""

    status = 410

    def __init__(self) -> None:
        super().__init__(["Cursor expired, list again."])
