"""Open sockets' credentials, re-checked periodically: a revoked token or disabled user is closed 4401."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from aiohttp import web

from server.errors import Unavailable
from server.keys import CONFIG, DB, WEBSOCKETS

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401


async def close_revoked_sockets(app: web.Application) -> int:
    """One check of every open socket's token or session; returns how many were closed."""
    sockets = {ws: principal for ws, principal in app[WEBSOCKETS].items() if not ws.closed}
    if not sockets:
        return 0
    digests = sorted({principal.credential for principal in sockets.values()})
    rows = await app[DB].fetch_all("users.live_credentials", {"digests": digests})
    live = {bytes(row["digest"]) for row in rows}
    revoked = [ws for ws, principal in sockets.items() if principal.credential not in live]
    for ws in revoked:
        log.info("closing a socket of user %s: credentials revoked", sockets[ws].user.username)
    # Concurrently: a peer slow to answer the close frame must not hold up the others.
    await asyncio.gather(*(ws.close(code=CLOSE_UNAUTHORIZED, message=b"Credentials revoked") for ws in revoked))
    return len(revoked)


async def _watch(app: web.Application) -> None:
    while True:
        await asyncio.sleep(app[CONFIG].credential_check_seconds)
        try:
            await close_revoked_sockets(app)
        except Unavailable:
            pass  # the database is away: keep the sockets, check again next time (db.py logged it)
        except Exception:
            log.exception("credential check of open sockets failed")


async def credential_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """A cleanup_ctx: the periodic check runs while the app (and its pool) does."""
    task = asyncio.create_task(_watch(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
