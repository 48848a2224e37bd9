"""`serve --workers N`: N processes share the port, all answer, and all stop with the parent."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.test_cli import free_port, run
from tests.conftest import Socket, ok


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def connect(session: aiohttp.ClientSession, port: int, token: str) -> aiohttp.ClientWebSocketResponse:
    for _ in range(100):
        try:
            return await session.ws_connect(f"http://127.0.0.1:{port}/ws/?token={token}")
        except aiohttp.ClientConnectorError:
            await asyncio.sleep(0.1)
    raise AssertionError("the server never listened")


async def test_two_workers_answer_and_stop_together(database_url: str) -> None:
    token = run(database_url, "createuser", "n") and run(database_url, "token", "n").stdout.strip()
    port = free_port()
    env = {**os.environ, "DASHBOARD_DATABASE_URL": database_url}
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "server", "serve", "--port", str(port),
                                                  "--workers", "2", env=env, stderr=asyncio.subprocess.PIPE)
    try:
        assert b"serving ws://127.0.0.1:" in await asyncio.wait_for(server.stderr.readline(), 30)
        async with aiohttp.ClientSession() as session:
            sockets = [await connect(session, port, token) for _ in range(8)]
            workers = children_of(server.pid)
            assert len(workers) == 2
            for ws in sockets:
                assert await Socket(ws).request("list") == ok([], "list")
            server.send_signal(signal.SIGTERM)
            for ws in sockets:  # each got the server's 1001 frame (read late, the TCP link may be gone)
                closing = await ws.receive(timeout=10)
                assert (closing.type, closing.data, closing.extra) == (aiohttp.WSMsgType.CLOSE, 1001, "Server shutdown")
                await ws.close()
        assert await asyncio.wait_for(server.wait(), 15) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
