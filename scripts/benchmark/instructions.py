"""scripts/bench --instructions: the server's instructions per retrieve, counted by valgrind's callgrind.

CPU seconds per request move by a third between runs on a shared 2-core machine; the number of
instructions the server executes for the same requests repeats to within about a percent, so a
change that saves or costs a few percent shows here first (run it in both checkouts, compare).
The server is one process under `valgrind --tool=callgrind` (some 50 times slower, so each load
is a fixed number of requests, not a duration); its counters are zeroed after a warm-up and
dumped after the measured requests, so start-up and shutdown are not counted.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp

from benchmark import servers
from benchmark.session import ensure_rows

WARMUP_PER_SOCKET = 50


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def retrieves(ws: aiohttp.ClientWebSocketResponse, pks: tuple[int, ...], count: int) -> None:
    """One request in flight on this socket, `count` times."""
    for number in range(count):
        frame = {"stream": "patients", "payload": {"action": "retrieve", "request_id": number,
                                                   "pk": pks[number % len(pks)]}}
        await ws.send_str(json.dumps(frame))
        reply = json.loads((await ws.receive()).data)
        if reply["payload"]["response_status"] != 200:
            raise RuntimeError(f"retrieve failed: {reply}")


def callgrind(command: str, pid: int) -> None:
    subprocess.run(["callgrind_control", command, str(pid)], check=True, capture_output=True)


async def counted(subject: servers.Managed, sockets: int, requests: int, pks: tuple[int, ...]) -> None:
    target = subject.target
    url = f"http://{target.host}:{target.port}/ws/?token={target.token}"
    async with aiohttp.ClientSession() as session:
        wss = [await session.ws_connect(url) for _ in range(sockets)]
        await asyncio.gather(*(retrieves(ws, pks, WARMUP_PER_SOCKET) for ws in wss))
        callgrind("-z", subject.server_pid)
        await asyncio.gather(*(retrieves(ws, pks, requests // sockets) for ws in wss))
        callgrind("-d", subject.server_pid)
        await asyncio.gather(*(ws.close() for ws in wss))


def last_dump_total(directory: Path, pid: int) -> int:
    dumps = sorted(directory.glob(f"callgrind.{pid}.*"), key=lambda path: int(path.suffix[1:]))
    for line in dumps[-1].read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {dumps[-1]}")


def main(args: argparse.Namespace) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None or shutil.which("callgrind_control") is None:
        say("no valgrind here (apt-get install valgrind): instructions not counted")
        return 1
    say("starting dashboard-server under callgrind, 1 process (this takes a minute)...")
    subject = servers.start_ours(args.database_url, ["--workers", "1", *args.serve_arg],
                                 wrapper=[valgrind, "--tool=callgrind", "--callgrind-out-file={workdir}/callgrind.%p"],
                                 ready_within=600)
    try:
        servers.reset_ours(subject, args.rows)
        pks = asyncio.run(ensure_rows(subject.target, args.rows))
        assert subject.workdir is not None
        for sockets in (int(n) for n in args.sweep.split(",")):
            requests = max(sockets, args.instruction_requests // sockets * sockets)
            asyncio.run(counted(subject, sockets, requests, pks))
            total = last_dump_total(subject.workdir, subject.server_pid)
            print(f"retrieve@{sockets}: {total / requests:,.0f} server instructions per request "
                  f"({requests:,} requests, {total:,} instructions)", flush=True)
    finally:
        subject.stop()
    return 0
