"""`serve --workers 2`: both processes accept sockets on one port, share the database, live changes and the metrics."""
from __future__ import annotations

import asyncio
import json
import os
import signal

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADA
from tests.processes import ServerProcess, make_token, ws_request
from tests.test_health import documented_metrics

SOCKETS = 16


async def open_sockets(server: ServerProcess, session: aiohttp.ClientSession, token: str) -> list[tuple[int, object]]:
    """SOCKETS connections, each with the pid of the worker that logged its `ws N open` line."""
    sockets = []
    for _ in range(SOCKETS):
        ws = await session.ws_connect(f"{server.http}/ws/?token={token}")
        opened = await server.next_line(r"\[(\d+)\] server\.web\.connection: ws \d+ open")
        sockets.append((int(opened.group(1)), ws))
    return sockets


async def open_websockets_metric(server: ServerProcess, session: aiohttp.ClientSession) -> float:
    async with session.get(f"{server.http}/metrics") as response:
        text = await response.text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    return families["dashboard_websockets_open"].samples[0].value


async def test_two_workers_serve_one_port_and_one_database(database_url: str) -> None:
    token = await make_token(database_url)
    server = await ServerProcess.start(database_url, "--workers", "2")
    try:
        async with aiohttp.ClientSession() as session:
            await server.next_line(r"server\.ops\.workers: 2 workers serving")
            # Multiprocess mode too: every documented family from the first scrape, process_* per worker.
            async with session.get(f"{server.http}/metrics") as response:
                first = {family.name: family for family in text_string_to_metric_families(await response.text())}
            absent = documented_metrics() - set(first)
            assert not absent, absent
            assert len({sample.labels["pid"] for sample in first["process_resident_memory_bytes"].samples}) == 2
            sockets = await open_sockets(server, session, token)
            by_worker: dict[int, list] = {}
            for pid, ws in sockets:
                by_worker.setdefault(pid, []).append(ws)
            assert len(by_worker) == 2, f"one worker took all {SOCKETS} sockets: {server.log}"
            assert server.process.pid not in by_worker  # the parent only supervises
            # Any worker's /metrics adds up every worker's (prometheus_client multiprocess mode).
            assert await open_websockets_metric(server, session) == SOCKETS
            # A change made through one worker reaches a subscriber on the other (through PostgreSQL).
            (first, *_), (second, *_) = by_worker.values()
            assert (await ws_request(second, "subscribe", request_id="all"))["response_status"] == 201
            created = await ws_request(first, "create", data=ADA)
            assert created["response_status"] == 201
            pushed = json.loads((await second.receive(timeout=10)).data)
            assert pushed["payload"] == {**created, "response_status": 200, "request_id": "all",
                                         "cursor": pushed["payload"]["cursor"]}
            # ... and is read through it.
            assert await ws_request(second, "retrieve", pk=created["data"]["id"]) == {**created, "response_status": 200,
                                                                                     "action": "retrieve"}
            # A worker that dies (SIGKILL, the OOM killer) is replaced; the other's sockets stay open.
            victim, survivor = list(by_worker)
            os.kill(victim, signal.SIGKILL)
            replaced = await server.next_line(rf"worker {victim} exited unexpectedly \(status -9\): replaced by worker (\d+)")
            await server.next_line(rf"worker {replaced.group(1)} serving")
            for ws in by_worker[survivor]:
                assert (await ws_request(ws, "list", limit=1))["response_status"] == 200
            await assert_restarts(server, session, 1)
            for ws in (ws for _, ws in sockets):
                await ws.close()
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert token not in server.log


async def assert_restarts(server: ServerProcess, session: aiohttp.ClientSession, count: int) -> None:
    async with session.get(f"{server.http}/metrics") as response:
        families = {family.name: family for family in text_string_to_metric_families(await response.text())}
    assert families["dashboard_worker_restarts"].samples[0].value == count


async def test_a_crash_loop_stops_the_service(database_url: str) -> None:
    """Five deaths within a minute: the supervisor gives up (exit 1) and leaves it to systemd."""
    server = await ServerProcess.start(database_url, "--workers", "2")
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
            opened = await server.next_line(r"server\.ops\.workers: 2 workers serving \(pids (\d+)")
            victim = opened.group(1)
            for _ in range(4):
                os.kill(int(victim), signal.SIGKILL)
                victim = (await server.next_line(rf"worker {victim} exited unexpectedly .*replaced by worker (\d+)")).group(1)
            os.kill(int(victim), signal.SIGKILL)
            await server.next_line(rf"worker {victim} exited unexpectedly .*5 deaths in 60 s, stopping the service")
            assert await server.exited() == 1
    finally:
        await server.kill()


async def test_sigterm_closes_every_workers_sockets_with_1001(database_url: str) -> None:
    token = await make_token(database_url)
    server = await ServerProcess.start(database_url, "--workers", "2")
    try:
        async with aiohttp.ClientSession() as session:
            await server.next_line(r"server\.ops\.workers: 2 workers serving")
            sockets = await open_sockets(server, session, token)
            assert len({pid for pid, _ in sockets}) == 2
            server.process.send_signal(signal.SIGTERM)
            closes = await asyncio.gather(*(ws.receive(timeout=10) for _, ws in sockets))
            assert {(message.type, message.data) for message in closes} == {(aiohttp.WSMsgType.CLOSE, 1001)}
            assert await server.exited(timeout=10) == 0
            for _, ws in sockets:
                await ws.close()
    finally:
        await server.kill()


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_second_serve_on_a_served_port_exits_at_once(database_url: str, workers: str) -> None:
    """Ours with --workers 2 listens with SO_REUSEPORT, which the kernel would let another such server
    share: a second one must refuse, whatever its --workers, and never say it serves."""
    token = await make_token(database_url)
    first = await ServerProcess.start(database_url, "--workers", "2")
    try:
        async with aiohttp.ClientSession() as session:
            await first.wait_serving(session)
            second = await ServerProcess.start(database_url, "--workers", workers, port=first.port)
            assert await second.exited(timeout=60) == 1
            assert "serving" not in second.log, second.log
            assert f"dashboard-server: cannot listen on 127.0.0.1:{first.port}: address already in use" in second.log
            async with session.ws_connect(f"{first.http}/ws/?token={token}") as ws:  # the first serves on
                assert (await ws_request(ws, "list"))["response_status"] == 200
        assert await first.stop() == 0
    finally:
        await first.kill()


async def test_each_workers_request_counts_reach_a_scrape_of_any_worker(database_url: str) -> None:
    """Workers count requests in plain numbers and hand them to the shared files every second: a
    scrape (answered by one worker) soon adds up the requests served by both."""
    token = await make_token(database_url)
    server = await ServerProcess.start(database_url, "--workers", "2")
    try:
        async with aiohttp.ClientSession() as session:
            await server.next_line(r"server\.ops\.workers: 2 workers serving")
            sockets = await open_sockets(server, session, token)
            assert len({pid for pid, _ in sockets}) == 2
            for _, ws in sockets:
                assert (await ws_request(ws, "list", limit=1))["response_status"] == 200
            wanted = {"dashboard_requests_total": SOCKETS, "dashboard_request_duration_seconds_count": SOCKETS,
                      "dashboard_websocket_frames_total": SOCKETS * 2}  # in and out
            counted: dict[str, float] = {}
            async with asyncio.timeout(10):  # a few flushes (a second each), on a busy machine
                while counted != wanted:
                    async with session.get(f"{server.http}/metrics") as response:
                        counted = ws_list_counts(await response.text(), wanted)
                    await asyncio.sleep(0.1)
            for _, ws in sockets:
                await ws.close()
        assert await server.stop() == 0
    finally:
        await server.kill()


def ws_list_counts(text: str, names: dict[str, float]) -> dict[str, float]:
    """These samples of /ws/ lists (or of frames), summed by name."""
    counted: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names and sample.labels.get("transport", "ws") == "ws" \
                    and sample.labels.get("action", "list") == "list":
                counted[sample.name] = counted.get(sample.name, 0) + sample.value
    return counted
