"""Who is subscribed to what in this process, and each socket's subscriptions.

The listener (server/live.py) publishes each change to the registry, which offers it to the
subscriptions watching that object or that stream; each turns it into its frame
(server/pushes.py) after the same permission check as a `retrieve` request, and hands it to
its socket without waiting (server/outbox.py).
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import json
import logging
from typing import TYPE_CHECKING, Any, Mapping


from server.cursors import INVALID_CURSOR, Cursor, Snapshot
from server.errors import ApiError, BadRequest
from server.listing import FilterTerm
from server.outbox import Outbox
from server.protocol import encode, envelope
from server.pushes import Change, Push
from server.resources.base import Resource, permitted
from server.users import User

if TYPE_CHECKING:
    from server.live import Listener

log = logging.getLogger(__name__)
HELD_FACTOR = 16   # pushes held during one request, in outbound queue limits, before giving up


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
        return Push(resource, resource.schema_instance, change, cursor)

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

    def __bool__(self) -> bool:
        return bool(self._instances or self._streams)

    def counts(self) -> tuple[int, int]:
        """(instance subscriptions, stream subscriptions) of this process."""
        return sum(map(len, self._instances.values())), sum(map(len, self._streams.values()))


def request_key(request_id: Any) -> str:
    return json.dumps(request_id, sort_keys=True)


class LiveClient:
    """One socket's subscriptions: what the subscribe actions call (server/resources/subscribe.py)."""

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
            self._fail(sub, exc.status, exc.errors)
        except Exception:
            log.exception("replay failed: stream %s", sub.resource.name)
            self._fail(sub, 500, ["Internal server error"])

    def _fail(self, sub: Subscription, status: int, errors: list[Any]) -> None:
        """The subscription could not start after all: drop it and say so, as a late reply."""
        self.cancel(sub)
        reply = envelope(status, errors=errors, action="subscribe", request_id=sub.request_id)
        self.outbox.put(encode(sub.resource.name, reply))

    def close(self) -> None:
        for sub in [*self._instances.values(), *self._streams.values()]:
            self.registry.remove(sub)
        self._instances.clear()
        self._streams.clear()
