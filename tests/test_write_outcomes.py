"""Honest write outcomes against a real `serve` (uvloop) on a PostgreSQL of its own: a write sent and not
answered is 504 "outcome unknown", never 503 "try again"; its statement is cancelled; creates with an
idempotency key (both transports) can be retried safely."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import aiohttp
import psycopg2
import pytest

from tests.conftest import ADA, UNAVAILABLE, UNKNOWN
from tests.faults import FaultyPostgres
from tests.processes import ServerProcess, make_token

pytestmark = pytest.mark.embedded

REUSED = ["This idempotency key was already used with a different request."]
DB_TIMEOUT = 2
GUARD = DB_TIMEOUT + 4  # seconds: a reply comes within the database timeout (a bound, not a timing)


@pytest.fixture
async def served(faulty: FaultyPostgres) -> AsyncIterator[tuple[ServerProcess, str]]:
    """`serve` (one worker) with a 2 s database timeout."""
    faulty.query("TRUNCATE patients, users RESTART IDENTITY CASCADE")
    token = await make_token(faulty.url)
    server = await ServerProcess.start(faulty.url, "--workers", "1", env={"DASHBOARD_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT)})
    try:
        async with aiohttp.ClientSession() as http:
            await server.wait_serving(http)
        yield server, token
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert "Traceback" not in server.log and " 500 " not in server.log, server.log


def envelope(action: str, request_id: str, status: int, data: Any = None, errors: list | None = None) -> dict:
    return {"errors": errors or [], "data": data, "action": action, "response_status": status,
            "request_id": request_id}


async def send(ws: aiohttp.ClientWebSocketResponse, action: str, request_id: str, **keys: Any) -> None:
    await ws.send_json({"stream": "patients", "payload": {"action": action, "request_id": request_id, **keys}})


async def call(ws: aiohttp.ClientWebSocketResponse, action: str, request_id: str, **keys: Any) -> dict:
    await send(ws, action, request_id, **keys)
    return (await ws.receive_json(timeout=GUARD))["payload"]


async def warm_pool(http: aiohttp.ClientSession, server: ServerProcess, token: str, count: int) -> None:
    """Requests at once on `count` sockets, so that the pool holds that many open connections: a
    write while the database is frozen must find one (a new connection is refused as 503, rightly)."""
    sockets = [await http.ws_connect(f"{server.http}/ws/?token={token}") for _ in range(count)]
    replies = await asyncio.gather(*(call(ws, "list", "warm") for ws in sockets))
    assert {reply["response_status"] for reply in replies} == {200}
    for ws in sockets:
        await ws.close()


def patients_named(faulty: FaultyPostgres, name: str) -> list[tuple]:
    return faulty.query("SELECT id FROM patients WHERE first_name = %s", (name,))


async def test_frozen_database_writes_are_504_never_503_and_a_keyed_retry_creates_nothing(
        served: tuple[ServerProcess, str], faulty: FaultyPostgres) -> None:
    server, token = served
    async with aiohttp.ClientSession() as http:
        await warm_pool(http, server, token, 10)
        ws = await http.ws_connect(f"{server.http}/ws/?token={token}")
        patched = (await call(ws, "create", "a", data=ADA))["data"]
        deleted = (await call(ws, "create", "b", data=ADA))["data"]
        frozen = faulty.freeze()
        try:
            await send(ws, "patch", "patch", pk=patched["id"], data={"first_name": "Frozen"})
            await send(ws, "create", "create", data={**ADA, "first_name": "Keyed"}, idempotency_key="k-1")
            await send(ws, "delete", "delete", pk=deleted["id"])
            replies = [(await ws.receive_json(timeout=GUARD))["payload"] for _ in range(3)]
        finally:
            faulty.thaw(frozen)
        assert sorted(replies, key=lambda reply: reply["request_id"]) == [
            envelope("create", "create", 504, errors=UNKNOWN),
            envelope("delete", "delete", 504, errors=UNKNOWN),
            envelope("patch", "patch", 504, errors=UNKNOWN)]
        # Whatever the thawed database did with the first create, the retry creates nothing more.
        again = await call(ws, "create", "again", data={**ADA, "first_name": "Keyed"}, idempotency_key="k-1")
        [(pk,)] = patients_named(faulty, "Keyed")
        assert again == envelope("create", "again", 201, data={**again["data"], "id": pk, "first_name": "Keyed"})
        assert await call(ws, "retrieve", "check", pk=pk) == envelope("retrieve", "check", 200, data=again["data"])


async def test_a_write_waiting_for_a_lock_is_504_and_cancelled(served: tuple[ServerProcess, str],
                                                                faulty: FaultyPostgres) -> None:
    """A row locked by someone else (psql, another instance): the patch waits past the timeout, is
    answered 504 over REST and cancelled, so it does not apply when the lock goes."""
    server, token = served
    auth = {"Authorization": f"Token {token}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(f"{server.http}/api/patients/", json=ADA) as created:
            pk = (await created.json())["id"]
        locker = psycopg2.connect(faulty.url)
        try:
            locker.cursor().execute("SELECT 1 FROM patients WHERE id = %s FOR UPDATE", (pk,))
            async with http.patch(f"{server.http}/api/patients/{pk}/", json={"first_name": "Late"},
                                  timeout=aiohttp.ClientTimeout(total=GUARD)) as patch:
                assert (patch.status, await patch.json()) == (504, {"detail": UNKNOWN[0]})
            await server.next_line(r"cancelled the unanswered write of database backend \d+", timeout=GUARD)
        finally:
            locker.rollback()
            locker.close()
        async with http.get(f"{server.http}/api/patients/{pk}/") as now:
            assert (await now.json())["first_name"] == ADA["first_name"]


async def test_idempotency_keys_on_both_transports(served: tuple[ServerProcess, str], faulty: FaultyPostgres) -> None:
    server, token = served
    auth = {"Authorization": f"Token {token}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async def post(key: str, data: dict) -> tuple[int, Any]:
            async with http.post(f"{server.http}/api/patients/", json=data, headers={"Idempotency-Key": key}) as reply:
                return reply.status, await reply.json()

        first = await post("r-1", {**ADA, "first_name": "Rest"})
        assert first[0] == 201 and await post("r-1", {**ADA, "first_name": "Rest"}) == first
        assert await post("r-1", {**ADA, "first_name": "Other"}) == (422, {"detail": REUSED[0]})
        assert await post("", ADA) == (400, {"detail": "The idempotency key must be a string of 1 to 255 characters."})
        async with http.ws_connect(f"{server.http}/ws/?token={token}") as ws:
            one = await call(ws, "create", "1", data={**ADA, "first_name": "Ws"}, idempotency_key="w-1")
            assert one["response_status"] == 201
            assert await call(ws, "create", "2", data={**ADA, "first_name": "Ws"}, idempotency_key="w-1") == {
                **one, "request_id": "2"}
            assert await call(ws, "create", "3", data={**ADA, "first_name": "X"}, idempotency_key="w-1") == envelope(
                "create", "3", 422, errors=REUSED)
            # The same key on the other transport is the same key: a user's key is one per resource.
            assert await post("w-1", {**ADA, "first_name": "Ws"}) == (201, one["data"])
            assert await call(ws, "create", "4", data=ADA, idempotency_key=7) == envelope(
                "create", "4", 400, errors=["The idempotency key must be a string of 1 to 255 characters."])
            # Concurrent retries of one create: one patient, every answer the same.
            frames = [call(ws, "create", "5", data={**ADA, "first_name": "Twice"}, idempotency_key="w-2")]
            replies = await asyncio.gather(*frames, post("w-2", {**ADA, "first_name": "Twice"}),
                                           post("w-2", {**ADA, "first_name": "Twice"}))
        [(pk,)] = patients_named(faulty, "Twice")
        assert replies[0]["data"]["id"] == pk and replies[1] == replies[2] == (201, replies[0]["data"])
        # Every resource's create takes a key (vitals: a key per resource, so "r-1" again is new here).
        vital = {"patient": pk, "kind": "heart_rate", "value": 72.0, "unit": "bpm", "measured_at": "2026-11-28T08:00:00Z"}
        async with http.post(f"{server.http}/api/vitals/", json=vital, headers={"Idempotency-Key": "r-1"}) as one:
            async with http.post(f"{server.http}/api/vitals/", json=vital, headers={"Idempotency-Key": "r-1"}) as two:
                assert (one.status, two.status) == (201, 201) and await one.json() == await two.json()
        assert faulty.query("SELECT count(*) FROM vitals") == [(1,)]
    assert [len(patients_named(faulty, name)) for name in ("Rest", "Ws", "Other", "X")] == [1, 1, 0, 0]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_stopped_under_writers_only_503_or_504_and_a_503_never_committed(
        served: tuple[ServerProcess, str], faulty: FaultyPostgres, mode: str) -> None:
    server, token = served
    refused: list[str] = []   # markers of writes answered 503: none may be in the database
    statuses: set[int] = set()
    started = asyncio.Event()

    async def writer(number: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        for step in range(10_000):
            marker = f"w{number}-{step}"
            reply = await call(ws, "create", marker, data={**ADA, "first_name": marker})
            statuses.add(reply["response_status"])
            if reply["response_status"] == 201:
                started.set()
                continue
            assert reply == envelope("create", marker, reply["response_status"],
                                     errors=UNAVAILABLE if reply["response_status"] == 503 else UNKNOWN)
            if reply["response_status"] == 503:
                refused.append(marker)
            return

    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(f"{server.http}/ws/?token={token}") for _ in range(4)]
        writers = [asyncio.create_task(writer(number, ws)) for number, ws in enumerate(sockets)]
        await asyncio.wait_for(started.wait(), GUARD)
        await asyncio.to_thread(faulty.stop, mode)  # the writers keep writing while it stops
        try:
            await asyncio.wait_for(asyncio.gather(*writers), 3 * GUARD)
        finally:
            faulty.start()
        assert statuses <= {201, 503, 504}, statuses
        # Service resumes by itself (a pooled connection whose end was not noticed yet may fail a write
        # once: 503 if the driver knew before sending, else 504, as it cannot tell).
        back = [(await call(sockets[0], "create", f"back{n}", data=ADA))["response_status"] for n in range(10)]
        assert set(back) <= {201, 503, 504} and back[-3:] == [201, 201, 201], back
        for ws in sockets:
            await ws.close()
    assert [marker for marker in refused if patients_named(faulty, marker)] == []
