"""sd_notify: READY=1 only once the port accepts and the database answers, WATCHDOG=1, STOPPING=1."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from server.ops.notify import notify, watchdog_interval
from tests.processes import ServerProcess


class NotifySocket:
    """A real unix datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address if not address.startswith("@") else "\0" + address[1:])
        self.sock.setblocking(False)
        self.address = address

    async def receive(self, timeout: float = 30) -> str:
        loop = asyncio.get_running_loop()
        return (await asyncio.wait_for(loop.sock_recv(self.sock, 4096), timeout)).decode()

    async def until(self, message: str, timeout: float = 30) -> list[str]:
        """Datagrams up to and including the first that holds `message` as one of its lines."""
        seen = []
        async with asyncio.timeout(timeout):
            while True:
                seen.append(await self.receive())
                if message in seen[-1].splitlines():
                    return seen


def test_notify_without_a_manager_does_nothing() -> None:
    assert notify("READY=1", environ={}) is False


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"@dashboard-test-{os.getpid()}"
    listener = NotifySocket(name)
    try:
        assert notify("READY=1", environ={"NOTIFY_SOCKET": name})
        assert listener.sock.recv(100) == b"READY=1"
    finally:
        listener.sock.close()


def test_watchdog_interval_is_half_of_watchdog_sec_for_this_process_only() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None


def worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


async def a_stuck_worker_stops_the_watchdog(manager: NotifySocket, parent: int) -> None:
    """A worker whose event loop stops (here: SIGSTOP) must stop the pings, so systemd restarts the unit."""
    stuck, _ = worker_pids(parent)
    os.kill(stuck, signal.SIGSTOP)
    try:
        # Healthy, the pings come every 0.15 s; with a worker stuck they must fall silent (a second
        # of silence), once the parent has taken in what the worker sent before it stopped.
        async with asyncio.timeout(15):
            while True:
                try:
                    await manager.receive(timeout=1.0)
                except asyncio.TimeoutError:
                    break
    finally:
        os.kill(stuck, signal.SIGCONT)
    await manager.until("WATCHDOG=1")  # it runs again: so do the pings


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_ready_watchdog_stopping(database_url: str, tmp_path: Path, workers: str) -> None:
    manager = NotifySocket(str(tmp_path / "notify"))
    env = {"NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": "300000"}  # a ping every 0.15 s
    server = await ServerProcess.start(database_url, "--workers", workers, env=env)
    try:
        ready = await manager.until("READY=1")
        assert not any("WATCHDOG=1" in datagram for datagram in ready[:-1])  # no pings before READY
        # The moment READY=1 arrives, the port accepts and the database answers: no retry needed.
        async with aiohttp.ClientSession() as session, session.get(f"{server.http}/readyz") as response:
            assert response.status == 200
        await manager.until("WATCHDOG=1")
        await manager.until("WATCHDOG=1")
        if workers == "2":
            await a_stuck_worker_stops_the_watchdog(manager, server.process.pid)
        server.process.terminate()
        await manager.until("STOPPING=1")
        assert await server.exited() == 0
    finally:
        await server.kill()
        manager.sock.close()
