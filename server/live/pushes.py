"""The events one change becomes: computed once, whoever receives it.

A change's object JSON and cursor are computed at most once, and so is each distinct filter's
verdict; the socket's connection then frames an event around its subscription's request_id
(server/web/connection.py).

Filter semantics of `subscribe`: the filters are evaluated on the row before and after the
change (server/live/filters.py, the same rules as `list`), as DCRF's group transitions do:
matched after -> `update` (or `create` if it did not match before: created, or entered the
filter); matched only before -> `delete` with {"pk": id} (deleted, or left the filter);
neither -> nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from typing import Any, Callable, Mapping, NamedTuple, Protocol

from marshmallow import Schema

from schemas.fields import DateTime
from server.accounts.users import User
from server.live.cursors import Cursor
from server.live.filters import FilterTerm, filters_match

Row = dict[str, Any]


class Stream(Protocol):
    """What live changes need of a resource declaration (server/resources/declaration.py)."""

    name: str
    schema_instance: Schema
    dump: Callable[[Mapping[str, Any]], dict[str, Any]]
    writable_fields: list[str]

    def allows(self, user: User, action: str | None) -> bool: ...


@dataclasses.dataclass(frozen=True)
class Change:
    """One row of the change log."""

    id: int
    resource: str
    object_id: int
    op: str                       # create | update | delete
    data: Row                     # the row after the change (for a delete, before it), as JSON
    old: Row | None               # for an update: the previous value of each changed column


class Event(NamedTuple):
    """One push, but for the request_id of the subscription it goes to."""

    stream_json: str
    data_json: str
    action: str
    status: int
    cursor: str | None            # subscribe's pushes carry one; subscribe_instance's do not


def snapshot_row(schema: Schema, data: Mapping[str, Any]) -> Row:
    """A row as the database would return it, from its JSON snapshot (datetimes parsed)."""
    row = {}
    for name, field in schema.fields.items():
        value = data.get(name)
        if isinstance(field, DateTime) and isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        row[name] = value
    return row


class Push:
    """One change as subscribers see it; each part is computed at most once."""

    def __init__(self, stream: Stream, change: Change, cursor: Cursor) -> None:
        self.stream, self.change, self.cursor = stream, change, cursor
        self._verdicts: dict[tuple[FilterTerm, ...], Event | None] = {}

    @functools.cached_property
    def after(self) -> Row | None:
        return None if self.change.op == "delete" else snapshot_row(self.stream.schema_instance, self.change.data)

    @functools.cached_property
    def before(self) -> Row | None:
        if self.change.op == "create":
            return None
        return snapshot_row(self.stream.schema_instance, {**self.change.data, **(self.change.old or {})})

    @functools.cached_property
    def stream_json(self) -> str:
        return json.dumps(self.stream.name)

    @functools.cached_property
    def object_json(self) -> str:
        return json.dumps(self.stream.dump(self.after))

    @functools.cached_property
    def pk_json(self) -> str:
        return json.dumps({"pk": self.change.object_id})

    @functools.cached_property
    def cursor_text(self) -> str:
        return str(self.cursor)

    @functools.cached_property
    def instance_event(self) -> Event | None:
        """DCRF's subscribe_instance pushes: update and delete, no cursor."""
        if self.change.op == "update":
            return Event(self.stream_json, self.object_json, "update", 200, None)
        if self.change.op == "delete":
            return Event(self.stream_json, self.pk_json, "delete", 204, None)
        return None

    def stream_event(self, terms: tuple[FilterTerm, ...]) -> Event | None:
        """subscribe's push for these filters (None: the change is not theirs)."""
        if terms not in self._verdicts:
            self._verdicts[terms] = self._stream_event(terms)
        return self._verdicts[terms]

    def _stream_event(self, terms: tuple[FilterTerm, ...]) -> Event | None:
        if filters_match(terms, self.after):
            action = "update" if filters_match(terms, self.before) else "create"
            return Event(self.stream_json, self.object_json, action, 200, self.cursor_text)
        if filters_match(terms, self.before):
            return Event(self.stream_json, self.pk_json, "delete", 204, self.cursor_text)
        return None
