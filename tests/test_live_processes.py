"""Two server processes on one database: a write through one reaches subscribers of the other."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import AsyncIterator

import aiohttp

from tests.conftest import ADA, Socket, ok
from tests.live import CURSOR, instance_push, nothing_more, push, pushes
from tests.test_cli import free_port, run


@contextlib.asynccontextmanager
async def serving(database_url: str) -> AsyncIterator[int]:
    """A `dashboard-server serve` process on a free port; stopped with SIGTERM afterwards."""
    port = free_port()
    env = {**os.environ, "DASHBOARD_DATABASE_URL": database_url}
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "server", "serve", "--port", str(port),
                                                  env=env, stderr=asyncio.subprocess.PIPE)
    try:
        assert b"serving ws://127.0.0.1:" in await asyncio.wait_for(server.stderr.readline(), 30)
        yield port
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 15) == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def connect(session: aiohttp.ClientSession, port: int, token: str) -> Socket:
    for _ in range(100):
        try:
            return Socket(await session.ws_connect(f"http://127.0.0.1:{port}/ws/?token={token}"))
        except aiohttp.ClientConnectorError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answers on port {port}")


async def test_a_write_through_one_server_reaches_subscribers_of_the_other(database_url: str) -> None:
    assert run(database_url, "createuser", "nurse").returncode == 0
    token = run(database_url, "token", "nurse").stdout.strip()
    async with serving(database_url) as one, serving(database_url) as other, aiohttp.ClientSession() as session:
        watcher, writer = await connect(session, one, token), await connect(session, other, token)
        reply = await watcher.request("subscribe", request_id="all")
        assert reply == ok({"cursor": CURSOR}, "subscribe", 201, request_id="all")
        created = (await writer.request("create", data=ADA))["data"]
        [pushed] = await pushes(watcher, 1)
        assert pushed == push(created, "create", 200, "all")
        assert (await watcher.request("subscribe_instance", request_id="one", pk=created["id"]))["response_status"] == 201
        patched = (await writer.request("patch", pk=created["id"], data={"last_name": "King"}))["data"]
        assert sorted(await pushes(watcher, 2), key=lambda p: p["request_id"]) == [
            push(patched, "update", 200, "all"), instance_push(patched, "update", 200, "one")]
        await nothing_more(watcher)
        # A cursor issued by one server resumes on the other.
        assert (await writer.request("subscribe", request_id="resumed", since=pushed["cursor"]))["response_status"] == 201
        [replayed] = await pushes(writer, 1)
        assert replayed == push(patched, "update", 200, "resumed")
        await nothing_more(writer)
        await watcher.ws.close()
        await writer.ws.close()
