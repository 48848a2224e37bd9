"""One WebSocket connection as one object: who it is, its outbox and limits, its subscriptions,
replies in order with pushes, its log lines and metrics, its close; and the open connections of
this process, whose credentials are re-checked and which shutdown closes.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import time
from typing import Any, AsyncIterator, Collection, Mapping

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from server.config import Config
from server.errors import ApiError, BadRequest, MethodNotAllowed, NotFound, Throttled, Unavailable
from server.live.listener import Listener
from server.live.pushes import Event
from server.live.subscriptions import Registry, SocketSubscriptions, Subscription
from server.resources.declaration import Call, Resource
from server.resources.dispatch import Outcome, run_action
from server.resources.subscribe import SUBSCRIBE
from server.store.db import Database
from server.web.authenticate import Principal, TokenCache
from server.web.codec import FrameError, encode, encode_push, envelope, parse_frame
from server.web.limits import FrameThrottle, SocketCounter
from server.web.metrics import Metrics
from server.web.outbox import Outbox

log = logging.getLogger(__name__)
connection_ids = itertools.count(1)

REPLY_GRACE_SECONDS = 5.0   # how long shutdown waits for a request in flight (the database timeout's order)
CLOSE_POLICY = WSCloseCode.POLICY_VIOLATION  # 1008: sustained abuse of the request rate
CLOSE_UNAUTHORIZED = 4401
NO_ACTION = ["Unable to find action in message body."]


class Connection:
    """One socket: requests are answered one at a time, and pushes never overtake the reply
    in progress, as with DCRF (which handled one message at a time per socket)."""

    def __init__(self, hub: Connections, ws: web.WebSocketResponse, request: web.BaseRequest,
                 principal: Principal) -> None:
        self.hub, self.ws, self.principal = hub, ws, principal
        self.id = next(connection_ids)
        self.log = logging.LoggerAdapter(log, {"connection": self.id})
        self.throttle = FrameThrottle(hub.config)
        config = hub.config
        self.outbox = Outbox(ws, request, config.socket_budget_bytes, config.send_deadline_seconds,
                             on_sent=hub.metrics.frame_sent, on_overflow=hub.metrics.count_throttled)
        self._subscriptions: SocketSubscriptions | None = None  # made by the first subscribe
        self._replying = asyncio.Lock()                  # held from a request to its reply (and shutdown)
        self._holding = False                            # a request is in progress: pushes wait for its reply
        self._held: collections.deque[str] | None = None  # ... here, made when the first one arrives
        self._held_bytes = 0

    @property
    def subscriptions(self) -> SocketSubscriptions:
        if self._subscriptions is None:
            hub = self.hub
            self._subscriptions = SocketSubscriptions(hub.listener, hub.registry, self.principal.user, self,
                                                      hub.config.max_subscriptions_per_socket)
        return self._subscriptions

    async def answer(self, message: WSMessage) -> bool:
        """Answer one request frame; False once the socket must stop reading."""
        async with self._replying:
            if self.outbox.closing:  # closed, or being closed for its limits: no more work for it
                return False
            refusal = self.throttle.check()  # before the frame is dispatched
            if refusal is not None and self.throttle.abusive:
                self.hub.metrics.count_throttled("rate")
                await self.outbox.shut(CLOSE_POLICY, b"Request rate limit exceeded")
                return False
            self._holding = True
            try:
                await self.outbox.send(await self._reply(message, refusal))
                # A new subscription's replay, then the pushes held meanwhile; pushes arriving
                # during the replay follow it.
                subscriptions = self._subscriptions
                if subscriptions is not None and subscriptions.starting:
                    await subscriptions.start()
                while self._held:  # made by the first push held, maybe while the reply waited
                    frame = self._held.popleft()
                    self._held_bytes -= len(frame)
                    await self.outbox.send(frame)
            finally:
                self._holding, self._held, self._held_bytes = False, None, 0
        return True

    async def _reply(self, message: WSMessage, refusal: Throttled | None) -> str:
        """The frame that answers one message, whatever went wrong."""
        started = time.perf_counter()
        stream, payload, problem = read_frame(message)
        if problem is None and oversized(payload.get("request_id"), self.hub.max_request_id_bytes):
            problem = BadRequest([f'"request_id" is too long: at most {self.hub.max_request_id_bytes} bytes of JSON.'])
            payload = {"action": payload.get("action")}  # not echoed: it is what was too long
        if refusal is not None:  # refused unread: no request was served
            return encode(stream, envelope_of(Outcome.failed(refusal), payload))
        self.hub.metrics.frame_received()
        resource = self.hub.resources.get(stream) if stream is not None else None
        if problem is not None:
            outcome = Outcome.failed(problem)
        elif resource is None:
            outcome = Outcome.failed(NotFound(f'Unknown stream "{stream}".'))
        else:
            outcome = await self._run(resource, payload)
        self._answered(stream, resource, payload.get("action"), outcome.status, time.perf_counter() - started)
        return encode(stream, envelope_of(outcome, payload))

    async def _run(self, resource: Resource, payload: Mapping[str, Any]) -> Outcome:
        if "action" not in payload:
            return Outcome.failed(MethodNotAllowed(NO_ACTION))
        action = payload["action"]
        # The subscription state exists from the first subscribe on: an idle socket holds none.
        live = self.subscriptions if type(action) is str and action in SUBSCRIBE else self._subscriptions
        call = Call(self.hub.db, self.principal.user, resource, self.hub.max_page_size, live)
        if isinstance(action, str):
            return await run_action(call, action, payload)
        return await run_action(call, None, payload, asked=json.dumps(action))

    def _answered(self, stream: str | None, resource: Resource | None, action: Any, status: int,
                  seconds: float) -> None:
        """Count and time one reply; a failed one also gets a log line (never the request's data)."""
        # Labels come from the server's own names only: client text would grow the metrics without bound.
        if stream is None:
            stream, action = "(invalid frame)", "(none)"
        elif resource is None:
            stream, action = "(unknown stream)", "(none)"
        elif not (type(action) is str and action in resource.actions):
            action = "(unknown action)"
        self.hub.metrics.request_answered(stream, action, status, seconds)
        if status >= 400:
            self.log.log(logging.WARNING if status >= 500 else logging.INFO,
                         "ws %d request failed: stream %s action %s status %d", self.id, stream, action, status)

    # The sink of this socket's subscriptions (server/live/subscriptions.py).

    @property
    def closing(self) -> bool:
        return self.outbox.closing

    def deliver(self, sub: Subscription, event: Event) -> None:
        frame = push_frame(sub, event)
        if not self._holding:
            self.outbox.put(frame)
            return
        if self._held is None:
            self._held = collections.deque()
        self._held.append(frame)
        self._held_bytes += len(frame)
        # Held frames count against the budget as queued ones do.
        if self.outbox.overrun(self._held_bytes):
            self.outbox.overflow()

    async def deliver_paced(self, sub: Subscription, event: Event) -> None:
        await self.outbox.send(push_frame(sub, event))

    def refuse(self, sub: Subscription, error: ApiError) -> None:
        reply = envelope(error.status, errors=error.errors, action=sub.action, request_id=sub.request_id)
        self.outbox.put(encode(sub.stream.name, reply))

    # Closing.

    async def close_gracefully(self) -> None:
        """Shutdown: wait (bounded) until the socket is not mid-request and its reply is written,
        then close it 1001 before it takes another request."""
        acquired = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._replying.acquire(), REPLY_GRACE_SECONDS)
            acquired = True
            await asyncio.wait_for(self.outbox.drained(), REPLY_GRACE_SECONDS)
        try:
            await self.outbox.shut(WSCloseCode.GOING_AWAY, b"Server shutdown")
        finally:
            if acquired:
                self._replying.release()

    async def revoke(self) -> None:
        self.log.info("closing a socket of user %s: credentials revoked", self.principal.user.username)
        await self.outbox.shut(CLOSE_UNAUTHORIZED, b"Credentials revoked")

    async def finish(self) -> None:
        """After the read loop. Bookkeeping first: a handler cancelled while closing (the peer
        vanished) stops at the await."""
        if self._subscriptions is not None:
            self._subscriptions.close()
        self.hub.remove(self)
        self.hub.metrics.websockets_open.dec()
        try:
            await self.outbox.close()  # a policy close in progress ends first: the line names its code
        finally:
            if self.outbox.aborted is None:
                self.log.info("ws %d closed: code %s", self.id, self.ws.close_code)
            else:  # the close frame was sent, but the client did not take it: it never saw the code
                self.log.info("ws %d closed: code %s, aborted", self.id, self.outbox.aborted)


def read_frame(message: WSMessage) -> tuple[str | None, Mapping[str, Any], FrameError | None]:
    """(stream, payload, None), or (None, {}, why it is no frame)."""
    if message.type != WSMsgType.TEXT:
        return None, {}, FrameError("Invalid frame: binary frames are not supported; send JSON text.")
    try:
        stream, payload = parse_frame(message.data)
    except FrameError as exc:
        return None, {}, exc
    return stream, payload, None


def oversized(request_id: Any, limit: int) -> bool:
    """Whether a request_id's JSON is longer than `limit` bytes (cheap for the usual ids)."""
    kind = type(request_id)
    if request_id is None or kind is bool or (kind is int and request_id.bit_length() // 3 + 2 <= limit):
        return False  # a digit is more than 3 bits
    if kind is str and 6 * len(request_id) + 2 <= limit:  # \uXXXX at worst
        return False
    return len(json.dumps(request_id)) > limit


def envelope_of(outcome: Outcome, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The reply envelope, echoing the request's action and request_id."""
    errors = outcome.error.errors if outcome.error is not None else None
    return envelope(outcome.status, data=outcome.data, errors=errors,
                    action=payload.get("action"), request_id=payload.get("request_id"))


def push_frame(sub: Subscription, event: Event) -> str:
    return encode_push(event.stream_json, event.data_json, event.action, event.status,
                       sub.request_id_json, event.cursor)


class Connections:
    """The open connections of this process, and what each uses of the app."""

    def __init__(self, config: Config, db: Database, resources: Mapping[str, Resource], listener: Listener,
                 registry: Registry, metrics: Metrics) -> None:
        self.config, self.db, self.resources = config, db, resources
        self.listener, self.registry, self.metrics = listener, registry, metrics
        self.max_page_size, self.max_request_id_bytes = config.max_page_size, config.max_request_id_bytes
        self.counter = SocketCounter(config.max_sockets, config.max_sockets_per_user)
        self._open: dict[Connection, None] = {}
        self._changed: set[int] | None = set()   # users whose credentials changed, unchecked (None: anyone's)
        self._tokens = TokenCache(config.credential_check_seconds)
        self._recheck = asyncio.Event()

    def connect(self, ws: web.WebSocketResponse, request: web.BaseRequest, principal: Principal) -> Connection:
        connection = Connection(self, ws, request, principal)
        self.metrics.websockets_open.inc()
        connection.log.info("ws %d open: user %s from %s", connection.id, principal.user.username, request.remote)
        return connection

    def add(self, connection: Connection) -> None:
        """Once upgraded: the credential re-check and shutdown see it."""
        self._open[connection] = None

    def remove(self, connection: Connection) -> None:
        self._open.pop(connection, None)

    def __len__(self) -> int:
        return len(self._open)

    async def close_all(self) -> None:
        """on_shutdown: every open socket at once, so that one slow peer does not hold up the others."""
        await asyncio.gather(*(connection.close_gracefully() for connection in list(self._open)),
                             return_exceptions=True)

    async def close_revoked(self, users: Collection[int] | None = None) -> int:
        """One check of the open sockets' tokens or sessions (of these users' only, unless None);
        returns how many were closed."""
        connections = [connection for connection in self._open if not connection.ws.closed
                       and (users is None or connection.principal.user.id in users)]
        if not connections:
            return 0
        digests = sorted({connection.principal.credential for connection in connections})
        rows = await self.db.fetch_all("users.live_credentials", {"digests": digests})
        # A changed role counts as revoked too: the socket reconnects with the new one.
        live = {(bytes(row["digest"]), row["role"]) for row in rows}
        revoked = [connection for connection in connections
                   if (connection.principal.credential, connection.principal.user.role) not in live]
        # Concurrently: a peer slow to answer the close frame must not hold up the others.
        await asyncio.gather(*(connection.revoke() for connection in revoked))
        return len(revoked)

    @contextlib.asynccontextmanager
    async def watching_credentials(self) -> AsyncIterator[None]:
        """While open: a revoked token, ended session, changed role or disabled user closes its sockets
        4401 as soon as the listener hears of it (from any server), and every credential_check_seconds
        all sockets are checked anyway (a notification missed)."""
        self.listener.on_credentials = self.credentials_changed
        task = asyncio.create_task(self._watch())
        try:
            yield
        finally:
            self.listener.on_credentials = None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def tokens(self) -> TokenCache | None:
        """The handshake's token cache, while the listener hears every change that must drop an entry."""
        return self._tokens if self.listener.health.connected else None

    def credentials_changed(self, users: frozenset[int] | None) -> None:
        """These users' credentials changed (None: anyone's may have): check their sockets now."""
        self._tokens.forget(users)
        if self._changed is not None:
            self._changed = None if users is None else self._changed | users
        self._recheck.set()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        every = self.config.credential_check_seconds
        deadline = loop.time() + every
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._recheck.wait()
            self._recheck.clear()
            users, self._changed = self._changed, set()
            if loop.time() >= deadline:
                users, deadline = None, loop.time() + every
            try:
                await self.close_revoked(users)
            except Unavailable:
                pass  # the database is away: keep the sockets, check again next time (logged by store.db)
            except Exception:
                log.exception("credential check of open sockets failed")
