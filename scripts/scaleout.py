#!/usr/bin/env python3
"""Scale-out check: retrieve throughput over N sockets spread round-robin across one or more instances.

    .venv/bin/python scripts/scaleout.py --token KEY --sockets 16 --seconds 10 \
        ws://127.0.0.1:8081/ws/ [ws://127.0.0.1:8082/ws/ ...]

Each socket sends `retrieve` of one existing patient and waits for the reply before the next
(one request in flight per socket, like a dashboard). Prints requests/s and latency percentiles.
The figures in docs/deploy.md come from this script; they are not asserted anywhere.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp


async def one_socket(session: aiohttp.ClientSession, url: str, token: str, pk: int, until: float,
                     latencies: list[float]) -> int:
    done = 0
    async with session.ws_connect(f"{url}?token={token}") as ws:
        while time.perf_counter() < until:
            started = time.perf_counter()
            await ws.send_str(json.dumps({"stream": "patients",
                                          "payload": {"action": "retrieve", "request_id": done, "pk": pk}}))
            reply = json.loads((await ws.receive()).data)
            assert reply["payload"]["response_status"] == 200, reply
            latencies.append(time.perf_counter() - started)
            done += 1
    return done


async def prepare(session: aiohttp.ClientSession, url: str, token: str) -> int:
    async with session.ws_connect(f"{url}?token={token}") as ws:
        await ws.send_str(json.dumps({"stream": "patients", "payload": {
            "action": "create", "request_id": 1,
            "data": {"first_name": "Bench", "last_name": "Mark", "admission_date": "2026-11-01T08:30:00Z"}}}))
        return json.loads((await ws.receive()).data)["payload"]["data"]["id"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--token", required=True)
    parser.add_argument("--sockets", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    async with aiohttp.ClientSession() as session:
        pk = await prepare(session, args.urls[0], args.token)
        latencies: list[float] = []
        until = time.perf_counter() + args.seconds
        counts = await asyncio.gather(*(
            one_socket(session, args.urls[index % len(args.urls)], args.token, pk, until, latencies)
            for index in range(args.sockets)))
    total = sum(counts)
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"{len(args.urls)} instance(s), {args.sockets} sockets, {args.seconds:.0f} s: "
          f"{total / args.seconds:.0f} retrieve/s, p50 {quantiles[49] * 1000:.1f} ms, "
          f"p99 {quantiles[98] * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
