"""Who is subscribed to what in this process, and each socket's subscriptions.

The listener (server/live/listener.py) publishes each change to the registry, which offers it to
the subscriptions watching that object or that stream; each turns it into its event
(server/live/pushes.py) after the same permission check as a `retrieve` request, and hands it to
its socket's sink without waiting (server/web/connection.py frames and sends it).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
from typing import Any, Mapping, Protocol

from server.accounts.users import User
from server.errors import ApiError, BadRequest, Gone, InternalError, TooManySubscriptions
from server.live.cursors import INVALID_CURSOR, Cursor, Snapshot
from server.live.filters import FilterTerm
from server.live.listener import Listener
from server.live.pushes import Change, Event, Push, Stream

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where one socket's pushes go (server/web/connection.py)."""

    @property
    def closing(self) -> bool: ...

    def deliver(self, sub: Subscription, event: Event) -> None:
        """A live push: queued now, never waiting."""

    async def deliver_paced(self, sub: Subscription, event: Event) -> None:
        """A replayed push: waits for room, like a reply."""

    def refuse(self, sub: Subscription, error: ApiError) -> None:
        """The subscription could not start or go on: a late error reply to its subscribe action."""


@dataclasses.dataclass(eq=False)
class Subscription:
    """One subscribe or subscribe_instance of one socket."""

    owner: SocketSubscriptions
    stream: Stream
    request_id: Any
    pk: int | None = None                  # subscribe_instance; None for subscribe
    terms: tuple[FilterTerm, ...] = ()     # subscribe's filters
    ended: bool = False                    # by an error push: nothing more is sent for it
    order: int = 0                         # when it was registered (server/live/subscriptions.py Registry)

    @functools.cached_property
    def request_id_json(self) -> str:
        return json.dumps(self.request_id)

    @property
    def action(self) -> str:
        return "subscribe" if self.pk is None else "subscribe_instance"

    def event(self, push: Push) -> Event | None:
        if not self.stream.allows(self.owner.user, "retrieve"):
            return None  # the user may no longer see this resource: nothing leaks
        if self.pk is not None:
            return push.instance_event
        return push.stream_event(self.terms)

    def offer(self, push: Push) -> None:
        event = self.event(push)
        if event is not None:
            self.owner.sink.deliver(self, event)

    def deliver(self, event: Event) -> None:
        """A stream's push whose filters matched: the same permission check as event()."""
        if self.stream.allows(self.owner.user, "retrieve"):
            self.owner.sink.deliver(self, event)


class Registry:
    """Every subscription of this process, by what it watches: a change costs a look at the
    subscriptions of its object, and at the distinct filters of its stream that it can match."""

    def __init__(self, streams: Mapping[str, Stream], limit: int) -> None:
        self._streams_by_name = streams
        self.limit, self.count = limit, 0  # subscriptions of this process
        self._order = itertools.count()    # pushes of one change go out in the order of subscribing
        # Dicts as ordered sets.
        self._instances: dict[tuple[str, int], dict[Subscription, None]] = {}
        self._filters: dict[str, Filters] = {}  # subscribe's, per resource

    def add(self, sub: Subscription) -> None:
        if sub.pk is None:
            watchers = self._filters.setdefault(sub.stream.name, Filters()).group(sub.terms)
        else:
            watchers = self._instances.setdefault((sub.stream.name, sub.pk), {})
        if sub not in watchers:
            self.count += 1
            sub.order = next(self._order)
        watchers[sub] = None

    def remove(self, sub: Subscription) -> None:
        if sub.pk is not None:
            key = (sub.stream.name, sub.pk)
            watchers = self._instances.get(key, {})
            if watchers.pop(sub, False) is None:
                self.count -= 1
            if not watchers:  # keep the maps as small as what is watched
                self._instances.pop(key, None)
            return
        filters = self._filters.get(sub.stream.name)
        if filters is not None and filters.remove(sub):
            self.count -= 1
            if not filters:
                del self._filters[sub.stream.name]

    def publish(self, change: Change, cursor: Cursor) -> None:
        """Offer a change to everyone watching its object or its stream."""
        watchers = self._instances.get((change.resource, change.object_id))
        filters = self._filters.get(change.resource)
        stream = self._streams_by_name.get(change.resource)
        if (not watchers and filters is None) or stream is None:
            return
        push = Push(stream, change, cursor)
        if watchers:
            for sub in tuple(watchers):
                sub.offer(push)
        if filters is not None:
            for sub, event in filters.reached(push):
                sub.deliver(event)

    def __bool__(self) -> bool:
        return bool(self._instances or self._filters)

    def lose_all(self) -> int:
        """Changes were pruned before this process read them: every subscription ends with a 410
        push (the client lists again); returns how many."""
        subs = [sub for watchers in self._instances.values() for sub in watchers]
        subs += [sub for filters in self._filters.values() for sub in filters.subscriptions()]
        for sub in subs:
            sub.owner.end(sub, Gone())
        return len(subs)


class Filters:
    """One resource's `subscribe` subscriptions, grouped by their filters (each group's verdict on a
    change is computed once), the groups found by the value of an equality term where they have one:
    a change is looked at only by the groups it may match, and by those with no equality term."""

    def __init__(self) -> None:
        self._groups: dict[tuple[FilterTerm, ...], dict[Subscription, None]] = {}
        self._unindexed: dict[tuple[FilterTerm, ...], None] = {}
        self._by_value: dict[str, dict[Any, dict[tuple[FilterTerm, ...], None]]] = {}  # field -> value -> groups

    def group(self, terms: tuple[FilterTerm, ...]) -> dict[Subscription, None]:
        """The subscriptions with these filters (a new, indexed group if there were none)."""
        group = self._groups.get(terms)
        if group is None:
            group = self._groups[terms] = {}
            key = equality(terms)
            if key is None:
                self._unindexed[terms] = None
            else:
                self._by_value.setdefault(key[0], {}).setdefault(key[1], {})[terms] = None
        return group

    def remove(self, sub: Subscription) -> bool:
        """Whether it was here."""
        group = self._groups.get(sub.terms)
        if group is None or group.pop(sub, False) is not None:
            return False
        if not group:
            del self._groups[sub.terms]
            key = equality(sub.terms)
            if key is None:
                del self._unindexed[sub.terms]
            else:
                values = self._by_value[key[0]]
                del values[key[1]][sub.terms]
                if not values[key[1]]:
                    del values[key[1]]
                if not values:
                    del self._by_value[key[0]]
        return True

    def reached(self, push: Push) -> list[tuple[Subscription, Event]]:
        """The subscriptions this change has a push for, in the order of subscribing."""
        candidates = dict.fromkeys(self._unindexed)
        for field, values in self._by_value.items():
            for row in (push.after, push.before):
                if row is not None and (groups := values.get(row.get(field))):
                    candidates.update(groups)
        reached: list[tuple[Subscription, Event]] = []
        matching = 0
        for terms in candidates:
            event = push.stream_event(terms)
            if event is not None:
                matching += 1
                reached.extend((sub, event) for sub in self._groups[terms])
        if matching > 1:
            reached.sort(key=lambda pair: pair[0].order)
        return reached

    def __bool__(self) -> bool:
        return bool(self._groups)

    def subscriptions(self) -> list[Subscription]:
        return [sub for group in self._groups.values() for sub in group]


def equality(terms: tuple[FilterTerm, ...]) -> tuple[str, Any] | None:
    """(field, value) of the first `field = value` term: only a row with that value can match."""
    for term in terms:
        if term.op == "" and term.value is not None:
            try:
                hash(term.value)
            except TypeError:
                continue
            return term.field, term.value
    return None


def request_key(request_id: Any) -> str:
    return json.dumps(request_id, sort_keys=True)


class SocketSubscriptions:
    """One socket's subscriptions: what the subscribe actions call (server/resources/subscribe.py)."""

    def __init__(self, listener: Listener, registry: Registry, user: User, sink: Sink, limit: int) -> None:
        self.listener, self.registry, self.user, self.sink, self.limit = listener, registry, user, sink, limit
        self._instances: dict[tuple[str, int, str], Subscription] = {}
        self._streams: dict[tuple[str, str], Subscription] = {}
        self._starting: tuple[Subscription, Cursor | None, Snapshot | None] | None = None  # (sub, since, target)

    async def watch_instance(self, stream: Stream, pk: int, request_id: Any) -> Subscription:
        key = (stream.name, pk, request_key(request_id))
        self._room_for(key not in self._instances)
        await self.listener.position()
        sub = Subscription(self, stream, request_id, pk=pk)
        self._replace(self._instances, key, sub)
        self._starting = (sub, None, None)
        return sub

    async def watch_stream(self, stream: Stream, request_id: Any, terms: tuple[FilterTerm, ...],
                           since: Cursor | None) -> Cursor:
        """Register (replacing one with the same request_id); returns where its pushes start."""
        key = (stream.name, request_key(request_id))
        self._room_for(key not in self._streams)
        position = await self.listener.position()
        if since is not None and not position.covers(since.high):
            raise BadRequest([{"since": [INVALID_CURSOR]}])  # from the future, or another database
        sub = Subscription(self, stream, request_id, terms=terms)
        self._replace(self._streams, key, sub)
        self._starting = (sub, since, position)
        return since or Cursor.at(position)

    def _room_for(self, new: bool) -> None:
        """A new subscription (not one replacing its request_id's) within the limits, or the refusal."""
        if not new:
            return
        if len(self._instances) + len(self._streams) >= self.limit:
            raise TooManySubscriptions(429, f"Too many subscriptions on this socket: at most {self.limit}.")
        if self.registry.count >= self.registry.limit:
            raise TooManySubscriptions(503, "Too many subscriptions on this server, try again later.")

    def cancel(self, sub: Subscription) -> None:
        """Undo a registration whose request failed after all."""
        table: dict[Any, Subscription] = self._streams if sub.pk is None else self._instances  # type: ignore[assignment]
        for key, registered in list(table.items()):
            if registered is sub:
                del table[key]
                self.registry.remove(sub)
        self._starting = None

    def unwatch_instance(self, stream: Stream, pk: int, request_id: Any) -> None:
        sub = self._instances.pop((stream.name, pk, request_key(request_id)), None)
        if sub is not None:
            self.registry.remove(sub)

    def unwatch_stream(self, stream: Stream, request_id: Any) -> None:
        sub = self._streams.pop((stream.name, request_key(request_id)), None)
        if sub is not None:
            self.registry.remove(sub)

    def _replace(self, table: dict[Any, Subscription], key: Any, sub: Subscription) -> None:
        previous = table.get(key)
        if previous is not None:
            self.registry.remove(previous)
        table[key] = sub
        self.registry.add(sub)

    @property
    def starting(self) -> bool:
        """A subscription registered by the request in progress waits for start()."""
        return self._starting is not None

    async def start(self) -> None:
        """Once the subscribe reply is queued: replay what a new subscription's `since` has not
        seen, up to where it registered (so the reply comes before its first push)."""
        if self._starting is None:
            return
        (sub, since, target), self._starting = self._starting, None
        if since is None or target is None:
            return
        try:
            async for change, cursor in self.listener.replay(sub.stream.name, since, target):
                if self.sink.closing or sub.ended:
                    return
                event = sub.event(Push(sub.stream, change, cursor))
                if event is not None:
                    await self.sink.deliver_paced(sub, event)
        except ApiError as exc:  # pruned meanwhile (410), or the database went away (503)
            self.end(sub, exc)
        except Exception:
            log.exception("replay failed: stream %s", sub.stream.name)
            self.end(sub, InternalError())

    def end(self, sub: Subscription, error: ApiError) -> None:
        """The subscription stops, and its last push says why."""
        sub.ended = True
        self.cancel(sub)
        self.sink.refuse(sub, error)

    def close(self) -> None:
        for sub in [*self._instances.values(), *self._streams.values()]:
            self.registry.remove(sub)
        self._instances.clear()
        self._streams.clear()
