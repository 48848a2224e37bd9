"""One writer per socket: every outgoing frame goes through its queue; a client that does not read
is closed with 1008.

Replies and pushes share the queue, so they leave in the order they were produced. Nothing but
the writer task ever awaits the socket: the listener fans a change out to a thousand sockets
with put() calls that never wait, so a client that stops reading cannot slow it or anyone else.

The limit is on frames waiting *while the client is not taking them*: the writer is stuck in a
send because the client's TCP window and our buffers are full. A burst queued faster than the
writer got a turn (a bulk change fanned out to several subscriptions of one socket) is not a
slow client and is written out at the next turn. Request replies, which the client asked for,
wait for room instead (put_paced): a client that pipelines requests without reading replies is
slowed down, like plain TCP backpressure, rather than dropped.
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
# A client that reads nothing never takes the close frame either: then drop the connection.
CLOSE_SECONDS = 10.0


class Outbox:
    """The socket's outgoing frames and the task that writes them."""

    def __init__(self, ws: web.WebSocketResponse, request: web.BaseRequest, limit: int,
                 on_sent: Callable[[], None] = lambda: None,
                 on_overflow: Callable[[], None] = lambda: None) -> None:
        self._ws = ws
        self._on_sent = on_sent          # metrics hooks (server/web/connection.py)
        self._on_overflow = on_overflow
        self._request = request
        self.limit = max(1, limit)
        self._frames: collections.deque[str] = collections.deque()
        self._ready = asyncio.Event()      # frames are waiting
        self._room = asyncio.Event()       # a frame left the queue (for put_paced)
        self._sending = False              # the writer waits for the client to take a frame
        self._writer = asyncio.create_task(self._write())
        self._closer: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        return self._closer is not None or self._writer.done()

    @property
    def stalled(self) -> bool:
        """The client is not taking what is sent (a put() would wait in line behind it)."""
        return self._sending

    def put(self, frame: str) -> None:
        """Queue a frame now; if the client is `limit` frames behind and not reading, close it."""
        if self.closing:
            return
        self._frames.append(frame)
        self._ready.set()
        if len(self._frames) > self.limit and self._sending:
            self.overflow()

    async def put_paced(self, frame: str) -> None:
        """Queue a frame once at most half the limit is waiting, leaving room for pushes."""
        while not self.closing and len(self._frames) >= max(1, self.limit // 2):
            self._room.clear()
            await self._room.wait()
        self.put(frame)

    async def drained(self) -> None:
        """Until every queued frame is written: shutdown sends the reply in flight before 1001."""
        while (self._frames or self._sending) and not self.closing:
            self._room.clear()
            await self._room.wait()

    async def close(self) -> None:
        """Stop writing (the socket is done); wait for a policy close in progress."""
        self._writer.cancel()
        self._room.set()
        await asyncio.wait([self._writer])
        if self._closer is not None:
            await self._closer

    async def _write(self) -> None:
        try:
            while True:
                while not self._frames:
                    self._ready.clear()
                    await self._ready.wait()
                frame = self._frames.popleft()
                self._room.set()
                self._sending = True
                await self._ws.send_str(frame)  # returns at once unless the client's buffers are full
                self._sending = False
                self._room.set()
                self._on_sent()
        except ConnectionError:
            pass  # the peer went away; the receive loop ends the connection
        finally:
            self._room.set()

    def overflow(self) -> None:
        """Give up on this client: close it with 1008."""
        if self._closer is not None:
            return
        log.warning("closing a socket with %d frames unsent: the client does not read", len(self._frames))
        self._on_overflow()
        self._writer.cancel()  # it may be stuck waiting for the client to read
        self._frames.clear()
        self._room.set()
        self._closer = asyncio.create_task(self._policy_close())

    async def _policy_close(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self._ws.close(code=OVERFLOW_CODE, message=OVERFLOW_REASON)
        except (TimeoutError, ConnectionError):
            if self._request.transport is not None:
                self._request.transport.abort()
