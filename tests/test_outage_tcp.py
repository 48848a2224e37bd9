"""`serve` (on uvloop, as in production) with its database on TCP, and the database goes away: every
reply a 503, never a 500 or a traceback, one warning per cause; service comes back by itself."""
from __future__ import annotations

import aiohttp

from tests.conftest import UNAVAILABLE
from tests.processes import ServerProcess, make_token
from tests.tcp_proxy import TcpProxy

HANDSHAKE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def unavailable(request_id: int) -> dict:
    return {"errors": UNAVAILABLE, "data": None, "action": "list", "response_status": 503, "request_id": request_id}


async def test_a_database_on_tcp_that_goes_away_gives_only_503s_and_comes_back(database_url: str) -> None:
    token = await make_token(database_url)
    proxy = TcpProxy(database_url)
    await proxy.start()
    server = await ServerProcess.start(proxy.url, "--workers", "1", env={"DASHBOARD_DB_TIMEOUT_SECONDS": "2"})
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
            async with session.ws_connect(f"{server.http}/ws/?token={token}") as ws:
                async def list_(request_id: object) -> dict:
                    await ws.send_json({"stream": "patients", "payload": {"action": "list", "request_id": request_id}})
                    return (await ws.receive_json(timeout=10))["payload"]

                assert (await list_(0))["response_status"] == 200
                await proxy.stop()
                for number in range(8):
                    assert await list_(number) == unavailable(number)
                for _ in range(3):
                    async with session.post(f"{server.http}/api/auth/token/", json={"username": "x", "password": "y"}) as login:
                        assert (login.status, await login.json()) == (503, {"detail": UNAVAILABLE[0]})
                    async with session.get(f"{server.http}/ws/?token={token}", headers=HANDSHAKE) as handshake:
                        assert (handshake.status, await handshake.json()) == (503, {"detail": UNAVAILABLE[0]})
                await proxy.start()  # the same port again: the pool heals by itself
                # A pooled connection whose cut has not been noticed yet fails once (503, safe to retry)
                # and is dropped; within a few requests every answer is a 200 again.
                statuses = [(await list_(f"back{n}"))["response_status"] for n in range(6)]
                assert set(statuses) <= {200, 503} and statuses[-3:] == [200, 200, 200], statuses
        assert await server.stop() == 0
    finally:
        await server.kill()
        await proxy.stop()
    assert "Traceback" not in server.log and " 500 " not in server.log, server.log
    outages = [line.split("server.store.db: ", 1)[1] for line in server.lines if "server.store.db: " in line]
    assert outages and len(outages) == len(set(outages)), outages  # one warning per cause, not per request
