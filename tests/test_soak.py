"""Soak, bounded: 200 sockets writing at once; afterwards the database holds exactly the acknowledged writes."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import psycopg2
from aiohttp.test_utils import TestClient

from tests.conftest import ADA, Socket, scrape, value

SOCKETS = 200
USERS = 4
ROUNDS = 2  # per socket and round: three creates, a patch, a delete


class Barrier:
    """All sockets open before any writes: the load is 200 sockets at once, not in turn."""

    def __init__(self, parties: int) -> None:
        self.parties, self.arrived, self.all_open = parties, 0, asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived == self.parties:
            self.all_open.set()
        await self.all_open.wait()


async def one_socket(client: TestClient, session: aiohttp.ClientSession, token: str, number: int,
                     expected: dict[int, str], barrier: Barrier) -> int:
    """Mixed writes on one socket; `expected` gets each acknowledged row's final first_name."""
    acknowledged = 0
    async with session.ws_connect(client.make_url(f"/ws/?token={token}")) as connection:
        ws = Socket(connection)
        await barrier.wait()
        if number == 0:  # every socket is open and counted
            assert value(await scrape(client), "dashboard_websockets_open") == SOCKETS
        for round_ in range(ROUNDS):
            ids = []
            for n in range(3):
                marker = f"s{number}-{round_}-{n}"
                reply = await ws.request("create", request_id=marker, data={**ADA, "first_name": marker})
                assert reply["response_status"] == 201, reply
                ids.append(reply["data"]["id"])
                expected[reply["data"]["id"]] = marker
            patched = f"p{number}-{round_}"
            reply = await ws.request("patch", pk=ids[0], data={"first_name": patched})
            assert reply["response_status"] == 200 and reply["data"]["first_name"] == patched, reply
            expected[ids[0]] = patched
            reply = await ws.request("delete", pk=ids[1])
            assert reply["response_status"] == 204, reply
            del expected[ids[1]]
            acknowledged += 5
    return acknowledged


async def test_200_sockets_of_mixed_writes_leave_exactly_the_acknowledged_rows(client: TestClient, token_for: Any) -> None:
    tokens = [await token_for(client, f"nurse{n}") for n in range(USERS)]
    expected: dict[int, str] = {}
    barrier = Barrier(SOCKETS)
    # The test client's session would hold at most 100 connections: one without that cap.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        counts = await asyncio.wait_for(asyncio.gather(*(
            one_socket(client, session, tokens[n % USERS], n, expected, barrier) for n in range(SOCKETS))), 120)
    assert sum(counts) == SOCKETS * ROUNDS * 5
    connection = psycopg2.connect(client.app_database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, first_name FROM patients")
            assert dict(cursor.fetchall()) == expected
    finally:
        connection.close()
