"""`python -m server serve` as a real child process, its log read line by line while it runs."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from typing import Any

import aiohttp

from tests.conftest import TEST_SECRET


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A running server; `lines` is its stderr so far, `next_line()` waits for a matching new one."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []
        self._read = 0
        self._grew = asyncio.Event()
        self._reader = asyncio.create_task(self._collect())

    @classmethod
    async def start(cls, database_url: str, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
        port = free_port()
        environment = {**os.environ, "DASHBOARD_DATABASE_URL": database_url, "DASHBOARD_SESSION_KEY": TEST_SECRET,
                       **(env or {})}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server", "serve", "--port", str(port), *args,
            env=environment, stderr=asyncio.subprocess.PIPE)
        return cls(process, port)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def _collect(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._grew.set()
        self._grew.set()

    async def next_line(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """The next not yet consumed log line matching pattern (earlier non-matching lines are skipped)."""
        regex = re.compile(pattern)
        async with asyncio.timeout(timeout):
            while True:
                while self._read < len(self.lines):
                    self._read += 1
                    match = regex.search(self.lines[self._read - 1])
                    if match:
                        return match
                if self._reader.done():
                    raise AssertionError(f"server exited without logging {pattern!r}:\n{self.log}")
                self._grew.clear()
                await self._grew.wait()

    async def wait_serving(self, session: aiohttp.ClientSession, timeout: float = 30) -> None:
        """Until /readyz answers 200 (every worker up or not, the port is then open)."""
        async with asyncio.timeout(timeout):
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log}")
                try:
                    async with session.get(f"{self.http}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)

    async def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send one signal; the exit status."""
        self.process.send_signal(signum)
        return await self.exited(timeout)

    async def exited(self, timeout: float = 15) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        return code

    async def kill(self) -> None:
        """Clean-up after a failed test: SIGKILL (workers follow through PR_SET_PDEATHSIG)."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), 10)
        except asyncio.TimeoutError:
            self._reader.cancel()


async def ws_request(ws: Any, action: str, request_id: Any = 1, **keys: Any) -> dict[str, Any]:
    await ws.send_json({"stream": "patients", "payload": {"action": action, "request_id": request_id, **keys}})
    reply = await ws.receive_json(timeout=10)
    return reply["payload"]


async def make_token(database_url: str, username: str = "nurse") -> str:
    """A user and its token, made through the server's own code (no subprocess: faster)."""
    from server.config import PROJECT_DIR, Config
    from server.db import open_database
    from server.secret import Sealer, load_secret
    from server.sql import load_queries
    from server.users import create_user, issue_token

    db = await open_database(database_url, load_queries(PROJECT_DIR / "sql"), minsize=1, maxsize=1)
    try:
        await create_user(db, username, None)
        return await issue_token(db, username, Sealer(load_secret(Config(session_key=TEST_SECRET))))
    finally:
        await db.close()
