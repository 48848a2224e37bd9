"""`dashboard-server history RESOURCE PK`: an object's recorded changes, one line each.

    2026-11-28T05:30:02.650705Z nurse create first_name="Ada", last_name="Lovelace", ...
    2026-11-28T05:31:10.004120Z - update last_name: "Lovelace" -> "King"
    2026-11-28T05:32:00.120000Z nurse delete

When (the writing transaction's time), who (the server user; `-` for psql and other direct
writes; a deleted user's name from former_users, `#<id>` if even that is gone), what, and the fields it set or changed (writable
fields only: the server-set ones, such as updated_at, change with every write).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from schemas.fields import format_datetime
from server.live.pushes import Stream, snapshot_row
from server.store.db import Database


def _who(row: Mapping[str, Any]) -> str:
    if row["user_id"] is None:
        return "-"
    return row["username"] or f"#{row['user_id']}"


def _fields(stream: Stream, row: Mapping[str, Any]) -> str:
    schema, writable = stream.schema_instance, stream.writable_fields
    now = stream.dump(snapshot_row(schema, row["data"]))
    if row["op"] == "create":
        return ", ".join(f"{name}={json.dumps(now[name])}" for name in writable)
    if row["op"] == "update":
        before = stream.dump(snapshot_row(schema, {**row["data"], **(row["old"] or {})}))
        return ", ".join(f"{name}: {json.dumps(before[name])} -> {json.dumps(now[name])}"
                         for name in writable if before[name] != now[name])
    return ""


def history_line(stream: Stream, row: Mapping[str, Any]) -> str:
    words = [format_datetime(row["recorded_at"]), _who(row), row["op"], _fields(stream, row)]
    return " ".join(word for word in words if word)


async def object_history(db: Database, stream: Stream, pk: int) -> list[str]:
    """Every retained change of one object, oldest first."""
    rows = await db.fetch_all("changes.history", {"resource": stream.name, "pk": pk})
    return [history_line(stream, row) for row in rows]
