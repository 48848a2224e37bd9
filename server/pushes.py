"""The frames one change becomes: serialized once, whoever receives it.

A change's object JSON and cursor are computed at most once; each subscriber's frame is then
assembled around its request_id (server/protocol.py: encode_push).

Filter semantics of `subscribe`: the filters are evaluated on the row before and after the
change (server/listing.py, the same rules as `list`), as DCRF's group transitions do:
matched after -> `update` (or `create` if it did not match before: created, or entered the
filter); matched only before -> `delete` with {"pk": id} (deleted, or left the filter);
neither -> nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from typing import Any, Mapping

from marshmallow import Schema

from schemas.fields import DateTime
from server.cursors import Cursor
from server.listing import FilterTerm, filters_match
from server.protocol import encode_push
from server.resources.base import Resource

Row = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Change:
    """One row of the change log."""

    id: int
    resource: str
    object_id: int
    op: str                       # create | update | delete
    data: Row                     # the row after the change (for a delete, before it), as JSON
    old: Row | None               # for an update: the previous value of each changed column


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

    def __init__(self, resource: Resource, schema: Schema, change: Change, cursor: Cursor) -> None:
        self.resource, self.schema, self.change, self.cursor = resource, schema, change, cursor

    @functools.cached_property
    def after(self) -> Row | None:
        return None if self.change.op == "delete" else snapshot_row(self.schema, self.change.data)

    @functools.cached_property
    def before(self) -> Row | None:
        if self.change.op == "create":
            return None
        return snapshot_row(self.schema, {**self.change.data, **(self.change.old or {})})

    @functools.cached_property
    def stream_json(self) -> str:
        return json.dumps(self.resource.name)

    @functools.cached_property
    def object_json(self) -> str:
        return json.dumps(self.schema.dump(self.after))

    @functools.cached_property
    def pk_json(self) -> str:
        return json.dumps({"pk": self.change.object_id})

    @functools.cached_property
    def cursor_text(self) -> str:
        return str(self.cursor)

    def instance_frame(self, request_id_json: str) -> str | None:
        """DCRF's subscribe_instance pushes: update and delete, no cursor."""
        if self.change.op == "update":
            return encode_push(self.stream_json, self.object_json, "update", 200, request_id_json)
        if self.change.op == "delete":
            return encode_push(self.stream_json, self.pk_json, "delete", 204, request_id_json)
        return None

    def stream_frame(self, terms: tuple[FilterTerm, ...], request_id_json: str) -> str | None:
        if filters_match(terms, self.after):
            action = "update" if filters_match(terms, self.before) else "create"
            return encode_push(self.stream_json, self.object_json, action, 200, request_id_json, self.cursor_text)
        if filters_match(terms, self.before):
            return encode_push(self.stream_json, self.pk_json, "delete", 204, request_id_json, self.cursor_text)
        return None
