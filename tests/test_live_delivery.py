"""Live changes that never miss: bulk SQL, commit order, resuming, expiry, a lost listener connection."""
from __future__ import annotations

import asyncio

import psycopg2
import pytest

from server.config import Config
from tests.conftest import Socket, create, error, ok
from tests.live import CURSOR, nothing_more, prune_log, push, pushes, sql
from tests.pg import admin, database_name

BULK = 100


@pytest.fixture
def config() -> Config:
    # Pruning only when a test asks for it; few rows kept then.
    return Config(heartbeat_seconds=30.0, db_timeout_seconds=3.0, changes_retain_rows=3,
                  changes_prune_seconds=3600.0)


async def subscribe(ws: Socket, request_id: str = "all", **options) -> str:
    reply = await ws.request("subscribe", request_id=request_id, **options)
    assert reply == ok({"cursor": CURSOR}, "subscribe", 201, request_id=request_id), reply
    return reply["data"]["cursor"]


async def test_bulk_sql_is_one_push_per_row(ws: Socket, client) -> None:
    await subscribe(ws)
    url = client.app_database_url
    sql(url, "INSERT INTO patients (first_name, last_name, admission_date) "
             "SELECT 'P' || n, 'Bulk', '2026-11-01T08:00:00Z' FROM generate_series(1, %s) AS n", (BULK,))
    created = await pushes(ws, BULK)
    assert [(p["action"], p["data"]["first_name"]) for p in created] == [("create", f"P{n}") for n in range(1, BULK + 1)]
    assert created[0] == push(created[0]["data"], "create", 200, "all")
    sql(url, "UPDATE patients SET last_name = upper(first_name)")
    updated = await pushes(ws, BULK)
    assert [(p["action"], p["data"]["last_name"]) for p in updated] == [("update", f"P{n}") for n in range(1, BULK + 1)]
    assert len({p["cursor"] for p in updated}) == BULK
    await nothing_more(ws)


async def ready(client) -> int:
    """GET /readyz's status: 200 only while the database answers and the listener is connected and caught up."""
    async with client.get("/readyz") as response:
        return response.status


async def test_transactions_are_delivered_in_commit_order_and_none_is_skipped(ws: Socket, client, token: str) -> None:
    start = await subscribe(ws)
    first, second = psycopg2.connect(client.app_database_url), psycopg2.connect(client.app_database_url)
    try:
        with first.cursor() as early, second.cursor() as late:
            # T1 takes the earlier change id, T2 the later one; T2 commits first.
            early.execute("INSERT INTO patients (first_name, last_name, admission_date) "
                          "VALUES ('Early', 'T1', now()) RETURNING id")
            late.execute("INSERT INTO patients (first_name, last_name, admission_date) "
                         "VALUES ('Late', 'T2', now()) RETURNING id")
            second.commit()
            # Delivered while T1 is still open: nothing waits for a slow transaction.
            [t2] = await pushes(ws, 1)
            assert t2["data"]["first_name"] == "Late"
            first.commit()
            [t1] = await pushes(ws, 1)
            assert t1["data"]["first_name"] == "Early"
    finally:
        first.close()
        second.close()
    ids = sql(client.app_database_url, "SELECT object_id, id FROM changes ORDER BY id")
    assert [object_id for object_id, _ in ids] == [t1["data"]["id"], t2["data"]["id"]]  # out of id order
    await nothing_more(ws)
    # A client that stopped right after T2's push resumes with exactly T1's change.
    async with client.ws_connect(f"/ws/?token={token}") as connection:  # the same user
        resumed = Socket(connection)
        assert await resumed.request("subscribe", request_id="r", since=t2["cursor"]) == ok(
            {"cursor": t2["cursor"]}, "subscribe", 201, request_id="r")
        # (A replayed push may name its position differently from the live one: both resume alike.)
        assert await pushes(resumed, 1) == [push(t1["data"], "create", 200, "r")]
        await nothing_more(resumed)
        # From before both: both, each once.
        await subscribe(resumed, "r2", since=start)
        assert sorted(p["data"]["first_name"] for p in await pushes(resumed, 2)) == ["Early", "Late"]
        await nothing_more(resumed)


async def test_resume_replays_exactly_what_was_missed(ws: Socket, client, token: str) -> None:
    url = client.app_database_url
    start = await subscribe(ws, filters={"last_name": "Ward"})
    ada = await create(ws, last_name="Ward")
    [created] = await pushes(ws, 1)
    # One transaction, three changes: one pass; a client may stop in the middle of it.
    sql(url, "UPDATE patients SET first_name = 'A1'; UPDATE patients SET first_name = 'A2';"
             "INSERT INTO patients (first_name, last_name, admission_date) VALUES ('Other', 'Elsewhere', now());"
             "UPDATE patients SET first_name = 'A3' WHERE last_name = 'Ward'")
    a1, a2, a3 = await pushes(ws, 3)
    assert [p["data"]["first_name"] for p in (a1, a2, a3)] == ["A1", "A2", "A3"]
    await ws.request("unsubscribe", request_id="all")
    # Missed while away: an update, the row leaving the filter, a create elsewhere, a delete.
    sql(url, "UPDATE patients SET first_name = 'A4' WHERE last_name = 'Ward'")
    sql(url, "UPDATE patients SET last_name = 'Moved' WHERE last_name = 'Ward'")
    sql(url, "INSERT INTO patients (first_name, last_name, admission_date) VALUES ('Bea', 'Ward', now())")
    sql(url, "DELETE FROM patients WHERE first_name = 'Other'")
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        again = Socket(connection)
        expectations = [
            (start, [("create", "Ada"), ("update", "A1"), ("update", "A2"), ("update", "A3"), ("update", "A4"),
                     ("delete", None), ("create", "Bea")]),
            (created["cursor"], [("update", "A1"), ("update", "A2"), ("update", "A3"), ("update", "A4"),
                                 ("delete", None), ("create", "Bea")]),
            (a1["cursor"], [("update", "A2"), ("update", "A3"), ("update", "A4"), ("delete", None), ("create", "Bea")]),
            (a3["cursor"], [("update", "A4"), ("delete", None), ("create", "Bea")]),
        ]
        for number, (since, expected) in enumerate(expectations):
            request_id = f"resume-{number}"
            assert await again.request("subscribe", request_id=request_id, since=since,
                                       filters={"last_name": "Ward"}) == ok(
                {"cursor": since}, "subscribe", 201, request_id=request_id)
            replayed = await pushes(again, len(expected))
            assert [(p["action"], p["data"].get("first_name")) for p in replayed] == expected, since
            assert replayed[-2]["data"] == {"pk": ada["id"]} and {p["request_id"] for p in replayed} == {request_id}
            await again.request("unsubscribe", request_id=request_id)
            await nothing_more(again)
        # Resuming from the last replayed cursor: nothing, then live. (A cursor is a position in
        # the whole log: it resumes a subscription with the same filters.)
        await subscribe(again, "live", since=replayed[-1]["cursor"], filters={"last_name": "Ward"})
        await nothing_more(again)
        grace = await create(again, first_name="Grace", last_name="Ward")
        assert await pushes(again, 1) == [push(grace, "create", 200, "live")]


async def test_an_expired_cursor_is_410(ws: Socket, client, config: Config) -> None:
    start = await subscribe(ws)
    received = []
    for n in range(5):
        await create(ws, first_name=f"P{n}")
        received += await pushes(ws, 1)
    # Pruned by another process with this configuration; the server learns of it from the database.
    retention = {"retain_seconds": config.changes_retain_seconds, "retain_rows": config.changes_retain_rows}
    assert await prune_log(client.app_database_url, **retention) == 2  # five changes, three kept
    assert await prune_log(client.app_database_url, **retention) == 0
    for since in (start, received[0]["cursor"]):
        assert await ws.request("subscribe", request_id="late", since=since) == error(
            ["Cursor expired, list again."], "subscribe", 410, request_id="late")
    # A cursor past what was pruned still resumes, with exactly what followed.
    assert (await ws.request("subscribe", request_id="ok", since=received[2]["cursor"]))["response_status"] == 201
    assert [p["data"]["first_name"] for p in await pushes(ws, 2)] == ["P3", "P4"]
    await nothing_more(ws)


async def test_pruning_by_age(ws: Socket, client) -> None:
    start = await subscribe(ws)
    await create(ws)
    await pushes(ws, 1)
    url = client.app_database_url
    assert await prune_log(url, retain_seconds=3600.0, retain_rows=1000) == 0
    sql(url, "UPDATE changes SET recorded_at = recorded_at - interval '2 hours'")
    assert await prune_log(url, retain_seconds=3600.0, retain_rows=1000) == 1
    assert await ws.request("subscribe", request_id="late", since=start) == error(
        ["Cursor expired, list again."], "subscribe", 410, request_id="late")


async def test_a_lost_listener_connection_loses_nothing(ws: Socket, client, pg_server: str) -> None:
    await subscribe(ws)
    assert await ready(client) == 200  # the listener is connected
    url = client.app_database_url
    writer = psycopg2.connect(url)  # opened first: it keeps working while new connections are refused
    name = database_name(url)
    try:
        writer.autocommit = True
        admin(pg_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')  # the listener cannot come back yet
        with writer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND application_name = 'dashboard-server listener'")
            assert cursor.fetchall() == [(True,)]
            for n in range(5):  # surely while the listener is away
                cursor.execute("INSERT INTO patients (first_name, last_name, admission_date) "
                               "VALUES (%s, 'Gap', now())", (f"G{n}",))
        for _ in range(200):  # the server has noticed the loss: not ready (a bounded wait)
            if await ready(client) == 503:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("/readyz stayed 200 while the listener was away")
    finally:
        admin(pg_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        writer.close()
    received = await pushes(ws, 5)
    assert [p["data"]["first_name"] for p in received] == [f"G{n}" for n in range(5)]
    await nothing_more(ws)
    assert await ready(client) == 200  # it reconnected, and caught up
    await create(ws)
    assert [p["action"] for p in await pushes(ws, 1)] == ["create"]
