"""Graceful close: a socket's reply in flight is sent before the socket is closed with 1001."""
from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, web

from server.keys import REPLYING, WEBSOCKETS
from server.outbox import Outbox

REPLY_GRACE_SECONDS = 5.0  # how long shutdown waits for a request in flight (the database timeout's order)


async def close_after_reply(ws: web.WebSocketResponse, replying: tuple[asyncio.Lock, Outbox] | None) -> None:
    """Wait (bounded) until the socket is not mid-request and its reply is written, then close it 1001
    before it takes another request."""
    acquired = False
    if replying is not None:
        lock, outbox = replying
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lock.acquire(), REPLY_GRACE_SECONDS)
            acquired = True
            await asyncio.wait_for(outbox.drained(), REPLY_GRACE_SECONDS)
    try:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")
    finally:
        if acquired and replying is not None:
            replying[0].release()


async def close_websockets(app: web.Application) -> None:
    """on_shutdown: every open socket at once, so that one slow peer does not hold up the others."""
    await asyncio.gather(*(close_after_reply(ws, app[REPLYING].get(ws)) for ws in list(app[WEBSOCKETS])),
                         return_exceptions=True)
