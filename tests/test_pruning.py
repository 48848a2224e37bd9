"""Pruning no listener can outrun (issue 14, item 3): a server stalled while another prunes delivers
every push or ends the subscription with 410, never silence."""
from __future__ import annotations

import asyncio
import signal

import aiohttp

from tests.conftest import Socket, ok
from tests.live import CURSOR, nothing_more, prune_log, sql
from tests.processes import ServerProcess
from tests.test_cli import run

ROWS, KEPT = 2000, 500  # written while the server is stopped; rows the pruning keeps
GONE = {"errors": ["Cursor expired, list again."], "data": None, "action": "subscribe", "response_status": 410,
        "request_id": "all"}
INSERT = ("INSERT INTO patients (first_name, last_name, admission_date) "
          "SELECT 'P', 'N' || n, '2026-11-01T08:00:00Z' FROM generate_series(1, %s) n RETURNING id")


async def stalled_while_pruned(database_url: str, grace_seconds: float) -> tuple[list[int], int, list[dict]]:
    """A subscriber on a `serve` process that is stopped (SIGSTOP) while psql writes ROWS patients in
    four transactions and another process prunes down to the newest KEPT changes, deleting them for
    the audit trail too; then continued. Returns the ids written, how many changes the pruning
    expired, and the pushes received up to the last create or a 410."""
    assert run(database_url, "createuser", "nurse").returncode == 0
    token = run(database_url, "token", "nurse").stdout.strip()
    server = await ServerProcess.start(database_url, "--workers", "1",
                                       env={"DASHBOARD_CHANGES_PRUNE_SECONDS": "3600"})
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
            ws = Socket(await session.ws_connect(f"{server.http}/ws/?token={token}"))
            assert await ws.request("subscribe", request_id="all") == ok({"cursor": CURSOR}, "subscribe", 201, "all")
            server.process.send_signal(signal.SIGSTOP)
            try:
                ids = [row[0] for _ in range(4) for row in sql(database_url, INSERT, (ROWS // 4,))]
                if grace_seconds < 60:  # until the stopped server's heartbeat is older than the grace
                    async with asyncio.timeout(30):
                        while not sql(database_url, "SELECT bool_and(heartbeat_at < now() - make_interval(secs => %s)) "
                                                    "FROM listener_marks", (grace_seconds,))[0][0]:
                            await asyncio.sleep(0.1)
                expired = await prune_log(database_url, retain_seconds=7 * 86400.0, retain_rows=KEPT,
                                          audit_seconds=0.001, grace_seconds=grace_seconds, settled=False)
            finally:
                server.process.send_signal(signal.SIGCONT)
            received = []
            while len(received) < ROWS and GONE not in received:
                received.append((await ws.receive())["payload"])
            await nothing_more(ws)
            await ws.ws.close()
        assert await server.stop() == 0, server.log
    finally:
        await server.kill()
    return ids, expired, received


def created(received: list[dict]) -> list[int]:
    assert all(push["action"] == "create" and push["request_id"] == "all" for push in received), received[:3]
    return [push["data"]["id"] for push in received]


async def test_a_live_listener_holds_pruning_back_and_gets_every_push(database_url: str) -> None:
    """Stopped for less than the grace period: its mark still counts, nothing it has to read is pruned."""
    ids, expired, received = await stalled_while_pruned(database_url, grace_seconds=60.0)
    assert expired == 0  # the stopped server had handed out none of them
    assert created(received) == ids


async def test_a_listener_silent_past_the_grace_period_ends_its_subscriptions_with_410(database_url: str) -> None:
    """Stopped for longer: the pruning does not wait for it, and what it missed is said, not hidden."""
    ids, expired, received = await stalled_while_pruned(database_url, grace_seconds=1.0)
    assert expired == ROWS - KEPT
    *pushed, last = received
    assert last == GONE, received[-3:]
    assert set(created(pushed)) <= set(ids)
