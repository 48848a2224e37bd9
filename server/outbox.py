"""One writer per socket: every outgoing frame goes through a bounded queue; overflow closes 1008.

Replies and pushes share the queue, so they leave in the order they were produced. Nothing but
the writer task ever awaits the socket: the listener fans a change out to a thousand sockets
with put() calls that never wait, so a client that stops reading cannot slow it or anyone else.
When such a client's queue is full it is closed with 1008 (policy). Request replies, which the
client asked for, wait for room instead (put_paced): a client that pipelines requests without
reading is slowed down, like plain TCP backpressure, rather than dropped.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)

OVERFLOW_CODE = 1008
OVERFLOW_REASON = b"Outbound queue full"
# A client that reads nothing never takes the close frame either: then drop the connection.
CLOSE_SECONDS = 10.0


class Outbox:
    """The socket's outgoing frames and the task that writes them."""

    def __init__(self, ws: web.WebSocketResponse, request: web.BaseRequest, limit: int) -> None:
        self._ws = ws
        self._request = request
        self._limit = max(1, limit)
        self._queue: asyncio.Queue[str] = asyncio.Queue(self._limit)
        self._room = asyncio.Event()
        self._writer = asyncio.create_task(self._write())
        self._closer: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        return self._closer is not None or self._writer.done()

    def put(self, frame: str) -> None:
        """Queue a frame now; if the client is this far behind, close it instead."""
        if self.closing:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflow()

    async def put_paced(self, frame: str) -> None:
        """Queue a frame once the queue is at most half full, leaving room for pushes."""
        while not self.closing and self._queue.qsize() >= max(1, self._limit // 2):
            self._room.clear()
            await self._room.wait()
        self.put(frame)

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
                frame = await self._queue.get()
                self._room.set()
                await self._ws.send_str(frame)
        except ConnectionError:
            pass  # the peer went away; the receive loop ends the connection
        finally:
            self._room.set()

    def overflow(self) -> None:
        """Give up on this client: close it with 1008."""
        if self._closer is not None:
            return
        log.warning("closing a socket with %d frames unsent: the client does not read", self._queue.qsize())
        self._writer.cancel()  # it may be stuck waiting for the client to read
        self._room.set()
        self._closer = asyncio.create_task(self._policy_close())

    async def _policy_close(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self._ws.close(code=OVERFLOW_CODE, message=OVERFLOW_REASON)
        except (TimeoutError, ConnectionError):
            if self._request.transport is not None:
                self._request.transport.abort()
