"""A resource declared once: its schema, queries, permissions and action table; what an action is called with."""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Awaitable, Callable, Mapping

from marshmallow import Schema

from schemas.dumper import Dumper, compile_dumper
from server.accounts.users import User
from server.live.subscriptions import SocketSubscriptions
from server.store.db import Database

Reply = tuple[int, Any]                      # (response_status, data)

# Roles that may run an action. Reads (and subscriptions, which only read) are for every
# role; writes are for editors. An action a resource does not list needs an editor, so a
# viewer meets 403 before learning whether the action exists (protocol §4's order).
READ = frozenset({"viewer", "editor"})
WRITE = frozenset({"editor"})
CRUD_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "list": READ, "retrieve": READ,
    "create": WRITE, "update": WRITE, "patch": WRITE, "delete": WRITE,
    "subscribe": READ, "unsubscribe": READ, "subscribe_instance": READ, "unsubscribe_instance": READ,
}


@dataclasses.dataclass(slots=True)
class Call:
    """What an action handler gets besides the payload."""

    db: Database
    user: User
    resource: Resource
    max_page_size: int
    live: SocketSubscriptions | None = None  # the socket's subscriptions; None where there are none (HTTP)


Handler = Callable[[Call, Mapping[str, Any]], Awaitable[Reply]]


@dataclasses.dataclass(frozen=True)
class Resource:
    """One database resource as both transports serve it; see server/resources/patients.py."""

    name: str                                   # the stream name, /api/<name>/, and sql/<name>.sql
    verbose_name: str                           # one object, as DRF's 404 names it: "No Patient matches ..."
    schema: type[Schema]                        # loads writes, dumps replies
    actions: Mapping[str, Handler]              # action name -> handler
    filter_fields: tuple[str, ...] = ()
    ordering_fields: tuple[str, ...] = ()
    permissions: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=lambda: CRUD_PERMISSIONS)

    def query(self, name: str) -> str:
        return f"{self.name}.{name}"

    def allows(self, user: User, action: str | None) -> bool:
        """The one permission check: requests on both transports, subscriptions and every push.
        None is an action this resource does not have (it needs an editor, see WRITE)."""
        roles = self.permissions.get(action, WRITE) if action is not None else WRITE
        return user.is_active and user.role in roles

    # Built once per resource: a marshmallow Schema() costs more than the query it serves.
    @functools.cached_property
    def schema_instance(self) -> Schema:
        return self.schema()

    @functools.cached_property
    def dump(self) -> Dumper:
        """The one dumper of a row, for replies, pushes and history (schemas/dumper.py)."""
        return compile_dumper(self.schema_instance)

    @functools.cached_property
    def writable_fields(self) -> list[str]:
        return [name for name, field in self.schema_instance.fields.items() if not field.dump_only]
