"""Helpers for the live-change tests: push envelopes, reading pushes, writing as psql would."""
from __future__ import annotations

from typing import Any

import psycopg2

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
