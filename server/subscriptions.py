"""Who is subscribed to what, and the frames one change becomes for its subscribers.

A change is serialized once (its object JSON, its cursor), whoever receives it; each frame is
then assembled around the subscriber's request_id. Every push passes the same permission check
as a `retrieve` request. Frames go to the socket's outbox without waiting (server/outbox.py).

Filter semantics of `subscribe`: the filters are evaluated on the row before and after the
change (server/listing.py, the same rules as `list`), as DCRF's group transitions do:
matched after -> `update` (or `create` if it did not match before: created, or entered the
filter); matched only before -> `delete` with {"pk": id} (deleted, or left the filter);
neither -> nothing.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import json
from typing import TYPE_CHECKING, Any, Mapping

from marshmallow import Schema

from schemas.fields import DateTime
from server.cursors import INVALID_CURSOR, Cursor, Snapshot
from server.errors import ApiError, BadRequest
from server.listing import FilterTerm, filters_match
from server.outbox import Outbox
from server.protocol import encode, encode_push, envelope
from server.resources.base import Resource, permitted
from server.users import User

if TYPE_CHECKING:
    from server.live import Listener

Row = dict[str, Any]
HELD_FACTOR = 16   # pushes held during one request, in outbound queue limits, before giving up


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


@dataclasses.dataclass(eq=False)
class Subscription:
    """One subscribe or subscribe_instance of one socket."""

    client: LiveClient
    resource: Resource
    request_id: Any
    pk: int | None = None                  # subscribe_instance; None for subscribe
    terms: tuple[FilterTerm, ...] = ()     # subscribe's filters

    @functools.cached_property
    def request_id_json(self) -> str:
        return json.dumps(self.request_id)

    def frame(self, push: Push) -> str | None:
        if not permitted(self.resource, self.client.user, "retrieve"):
            return None  # the user may no longer see this resource: nothing leaks
        if self.pk is not None:
            return push.instance_frame(self.request_id_json)
        return push.stream_frame(self.terms, self.request_id_json)

    def offer(self, push: Push) -> None:
        frame = self.frame(push)
        if frame is not None:
            self.client.deliver(frame)


class Registry:
    """Every subscription of this process, by what it watches."""

    def __init__(self, resources: Mapping[str, Resource]) -> None:
        self._resources = resources
        self._schemas: dict[str, Schema] = {}
        # Dicts as ordered sets: pushes of one change go out in the order of subscribing.
        self._instances: dict[tuple[str, int], dict[Subscription, None]] = collections.defaultdict(dict)
        self._streams: dict[str, dict[Subscription, None]] = collections.defaultdict(dict)

    def add(self, sub: Subscription) -> None:
        self._watchers(sub)[sub] = None

    def remove(self, sub: Subscription) -> None:
        watchers = self._watchers(sub)
        watchers.pop(sub, None)
        if not watchers:  # keep the maps as small as what is watched
            if sub.pk is None:
                del self._streams[sub.resource.name]
            else:
                del self._instances[(sub.resource.name, sub.pk)]

    def _watchers(self, sub: Subscription) -> dict[Subscription, None]:
        if sub.pk is None:
            return self._streams[sub.resource.name]
        return self._instances[(sub.resource.name, sub.pk)]

    def push(self, resource: Resource, change: Change, cursor: Cursor) -> Push:
        schema = self._schemas.get(resource.name) or self._schemas.setdefault(resource.name, resource.schema())
        return Push(resource, schema, change, cursor)

    def publish(self, change: Change, cursor: Cursor) -> None:
        """Offer a change to everyone watching its object or its stream."""
        watchers = tuple(self._instances.get((change.resource, change.object_id), ()))
        watchers += tuple(self._streams.get(change.resource, ()))
        resource = self._resources.get(change.resource)
        if not watchers or resource is None:
            return
        push = self.push(resource, change, cursor)
        for sub in watchers:
            sub.offer(push)

    def counts(self) -> tuple[int, int]:
        """(instance subscriptions, stream subscriptions) of this process."""
        return sum(map(len, self._instances.values())), sum(map(len, self._streams.values()))


def request_key(request_id: Any) -> str:
    return json.dumps(request_id, sort_keys=True)


class LiveClient:
    """One socket's subscriptions: what the subscribe actions call (server/resources/live.py)."""

    def __init__(self, listener: Listener, registry: Registry, user: User, outbox: Outbox, limit: int) -> None:
        self.listener, self.registry, self.user, self.outbox, self.limit = listener, registry, user, outbox, limit
        self._instances: dict[tuple[str, int, str], Subscription] = {}
        self._streams: dict[tuple[str, str], Subscription] = {}
        self._starting: tuple[Subscription, Cursor | None, Snapshot | None] | None = None  # (sub, since, target)
        self._held: collections.deque[str] | None = None

    async def watch_instance(self, resource: Resource, pk: int, request_id: Any) -> Subscription:
        await self.listener.position()
        sub = Subscription(self, resource, request_id, pk=pk)
        self._replace(self._instances, (resource.name, pk, request_key(request_id)), sub)
        self._starting = (sub, None, None)
        return sub

    async def watch_stream(self, resource: Resource, request_id: Any, terms: tuple[FilterTerm, ...],
                           since: Cursor | None) -> Cursor:
        """Register (replacing one with the same request_id); returns where its pushes start."""
        position = await self.listener.position()
        if since is not None and not position.covers(since.high):
            raise BadRequest([{"since": [INVALID_CURSOR]}])  # from the future, or another database
        sub = Subscription(self, resource, request_id, terms=terms)
        self._replace(self._streams, (resource.name, request_key(request_id)), sub)
        self._starting = (sub, since, position)
        return since or Cursor.at(position)

    def cancel(self, sub: Subscription) -> None:
        """Undo a registration whose request failed after all."""
        table: dict[Any, Subscription] = self._streams if sub.pk is None else self._instances  # type: ignore[assignment]
        for key, registered in list(table.items()):
            if registered is sub:
                del table[key]
                self.registry.remove(sub)
        self._starting = None

    def unwatch_instance(self, resource: Resource, pk: int, request_id: Any) -> None:
        sub = self._instances.pop((resource.name, pk, request_key(request_id)), None)
        if sub is not None:
            self.registry.remove(sub)

    def unwatch_stream(self, resource: Resource, request_id: Any) -> None:
        sub = self._streams.pop((resource.name, request_key(request_id)), None)
        if sub is not None:
            self.registry.remove(sub)

    def _replace(self, table: dict[Any, Subscription], key: Any, sub: Subscription) -> None:
        previous = table.get(key)
        if previous is not None:
            self.registry.remove(previous)
        table[key] = sub
        self.registry.add(sub)

    def hold(self) -> None:
        """A request is in progress: hold pushes until its reply is out (see release)."""
        if self._held is None:
            self._held = collections.deque()

    def deliver(self, frame: str) -> None:
        if self._held is None:
            self.outbox.put(frame)
            return
        self._held.append(frame)
        # Held frames count as waiting: too many for a client that does not read, or far too many.
        if len(self._held) > self.limit and (self.outbox.stalled or len(self._held) > HELD_FACTOR * self.limit):
            self.outbox.overflow()

    async def release(self) -> None:
        """Once a reply is queued: a new subscription's replay, then the pushes held meanwhile.

        So a write's reply comes before the push of its own change, as with DCRF (which handled
        one message at a time per socket), and a subscribe reply before its subscription's
        first push; pushes arriving during the replay follow it."""
        if self._starting is not None:
            (sub, since, target), self._starting = self._starting, None
            if since is not None and target is not None:
                await self._replay(sub, since, target)
        while self._held:
            await self.outbox.put_paced(self._held.popleft())
        self._held = None

    async def _replay(self, sub: Subscription, since: Cursor, target: Snapshot) -> None:
        """Push what `since` has not seen, up to the registration; on failure, an error reply."""
        try:
            async for change, cursor in self.listener.replay(sub.resource.name, since, target):
                if self.outbox.closing:
                    return
                frame = sub.frame(self.registry.push(sub.resource, change, cursor))
                if frame is not None:
                    await self.outbox.put_paced(frame)
        except ApiError as exc:  # pruned meanwhile (410), or the database went away (503)
            self.cancel(sub)
            reply = envelope(exc.status, errors=exc.errors, action="subscribe", request_id=sub.request_id)
            self.outbox.put(encode(sub.resource.name, reply))

    def close(self) -> None:
        for sub in [*self._instances.values(), *self._streams.values()]:
            self.registry.remove(sub)
        self._instances.clear()
        self._streams.clear()
