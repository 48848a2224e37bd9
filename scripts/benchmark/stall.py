"""The event loop's stall per write at many subscriptions (issue 13): how long one change's fan-out
holds `serve --workers 1`, measured as the worst /healthz latency around each write.

    PYTHONPATH=scripts .venv/bin/python -m benchmark.stall [--database-url URL] [--sockets 50 --per-socket 200]

Kinds of subscriptions, each on a fresh server: `instance` (subscribe_instance, each on its own
patient: a write reaches one), `filtered` (subscribe with {"id": pk}, each its own: a write
reaches one), `stream` (subscribe without filters: a write reaches all). A probe asks /healthz
back to back all along; a write's stall is the probe's slowest answer in the interval after it
(then as many writes again with no probe give the server's CPU time per write: steadier than
latencies on a busy machine).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

from benchmark import servers
from benchmark.session import ensure_rows


def subscription(kind: str, n: int, pk: int) -> dict[str, Any]:
    if kind == "instance":
        return {"action": "subscribe_instance", "request_id": n, "pk": pk}
    if kind == "filtered":
        return {"action": "subscribe", "request_id": n, "filters": {"id": pk}}
    return {"action": "subscribe", "request_id": n}


async def subscriber(session: aiohttp.ClientSession, url: str, kind: str, pks: list[int],
                     received: list[int]) -> tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]]:
    ws = await session.ws_connect(url, max_msg_size=0)
    for n, pk in enumerate(pks):
        await ws.send_str(json.dumps({"stream": "patients", "payload": subscription(kind, n, pk)}))
    for _ in pks:
        reply = json.loads((await ws.receive()).data)["payload"]
        if reply["response_status"] != 201:
            raise RuntimeError(f"subscribe failed: {reply}")

    async def drain() -> None:
        async for _ in ws:
            received[0] += 1
    return ws, asyncio.create_task(drain())


async def patch(writer: aiohttp.ClientWebSocketResponse, pk: int, n: int) -> None:
    await writer.send_str(json.dumps({"stream": "patients", "payload": {
        "action": "patch", "request_id": n, "pk": pk, "data": {"last_name": f"W{n}"}}}))
    await writer.receive()


async def probe(session: aiohttp.ClientSession, url: str, samples: list[tuple[float, float]]) -> None:
    while True:
        started = time.monotonic()
        async with session.get(url) as answer:
            await answer.read()
        samples.append((started, time.monotonic() - started))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(target: Any, server_pid: int, kind: str, sockets: int, per_socket: int, writes: int,
                  interval: float, pks: tuple[int, ...]) -> dict[str, Any]:
    url = f"http://{target.host}:{target.port}"
    ws_url = f"{url}/ws/?token={target.token}"
    received = [0]
    async with aiohttp.ClientSession() as session:
        held = [await subscriber(session, ws_url, kind, list(pks[i * per_socket:(i + 1) * per_socket]), received)
                for i in range(sockets)]
        samples: list[tuple[float, float]] = []
        prober = asyncio.create_task(probe(session, f"{url}/healthz", samples))
        await asyncio.sleep(interval)
        quiet = max(latency for _, latency in samples)
        writer = await session.ws_connect(ws_url)
        stalls = []
        for n in range(writes):
            started = time.monotonic()
            await patch(writer, pks[(n * 7919) % len(pks)], n)
            await asyncio.sleep(interval)
            stalls.append(max(latency for at, latency in samples if at >= started - 0.05))
        prober.cancel()
        cpu = cpu_seconds(server_pid)  # then the same writes with no probe: the server's CPU for each
        for n in range(writes):
            await patch(writer, pks[(n * 7919 + 1) % len(pks)], n)
            await asyncio.sleep(interval)
        cpu = cpu_seconds(server_pid) - cpu
        await writer.close()
        for ws, task in held:
            task.cancel()
            await ws.close()
    return {"kind": kind, "subscriptions": sockets * per_socket, "sockets": sockets, "pushes": received[0],
            "quiet_ms": round(quiet * 1000, 1), "stall_p50_ms": round(statistics.median(stalls) * 1000, 1),
            "stall_max_ms": round(max(stalls) * 1000, 1),
            # The server's CPU per write, over as many more writes with no probe (the heartbeat's included).
            "server_cpu_ms_per_write": round(cpu * 1000 / writes, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument("--per-socket", type=int, default=200)
    parser.add_argument("--kinds", default="instance,filtered,stream")
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds after each write")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    if len(kinds) > 1:  # a process each: the bench user is named after the process
        for kind in kinds:
            subprocess.run([sys.executable, "-m", "benchmark.stall", *sys.argv[1:], "--kinds", kind], check=True)
        return
    os.environ["DASHBOARD_MAX_SUBSCRIPTIONS_PER_SOCKET"] = str(args.per_socket)
    rows = args.sockets * args.per_socket
    for kind in kinds:
        subject = servers.start_ours(args.database_url, ["--workers", "1"])
        try:
            servers.reset_ours(subject, rows)
            pks = asyncio.run(ensure_rows(subject.target, rows))
            print(json.dumps(asyncio.run(measure(subject.target, subject.server_pid, kind, args.sockets, args.per_socket, args.writes,
                                                 args.interval, pks))), flush=True)
        finally:
            subject.stop()


if __name__ == "__main__":
    main()
