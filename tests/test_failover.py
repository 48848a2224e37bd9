"""A PostgreSQL failover under a running `serve`: the primary stopped `-m immediate`, its synchronous standby
promoted; the server finds it by itself (a multi-host URL), loses no acknowledged write, gives no 500, and a
subscriber resuming with its cursor gets every change exactly once."""
from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections import Counter
from typing import Any, Iterator

import aiohttp
import pytest

from tests.conftest import ADA, TEST_SECRET, UNAVAILABLE, error, ok
from tests.processes import ServerProcess, free_port, make_token, server_command, server_environment
from tests.replicas import ReplicatedPostgres

pytestmark = [pytest.mark.embedded, pytest.mark.failover]

RESUME_BOUND = 10  # seconds: the "writes resume within 10 s", as a bound on a wait
WRITERS = 4


@pytest.fixture(scope="module")
def replicas() -> Iterator[ReplicatedPostgres]:
    cluster = ReplicatedPostgres()
    try:
        yield cluster
    finally:
        cluster.remove()


class Writes:
    """What the writers were told: 201s, the creates tried, every reply that was not a 201."""

    def __init__(self) -> None:
        self.acked: dict[int, str] = {}    # id -> marker
        self.tried: set[str] = set()
        self.refused: list[dict[str, Any]] = []
        self.after_failover = 0
        self.failed_over = False
        self.enough = asyncio.Event()      # 20 acknowledged: time to pull the plug
        self.resumed = asyncio.Event()     # a 201 after the primary was stopped
        self.done = asyncio.Event()        # 20 more after that: stop writing


async def writer(ws: aiohttp.ClientWebSocketResponse, number: int, writes: Writes) -> None:
    for step in itertools.count():
        if writes.done.is_set():
            return
        marker = f"w{number}-{step}"
        writes.tried.add(marker)
        await ws.send_json({"stream": "patients", "payload": {"action": "create", "request_id": marker,
                                                              "data": {**ADA, "first_name": marker}}})
        reply = (await ws.receive_json(timeout=30))["payload"]
        if reply["response_status"] != 201:
            writes.refused.append(reply)
            await asyncio.sleep(0.1)  # a client's pause before trying again
            continue
        writes.acked[reply["data"]["id"]] = marker
        if len(writes.acked) >= 20:
            writes.enough.set()
        if writes.failed_over:
            writes.resumed.set()
            writes.after_failover += 1
            if writes.after_failover >= 20:
                writes.done.set()


class Subscriber:
    """A socket subscribed to every patient change: the ids of the creates pushed, the last cursor."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.created: list[int] = []
        self.cursor: str | None = None
        self.other: list[dict[str, Any]] = []

    async def subscribe(self, **keys: Any) -> dict[str, Any]:
        await self.ws.send_json({"stream": "patients", "payload": {"action": "subscribe", "request_id": "all",
                                                                   **keys}})
        reply = (await self.ws.receive_json(timeout=10))["payload"]
        self.cursor = reply["data"]["cursor"]
        return reply

    async def read(self) -> None:
        async for message in self.ws:
            payload = message.json()["payload"]
            if payload["request_id"] == "all" and payload["action"] == "create":
                self.created.append(payload["data"]["id"])
                self.cursor = payload["cursor"]
            else:
                self.other.append(payload)

    async def until(self, ids: set[int], bound: float = 20) -> None:
        """Until a push came for each of ids, then the reply to a request sent after that: a push queued
        for this socket before it (a change pushed twice) has been read by then."""
        async with asyncio.timeout(bound):
            while not ids <= set(self.created):
                await asyncio.sleep(0.05)
            await self.ws.send_json({"stream": "patients", "payload": {"action": "list", "request_id": "settled",
                                                                       "limit": 1}})
            while not any(reply["request_id"] == "settled" for reply in self.other):
                await asyncio.sleep(0.05)


async def ready_statuses(session: aiohttp.ClientSession, server: ServerProcess, seen: list[tuple[int, float]]) -> None:
    """/readyz every 50 ms, each change of status recorded with its time (the figures in docs/reliability.md)."""
    while True:
        async with session.get(f"{server.http}/readyz") as response:
            if not seen or seen[-1][0] != response.status:
                seen.append((response.status, time.monotonic()))
        await asyncio.sleep(0.05)


def command(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(server_command(*args), env=server_environment(url, {"DASHBOARD_SESSION_KEY": TEST_SECRET}),
                          capture_output=True, text=True, timeout=60)


def test_a_command_finds_the_primary_wherever_the_url_lists_it(replicas: ReplicatedPostgres) -> None:
    standby_first = (f"postgresql://postgres@127.0.0.1:{replicas.standby.port},127.0.0.1:{replicas.primary.port}"
                     f"/dashboard?target_session_attrs=read-write")
    assert command(standby_first, "createuser", "ward", "--role", "viewer").returncode == 0
    assert "ward" in command(standby_first, "users").stdout
    assert replicas.query(replicas.standby, "SELECT username FROM users WHERE username = 'ward'") == [("ward",)]
    # No host that accepts a read-write session: one line, each host's refusal in it.
    nowhere = f"postgresql://postgres@127.0.0.1:{replicas.standby.port},127.0.0.1:{free_port()}/dashboard" \
              "?target_session_attrs=read-write"
    refused = command(nowhere, "users")
    assert refused.returncode != 0 and refused.stdout == "" and len(refused.stderr.splitlines()) == 1, refused
    assert f"127.0.0.1:{replicas.standby.port}: " in refused.stderr and "Connection refused" in refused.stderr


async def test_a_failover_loses_no_acknowledged_write_and_no_change(replicas: ReplicatedPostgres) -> None:
    token = await make_token(replicas.url)  # a command, on the multi-host URL
    server = await ServerProcess.start(replicas.url, "--workers", "1", env={"DASHBOARD_DB_TIMEOUT_SECONDS": "2"})
    writes, ready, times = Writes(), [], {}
    watcher: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
            url = f"{server.http}/ws/?token={token}"
            live = Subscriber(await session.ws_connect(url))      # stays connected through the failover
            leaving = Subscriber(await session.ws_connect(url))   # leaves before it, resumes after it
            for subscriber in (live, leaving):
                assert (await subscriber.subscribe()) == ok({"cursor": subscriber.cursor}, "subscribe", 201, "all")
            live_reader, leaving_reader = asyncio.create_task(live.read()), asyncio.create_task(leaving.read())
            sockets = [await session.ws_connect(url) for _ in range(WRITERS)]
            writers = [asyncio.create_task(writer(ws, number, writes)) for number, ws in enumerate(sockets)]
            watcher = asyncio.create_task(ready_statuses(session, server, ready))
            await asyncio.wait_for(writes.enough.wait(), 30)
            await leaving.ws.close()
            await leaving_reader

            times["stop"] = time.monotonic()
            await asyncio.to_thread(replicas.stop, replicas.primary, "immediate")
            writes.failed_over = True
            await asyncio.to_thread(replicas.promote, replicas.standby)
            times["promoted"] = time.monotonic()
            await asyncio.wait_for(writes.resumed.wait(), RESUME_BOUND)  # and the server was not restarted
            times["resumed"] = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*writers), 30)
            rows = dict(replicas.query(replicas.standby, "SELECT id, first_name FROM patients"))

            # A new socket on the promoted standby, resuming with the cursor it had before the failover.
            resumed = Subscriber(await session.ws_connect(url))
            since = leaving.cursor
            assert await resumed.subscribe(since=since) == ok({"cursor": since}, "subscribe", 201, "all")
            resumed_reader = asyncio.create_task(resumed.read())
            await resumed.until(set(rows) - set(leaving.created))
            await live.until(set(rows))
            for ws in (live.ws, resumed.ws, *sockets):
                await ws.close()
            await asyncio.gather(live_reader, resumed_reader)
        assert await server.stop() == 0
    finally:
        if watcher is not None:
            watcher.cancel()
        await server.kill()

    assert all(rows.get(pk) == marker for pk, marker in writes.acked.items()), "an acknowledged write was lost"
    assert set(rows.values()) <= writes.tried
    # "Try again" only for what was not written: a create in flight as the primary died that committed
    # anyway was answered 504, never 503 (issue 14).
    committed = set(rows.values())
    assert [reply for reply in writes.refused if reply["response_status"] == 503
            and reply["request_id"] in committed] == [], "a write answered 503 was committed"
    for subscriber in (live, resumed):
        assert [reply for reply in subscriber.other if reply["request_id"] != "settled"] == []
    # Every change exactly once: the one that stayed, and the one that left and resumed with its cursor.
    assert Counter(live.created) == Counter(list(rows)), "the live subscriber missed or repeated a change"
    assert Counter(leaving.created + resumed.created) == Counter(list(rows)), "resuming missed or repeated a change"
    for reply in writes.refused:  # never a 500: "try again", or the unknown outcome of a write in flight
        assert reply == error(UNAVAILABLE, "create", 503, reply["request_id"]) or (
            reply["response_status"] == 504 and reply["data"] is None), reply
    assert ready[0][0] == ready[-1][0] == 200, ready
    assert "Traceback" not in server.log and " 500 " not in server.log, server.log
    print(f"failover: {len(rows)} rows, {len(writes.acked)} acknowledged, replies not 201: "
          f"{dict(Counter(reply['response_status'] for reply in writes.refused))}; stop -> promoted "
          f"{times['promoted'] - times['stop']:.2f} s, -> writes resumed {times['resumed'] - times['stop']:.2f} s; "
          f"/readyz {[status for status, _ in ready]}, 200 again {ready[-1][1] - times['stop']:.2f} s after the stop")
