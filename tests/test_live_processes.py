"""Two server processes on one database: a write through one reaches subscribers of the other."""
from __future__ import annotations

import contextlib
from typing import AsyncIterator

import aiohttp

from tests.conftest import ADA, Socket, ok
from tests.live import CURSOR, instance_push, nothing_more, push, pushes
from tests.processes import ServerProcess
from tests.test_cli import run


@contextlib.asynccontextmanager
async def serving(database_url: str, session: aiohttp.ClientSession) -> AsyncIterator[ServerProcess]:
    """A `dashboard-server serve` process (tests/processes.py) on a free port; stopped with SIGTERM afterwards."""
    server = await ServerProcess.start(database_url)
    try:
        first = await server.next_line(r"^", timeout=30)  # the very first line it writes
        assert "serving ws://127.0.0.1:" in first.string, server.log
        await server.wait_serving(session)
        yield server
        assert await server.stop() == 0, server.log
    finally:
        await server.kill()


async def connect(session: aiohttp.ClientSession, server: ServerProcess, token: str) -> Socket:
    return Socket(await session.ws_connect(f"{server.http}/ws/?token={token}"))


async def test_a_write_through_one_server_reaches_subscribers_of_the_other(database_url: str) -> None:
    assert run(database_url, "createuser", "nurse").returncode == 0
    token = run(database_url, "token", "nurse").stdout.strip()
    async with aiohttp.ClientSession() as session, serving(database_url, session) as one, \
            serving(database_url, session) as other:
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
