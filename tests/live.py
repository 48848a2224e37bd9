"""Helpers for the live-change tests: push envelopes, reading pushes, writing as psql would, pruning
the change log as another server process would."""
from __future__ import annotations

import asyncio
from typing import Any

import psycopg2

from server.config import PROJECT_DIR
from server.live.cursors import Cursor
from server.live.listener import Listener
from server.live.pushes import Change
from server.store.db import open_database
from server.store.queries import load_queries
from tests.conftest import Pattern, Socket

CURSOR = Pattern(r"[0-9:,/]+")


def push(data: Any, action: str, status: int, request_id: Any, cursor: Any = CURSOR) -> dict[str, Any]:
    """A `subscribe` push: the five keys and the cursor."""
    return {"errors": [], "data": data, "action": action, "response_status": status, "request_id": request_id,
            "cursor": cursor}


def instance_push(data: Any, action: str, status: int, request_id: Any) -> dict[str, Any]:
    """A `subscribe_instance` push: DCRF's five keys, no cursor."""
    return {"errors": [], "data": data, "action": action, "response_status": status, "request_id": request_id}


async def pushes(ws: Socket, count: int) -> list[dict[str, Any]]:
    """The next `count` frames' payloads (all on the patients stream)."""
    frames = [await ws.receive() for _ in range(count)]
    assert all(frame["stream"] == "patients" for frame in frames), frames
    return [frame["payload"] for frame in frames]


async def nothing_more(ws: Socket) -> None:
    """The next frame answers a request sent now: nothing else was queued for this socket.

    Meaningful right after reading a push: every push of one change is queued at once, so a push
    that should not exist would already be waiting ahead of this reply."""
    reply = await ws.request("list", request_id="nothing-more", limit=1)
    assert reply["request_id"] == "nothing-more" and reply["action"] == "list", reply


def sql(url: str, statement: str, params: Any = None) -> list[tuple]:
    """Run one statement in its own transaction, as psql would (no acting user)."""
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


async def listeners_settled(url: str, grace_seconds: float) -> None:
    """Until every live listener's recorded mark sees every change (at most 10 s)."""
    behind = ("SELECT count(*) FROM listener_marks m WHERE heartbeat_at >= now() - make_interval(secs => %s) "
              "AND EXISTS (SELECT FROM changes c WHERE NOT pg_visible_in_snapshot(c.xid, m.mark))")
    async with asyncio.timeout(10):
        while sql(url, behind, (grace_seconds,))[0][0]:
            await asyncio.sleep(0.02)


class NoOne:
    """An audience nobody is in: a listener for it moves its mark and reads no change."""

    def __bool__(self) -> bool:
        return False

    def publish(self, change: Change, cursor: Cursor) -> None:
        raise AssertionError("nobody listens")

    def lose_all(self) -> int:
        return 0


async def prune_log(url: str, *, retain_seconds: float, retain_rows: int, audit_seconds: float = 366 * 86400.0,
                    grace_seconds: float = 60.0, settled: bool = True) -> int:
    """Prune the change log from a process of its own, as another server process would; how many went.

    Pruning takes only changes every live listener's mark sees (the server's under test, and this
    one's, whose first pass sees every change committed before the call); a listener silent for more
    than grace_seconds does not count. With `settled`, first wait (bounded) until every live listener
    has recorded a mark past every change: a server records its mark just after handing changes
    out, so a test that has just received a push may otherwise prune before it has. The server under
    test learns of it from the database (changes_pruned, listener_marks), as from a neighbour's pruning."""
    if settled:
        await listeners_settled(url, grace_seconds)
    db = await open_database(url, load_queries(PROJECT_DIR / "sql"), minsize=1, maxsize=1, timeout=10.0)
    listener = Listener(db, NoOne(), poll_seconds=60.0, timeout=10.0,
                        retain_seconds=retain_seconds, retain_rows=retain_rows, audit_seconds=audit_seconds,
                        grace_seconds=grace_seconds)
    following = asyncio.create_task(listener.run())
    try:
        await listener.position()
        return await listener.prune()
    finally:
        following.cancel()
        await asyncio.wait([following])
        await listener.forget()
        await db.close()
