"""`python -m server serve` as a real child process: the one launcher of our server for tests/ and scripts/bench.

The command line, the environment, the port and "wait until it serves" are here once; two ways to run it:
`ServerProcess` (asyncio, its output read line by line while it runs: the tests) and `ServerPopen`
(subprocess.Popen, its output to a file: the benchmark, scripts/benchmark/servers.py).

The benchmark imports this module without the test extra: nothing here may import pytest or hypothesis,
or tests.conftest at import time (it imports both); the test-only helpers import TEST_SECRET when called.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import aiohttp


class NotServing(AssertionError):
    """The server exited, or did not serve in time (an AssertionError: in a test, a plain failure)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(*args: str) -> list[str]:
    """`python -m server ARGS` with this interpreter (`serve`, `migrate`, `token`, ...)."""
    return [sys.executable, "-m", "server", *args]


def serve_command(port: int, *args: str) -> list[str]:
    return server_command("serve", "--port", str(port), *args)


def server_environment(database_url: str | None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, DASHBOARD_DATABASE_URL = database_url (None: unset, the embedded cluster), env."""
    environment = {key: value for key, value in os.environ.items() if key != "DASHBOARD_DATABASE_URL"}
    if database_url:
        environment["DASHBOARD_DATABASE_URL"] = database_url
    return {**environment, **(env or {})}


async def wait_until_serving(port: int, exit_code: Callable[[], int | None], log: Callable[[], str],
                             session: aiohttp.ClientSession | None = None, timeout: float = 30) -> None:
    """Until GET /readyz answers 200 (from one worker if there are several: the port is then open).

    exit_code() is None while the server runs; log() is what to show when it exits first or times out."""
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await wait_until_serving(port, exit_code, log, own, timeout)
    try:
        async with asyncio.timeout(timeout):
            while (code := exit_code()) is None:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise NotServing(f"server on port {port} not serving within {timeout:g} s:\n{log()}") from None
    raise NotServing(f"server exited with {code}:\n{log()}")


class ServerProcess:
    """A running server (asyncio); `lines` is its output so far (stderr, and stdout merged into it, as
    ServerPopen's file), `next_line()` waits for a matching new one."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []
        self._read = 0
        self._grew = asyncio.Event()
        self._reader = asyncio.create_task(self._collect())

    @classmethod
    async def start(cls, database_url: str, *args: str, env: dict[str, str] | None = None,
                    port: int | None = None) -> ServerProcess:
        """`serve --port P ARGS` on database_url with the tests' fixed secret (env overrides either);
        P is a free port unless given."""
        from tests.conftest import TEST_SECRET  # here, not at the top: see the module's docstring

        port = port or free_port()
        process = await asyncio.create_subprocess_exec(
            *serve_command(port, *args),
            env=server_environment(database_url, {"DASHBOARD_SESSION_KEY": TEST_SECRET, **(env or {})}),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        return cls(process, port)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def _collect(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
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
        await wait_until_serving(self.port, lambda: self.process.returncode, lambda: self.log, session, timeout)

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


class ServerPopen:
    """A running server (no event loop needed), its stdout and stderr in the file `log_path`; the caller stops it
    (`stop()`, or through `process`), and may `restart()` it on the same port."""

    _launch: tuple[list[str], dict[str, str], Path | None] | None = None  # (command, environment, cwd), by start()

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    @classmethod
    def start(cls, database_url: str | None, *args: str, log_path: Path, env: Mapping[str, str] | None = None,
              cwd: Path | None = None, wrapper: Sequence[str] = ()) -> ServerPopen:
        """`serve --port P ARGS` on database_url (None: the embedded cluster), env over this process's
        environment; `wrapper` goes before the command (the benchmark's valgrind)."""
        port = free_port()
        launch = ([*wrapper, *serve_command(port, *args)], server_environment(database_url, env), cwd)
        server = cls(_spawn(launch, log_path, "wb"), port, log_path)
        server._launch = launch  # what restart() runs again
        return server

    @classmethod
    def run_script(cls, script: Path, database_url: str | None, *args: str, log_path: Path,
                   env: Mapping[str, str] | None = None) -> ServerPopen:
        """`scripts/run --port P ARGS` (a checkout's, or a copy's): its install, migrate, first user, then serve."""
        port = free_port()
        launch = ([str(script), "--port", str(port), *args], server_environment(database_url, env), None)
        server = cls(_spawn(launch, log_path, "wb"), port, log_path)
        server._launch = launch
        return server

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send one signal (unless it has exited already); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)

    def restart(self) -> None:
        """Once stopped: the same command again, on the same port, its output appended to the same log."""
        if self._launch is None or self.process.poll() is None:
            raise RuntimeError("restart() needs a stopped server that ServerPopen.start() started")
        self.process = _spawn(self._launch, self.log_path, "ab")

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float = 90) -> None:
        """Until /readyz answers 200; NotServing (with the log's end) if it exits first or takes longer."""
        def wait() -> None:
            asyncio.run(wait_until_serving(self.port, self.process.poll, lambda: self.log[-2000:], timeout=timeout))
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return wait()
        # A loop already runs in this thread (Playwright's sync API keeps one): wait from another thread.
        with concurrent.futures.ThreadPoolExecutor(1) as waiter:
            waiter.submit(wait).result()


def _spawn(launch: tuple[list[str], dict[str, str], Path | None], log_path: Path, mode: str) -> subprocess.Popen[bytes]:
    command, environment, cwd = launch
    with log_path.open(mode) as output:  # the child has its own copy of the descriptor
        return subprocess.Popen(command, env=environment, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)


async def raw_request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Bytes no HTTP client library would send, to 127.0.0.1:port; the whole answer, read until the
    server closes (send `Connection: close` where the request itself would not end it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


# Test-only helpers (they use the tests' fixed secret).

async def ws_request(ws: Any, action: str, request_id: Any = 1, **keys: Any) -> dict[str, Any]:
    await ws.send_json({"stream": "patients", "payload": {"action": action, "request_id": request_id, **keys}})
    reply = await ws.receive_json(timeout=10)
    return reply["payload"]


async def make_token(database_url: str, username: str = "nurse", password: str | None = None) -> str:
    """A user (with a password if given) and its token, made through the server's own code (no subprocess: faster)."""
    from server.accounts.secret import Sealer, load_secret
    from server.accounts.users import create_user, issue_token
    from server.config import PROJECT_DIR, Config
    from server.store.db import open_database
    from server.store.queries import load_queries
    from tests.conftest import TEST_SECRET

    db = await open_database(database_url, load_queries(PROJECT_DIR / "sql"), minsize=1, maxsize=1)
    try:
        await create_user(db, username, password)
        return await issue_token(db, username, Sealer(load_secret(Config(session_key=TEST_SECRET))))
    finally:
        await db.close()
