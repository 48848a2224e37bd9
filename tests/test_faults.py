"""Database faults on a PostgreSQL of their own: stopped, killed mid-write, restarted under a running server."""
from __future__ import annotations

import dataclasses

import asyncio
import itertools
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.accounts.users import create_user, issue_token
from server.app import create_app
from server.config import Config
from server.web.keys import DB, SEALER
from tests.conftest import ADA, TEST_SECRET, UNAVAILABLE, UNKNOWN, Socket, error, ok
from tests.faults import FaultyPostgres

pytestmark = pytest.mark.embedded

HANG_GUARD = 6  # seconds: the issue's "a 503 within 5 s, never a hang", as a guard, not a timing


@pytest.fixture
async def fault_client(aiohttp_client: Any, faulty: FaultyPostgres) -> AsyncIterator[TestClient]:
    faulty.query("TRUNCATE patients, users RESTART IDENTITY CASCADE")
    config = Config(session_key=TEST_SECRET, db_timeout_seconds=3.0, db_pool_max=8)
    client = await aiohttp_client(TestServer(create_app(dataclasses.replace(config, database_url=faulty.url))))
    await create_user(client.app[DB], "nurse", None)
    client.token = await issue_token(client.app[DB], "nurse", client.app[SEALER])
    yield client
    if not faulty.query("SELECT 1 WHERE pg_is_in_recovery() IS NOT NULL"):  # pragma: no cover
        faulty.start()


async def request(ws: Socket, action: str, **keys: Any) -> Any:
    return await asyncio.wait_for(ws.request(action, **keys), HANG_GUARD)


async def warm_pool(client: TestClient, count: int) -> None:
    """Several requests at once, so that the pool holds several idle connections that will go stale."""
    sockets = [await client.ws_connect(f"/ws/?token={client.token}") for _ in range(count)]
    replies = await asyncio.gather(*(Socket(ws).request("list") for ws in sockets))
    assert all(reply["response_status"] == 200 for reply in replies)
    for ws in sockets:
        await ws.close()


@pytest.mark.parametrize("mode", ["immediate", "fast"])
async def test_stopped_database_gives_503s_then_service_resumes(fault_client: TestClient, faulty: FaultyPostgres,
                                                                 mode: str) -> None:
    await warm_pool(fault_client, 6)
    async with fault_client.ws_connect(f"/ws/?token={fault_client.token}") as connection:
        ws = Socket(connection)
        created = (await request(ws, "create", data=ADA))["data"]
        faulty.stop(mode)
        try:
            # One request only: the pool keeps its other idle connections, dead now, for after the restart.
            assert await request(ws, "create", data=ADA) == error(UNAVAILABLE, "create", 503)
            rest = await asyncio.wait_for(fault_client.get("/api/patients/",
                                                           headers={"Authorization": f"Token {fault_client.token}"}),
                                          HANG_GUARD)
            assert (rest.status, await rest.json()) == (503, {"detail": "Service unavailable, try again."})
            assert not connection.closed
        finally:
            faulty.start()
        # Back by itself: no stale pooled connection is handed out, not even once.
        for request_id in range(8):
            assert await request(ws, "retrieve", pk=created["id"], request_id=request_id) == ok(
                created, "retrieve", request_id=request_id)
        assert await request(ws, "list") == ok([created], "list")


async def test_a_new_socket_while_the_database_is_down_gets_503_json(fault_client: TestClient,
                                                                    faulty: FaultyPostgres) -> None:
    faulty.stop("immediate")
    try:
        response = await asyncio.wait_for(fault_client.get(f"/ws/?token={fault_client.token}"), HANG_GUARD)
        assert (response.status, await response.json()) == (503, {"detail": "Service unavailable, try again."})
    finally:
        faulty.start()
    async with fault_client.ws_connect(f"/ws/?token={fault_client.token}") as connection:
        assert await request(Socket(connection), "list") == ok([], "list")


class WriteLog:
    """What each client was told: acknowledged creates and patches, and what it tried."""

    def __init__(self) -> None:
        self.created: dict[int, str] = {}         # id -> marker, acknowledged 201
        self.tried_creates: set[str] = set()
        self.patched: dict[int, list[str]] = {}   # id -> markers tried, in order
        self.acked_patch: dict[int, str] = {}     # id -> last acknowledged marker
        self.refused: set[str] = set()           # markers of writes answered 503: never in the database
        self.acks = 0
        self.enough = asyncio.Event()


async def writer(client: TestClient, number: int, log: WriteLog, threshold: int) -> None:
    """Create one's own patient, then alternate creates and patches until the database fails us."""
    async with client.ws_connect(f"/ws/?token={client.token}") as connection:
        ws = Socket(connection)
        own: int | None = None
        for step in itertools.count():
            marker = f"w{number}-{step}"
            if own is None or step % 2 == 0:
                log.tried_creates.add(marker)
                reply = await request(ws, "create", data={**ADA, "first_name": marker, "last_name": marker})
                if reply["response_status"] == 201:
                    log.created[reply["data"]["id"]] = marker
                    own = reply["data"]["id"] if own is None else own
            else:
                log.patched.setdefault(own, []).append(marker)
                reply = await request(ws, "patch", pk=own, data={"first_name": marker, "last_name": marker})
                if reply["response_status"] == 200:
                    assert reply["data"]["first_name"] == reply["data"]["last_name"] == marker
                    log.acked_patch[own] = marker
            if reply["response_status"] not in (200, 201):
                # 503: nothing was written; 504: the write was sent and its outcome is unknown.
                assert reply in (error(UNAVAILABLE, reply["action"], 503), error(UNKNOWN, reply["action"], 504))
                if reply["response_status"] == 503:
                    log.refused.add(marker)
                return
            log.acks += 1
            if log.acks >= threshold:
                log.enough.set()


async def test_killed_mid_write_nothing_acknowledged_is_lost_nothing_half_written(
        fault_client: TestClient, faulty: FaultyPostgres) -> None:
    log = WriteLog()
    writers = [asyncio.create_task(writer(fault_client, number, log, threshold=150)) for number in range(20)]
    await asyncio.wait_for(log.enough.wait(), 60)
    await asyncio.to_thread(faulty.stop, "immediate")  # the writers keep writing while it dies
    try:
        await asyncio.wait_for(asyncio.gather(*writers), 60)
    finally:
        faulty.start()
    reconcile(faulty, log)


def reconcile(faulty: FaultyPostgres, log: WriteLog) -> None:
    rows = {pk: (first, last) for pk, first, last in faulty.query("SELECT id, first_name, last_name FROM patients")}
    for pk, marker in log.created.items():  # every acknowledged create is there...
        assert pk in rows
    for pk, (first, last) in rows.items():  # ...and nothing is there that nobody tried, or half of a write
        assert first == last, (pk, first, last)
        assert first not in log.refused, (pk, first)  # "try again" was never said of a write that committed
        tried = log.patched.get(pk, [])
        if pk in log.acked_patch:  # the last acknowledged patch, or one tried after it
            assert first in tried[tried.index(log.acked_patch[pk]):], (pk, first)
        elif pk in log.created:
            assert first in [log.created[pk], *tried], (pk, first)
        else:
            assert first in log.tried_creates, (pk, first)
    assert len(log.created) >= 50 and len(set(log.created.values())) == len(log.created)
