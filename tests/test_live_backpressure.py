"""A client that stops reading is closed with 1008 and slows no one; a reading one gets everything."""
from __future__ import annotations

import logging

import aiohttp
import pytest

from server.config import Config
from tests.conftest import Socket
from tests.live import pushes, sql

ROWS = 100
SLOW_SUBSCRIPTIONS = 50   # each change becomes 50 pushes on the slow socket: its buffers fill fast


@pytest.fixture
def config() -> Config:
    return Config(heartbeat_seconds=30.0, db_timeout_seconds=3.0, socket_budget_bytes=16384)


async def test_a_client_that_stops_reading_is_closed_with_1008(client, token: str, ws: Socket, caplog) -> None:
    url = client.app_database_url
    sql(url, "INSERT INTO patients (first_name, last_name, admission_date) "
             "SELECT 'P' || n, 'Slow', now() FROM generate_series(1, %s) AS n", (ROWS,))
    assert (await ws.request("subscribe", request_id="reader"))["response_status"] == 201
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        slow = Socket(connection)
        for n in range(SLOW_SUBSCRIPTIONS):
            assert (await slow.request("subscribe", request_id=n))["response_status"] == 201
        # From now on the slow client reads nothing, while bulk updates keep coming.
        rounds = 0
        while "the client does not read" not in caplog.text:
            rounds += 1
            assert rounds <= 40, "the slow client was never closed"
            sql(url, "UPDATE patients SET first_name = %s", (f"R{rounds}",))
            received = await pushes(ws, ROWS)  # the reading client keeps up, with every change
            assert {p["data"]["first_name"] for p in received} == {f"R{rounds}"}
            assert len({p["cursor"] for p in received}) == ROWS
        assert [record.levelno for record in caplog.records if "does not read" in record.message] == [logging.WARNING]
        # When the slow client reads again, it finds what was sent before the close, then the close.
        frames = 0
        while (message := await connection.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
            frames += 1
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1008 and message.extra == "Outbound queue full"
        assert 0 < frames < rounds * ROWS * SLOW_SUBSCRIPTIONS
    # The reader is unaffected.
    sql(url, "UPDATE patients SET first_name = 'After'")
    assert {p["data"]["first_name"] for p in await pushes(ws, ROWS)} == {"After"}
