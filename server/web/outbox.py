"""One socket's outgoing frames: a byte budget, a send deadline, and a writer task only while frames wait.

A reply is written at once when nothing waits before it and the transport holds nothing unsent
(the usual case: no task hop, nothing allocated). Otherwise frames queue here and a writer task,
started then, sends them in order: replies and pushes leave in the order they were produced, and the
listener fans a change out with put() calls that never wait. Once started, the writer stays, parked
while nothing waits: waking it is much cheaper than a new task for every push to every socket.

The budget counts the bytes (characters of JSON text) queued here plus those the transport holds
unsent. Request replies wait while over it (send()): a client that keeps asking but never reads
stops being served rather than growing. Pushes cannot wait: one that overruns the budget while the
client is not taking what is sent closes the socket (a burst queued faster than the writer got a
turn is not a slow client, unless it is far over). A client that takes nothing for the send
deadline while frames wait is closed too, as nginx's send_timeout does. Either close is 1008, and
the transport is aborted, its buffers dropped, instead of waiting on a client that does not read:
one such client costs at most its budget, one reply and a few kilobytes.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from typing import Callable

from aiohttp import web

log = logging.getLogger(__name__)

OVERFLOW_CODE = 1008
OVERFLOW_REASON = b"Outbound queue full"
DEADLINE_REASON = b"Send deadline exceeded"
# A client over its budget gets this long to take the close frame; then its transport is aborted.
CLOSE_SECONDS = 5.0
CLOSE_POLL_SECONDS = 0.05
# A frame this small written to an empty transport buffer stays under its high-water mark (64 KiB by
# default), so the write cannot pause; a larger reply goes through the writer, under the deadline.
DIRECT_MAX = 16 * 1024
BURST_FACTOR = 16  # pushes queued before the writer's first turn, in budgets, before giving up


class Outbox:
    """The socket's outgoing frames, the bytes they hold, and (while frames wait) their writer."""

    __slots__ = ("_ws", "_transport", "budget", "deadline", "_on_sent", "_on_overflow", "_frames", "_queued",
                 "_writer", "_more", "_room", "_sending", "_broken", "_closer", "_watch", "_mark", "_sent", "aborted")

    def __init__(self, ws: web.WebSocketResponse, request: web.BaseRequest, budget: int, deadline: float,
                 on_sent: Callable[[], None] = lambda: None,
                 on_overflow: Callable[[str], None] = lambda reason: None) -> None:
        self._ws = ws
        self._transport = request.transport
        self.budget, self.deadline = budget, deadline
        self._on_sent = on_sent            # metrics hooks (server/web/connection.py)
        self._on_overflow = on_overflow
        self._frames: collections.deque[str] | None = None  # made when a frame first has to wait
        self._queued = 0                   # characters in _frames
        self._writer: asyncio.Task[None] | None = None
        self._more: asyncio.Future[None] | None = None     # the writer is parked on it: nothing waits
        self._room: asyncio.Future[None] | None = None     # a waiter for room (send) or for the end (drained)
        self._sending = False              # the writer waits for the client to take a frame
        self._broken = False               # the peer went away under the writer
        self._closer: asyncio.Task[None] | None = None
        self._watch: asyncio.TimerHandle | None = None     # the send deadline, while the writer runs
        self._sent = 0                     # frames the writer sent (its progress, for the deadline)
        self._mark = (0, 0)                # (frames sent, bytes in the transport) when the deadline was armed
        self.aborted: int | None = None     # the close code sent when the transport had to be aborted

    @property
    def closing(self) -> bool:
        return self._closer is not None or self._broken or self._ws.closed

    def unsent(self) -> int:
        """The bytes this socket holds: queued here and in the transport's write buffer."""
        return self._queued + self._buffered()

    def _buffered(self) -> int:
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def overrun(self, extra: int = 0) -> bool:
        """Whether `extra` more bytes (held elsewhere) are more than this client may hold."""
        used = self.unsent() + extra
        return used > self.budget and (self._sending or used > BURST_FACTOR * self.budget)

    async def send(self, frame: str) -> None:
        """A reply (or a replayed push): written now if nothing waits, else queued once within the budget."""
        transport = self._transport
        if not self._busy and len(frame) <= DIRECT_MAX and transport is not None \
                and not transport.get_write_buffer_size():
            if self.closing:
                return
            try:  # an empty buffer takes a small frame without pausing: send_str does not wait
                await self._ws.send_str(frame)
            except ConnectionError:
                self._broken = True
                return
            self._on_sent()
            return
        while self._busy and self.unsent() + len(frame) > self.budget and not self.closing:
            await self._wait()  # the writer wakes it with each frame sent, and when it ends
        if not self.closing:
            self._queue(frame)

    def put(self, frame: str) -> None:
        """A push: queued now, never waiting; over the budget, the socket is closed."""
        if self.closing:
            return
        # The transport's buffer is looked at only when the writer waits for the client, or the queue alone is far over.
        if self._queue(frame) and (self._sending or self._queued > BURST_FACTOR * self.budget) and self.overrun():
            self.overflow()

    def _queue(self, frame: str) -> bool:
        """Queue a frame; whether a writer was already at work (else one starts)."""
        if self._frames is None:
            self._frames = collections.deque()
        self._frames.append(frame)
        self._queued += len(frame)
        if self._busy:
            return True
        if self._more is not None:  # the parked writer: it sends from its next turn
            more, self._more = self._more, None
            more.set_result(None)
        else:
            self._writer = asyncio.get_running_loop().create_task(self._write())
        return False

    @property
    def _busy(self) -> bool:
        """A writer is sending (not parked, nor yet to be started)."""
        return self._writer is not None and self._more is None

    async def drained(self) -> None:
        """Until every queued frame is written: shutdown sends the reply in flight before 1001."""
        while self._busy and not self.closing:
            await self._wait()

    async def close(self) -> None:
        """The socket is done: stop writing; a policy close in progress ends, and a transport left
        with unsent bytes (a peer that stopped reading) is aborted after a grace."""
        self._stop()
        if self._closer is not None:
            await self._closer
        elif self._transport is not None and self._transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(CLOSE_SECONDS, self._transport.abort)

    async def _wait(self) -> None:
        if self._room is None or self._room.done():
            self._room = asyncio.get_running_loop().create_future()
        await self._room

    def _wake(self) -> None:
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    async def _write(self) -> None:
        frames = self._frames
        assert frames is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                while frames:
                    frame = frames.popleft()
                    self._queued -= len(frame)
                    self._sending = True
                    if self._watch is None and (self._buffered() or len(frame) > DIRECT_MAX):
                        self._arm()  # the client is behind, or this frame may fill its buffer: it can stall now
                    await self._ws.send_str(frame)  # returns at once unless the client's buffers are full
                    self._sending = False
                    self._sent += 1
                    self._on_sent()
                    self._wake()
                self._disarm()
                self._more = loop.create_future()  # parked: _queue wakes it
                self._wake()                        # drained() and send() see it idle
                await self._more
        except ConnectionError:
            self._broken = True  # the peer went away; the read loop ends the connection
        finally:
            self._sending = False
            self._writer = self._more = None
            self._disarm()
            self._wake()

    # The send deadline: armed once the writer may stall (not for every push to a reading client: a
    # timer per push and socket doubled a fan-out's CPU), then checked once per deadline, not per frame.

    def _arm(self) -> None:
        self._mark = (self._sent, self._buffered())
        self._watch = asyncio.get_running_loop().call_later(self.deadline, self._check)

    def _disarm(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _check(self) -> None:
        """Progress since the last check (a frame sent, the unsent bytes fewer), or the close."""
        self._watch = None
        if not self._busy or self.closing:
            return
        sent, buffered = self._mark
        if self._sent != sent or self._buffered() < buffered or not self._sending:
            self._arm()
            return
        self.overflow(DEADLINE_REASON)

    # The policy close.

    def overflow(self, reason: bytes = OVERFLOW_REASON) -> None:
        """Give up on this client: close it with 1008, then abort its transport."""
        if self._closer is not None:
            return
        why = "takes nothing" if reason is DEADLINE_REASON else "does not read"
        log.warning("closing a socket with %d bytes unsent: the client %s", self.unsent(), why)
        self._on_overflow("deadline" if reason is DEADLINE_REASON else "queue")
        self._stop()
        grace = 0.0 if reason is DEADLINE_REASON else min(CLOSE_SECONDS, self.deadline)
        self._closer = asyncio.get_running_loop().create_task(self._policy_close(reason, grace))

    def _stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()  # it may be stuck waiting for the client to read
        if self._frames:
            self._frames.clear()
        self._queued = 0
        self._disarm()
        self._wake()

    async def _policy_close(self, reason: bytes, grace: float) -> None:
        # A client that took nothing for the deadline gets no grace: its buffers are full.
        await self.shut(OVERFLOW_CODE, reason, grace)

    async def shut(self, code: int, reason: bytes, grace: float = CLOSE_SECONDS) -> None:
        """Close the socket: the close frame, if the client takes it within the grace; otherwise
        the transport is aborted (a client that does not read then holds nothing: a plain close
        would wait for its buffers forever)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + grace
        closed = False
        if grace > 0:
            # A task of its own: a close cancelled half-way inside aiohttp does not end as a timeout.
            closing = asyncio.ensure_future(self._ws.close(code=code, message=reason))
            await asyncio.wait([closing], timeout=grace)
            if closing.done():
                closed = closing.cancelled() or closing.exception() is None  # retrieved either way
            else:
                closing.cancel()
        transport = self._transport
        if transport is None:
            return
        # aiohttp's close returns at once when the read loop takes the close: the frame may still wait.
        while closed and transport.get_write_buffer_size() and loop.time() < until:
            await asyncio.sleep(CLOSE_POLL_SECONDS)
        if not closed or transport.get_write_buffer_size():
            self.aborted = code
            transport.abort()
