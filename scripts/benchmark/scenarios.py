"""Each scenario: drive the load from client workers, read the server's CPU and memory, summarize."""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from benchmark import procstat, wire
from benchmark.load import LoadSpec, Target, run_load
from benchmark.session import Session, delete_rows
from benchmark.sockets import DRAIN_CAP, hold_idle, subscribe_and_listen
from benchmark.workers import Worker, split

NOT_IMPLEMENTED = "n/a (not implemented on this server)"


def wait_with_progress(label: str, until: float) -> None:
    """Sleep until `until` (monotonic), redrawing one progress line on stderr."""
    total = max(0.1, until - time.monotonic())
    if not sys.stderr.isatty():
        time.sleep(max(0.0, until - time.monotonic()))
        return
    while (left := until - time.monotonic()) > 0:
        done = int(20 * (1 - left / total))
        sys.stderr.write(f"\r  {label:<46} [{'#' * done}{'.' * (20 - done)}] {left:4.1f} s ")
        sys.stderr.flush()
        time.sleep(min(0.25, left))
    sys.stderr.write("\r" + " " * 80 + "\r")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[min(len(values) - 1, max(0, round(fraction * len(values) + 0.5) - 1))] if values else 0.0


def latency_summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"p50_ms": round(1000 * percentile(values, 0.50), 3), "p90_ms": round(1000 * percentile(values, 0.90), 3),
            "p99_ms": round(1000 * percentile(values, 0.99), 3), "max_ms": round(1000 * (values[-1] if values else 0), 3)}


def summarize(parts: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    by_op: dict[str, list[float]] = {}
    for part in parts:
        for op, values in part["samples"].items():
            by_op.setdefault(op, []).extend(values)
    every = [value for values in by_op.values() for value in values]
    return {"requests": len(every), "throughput": round(len(every) / duration, 1), **latency_summary(every),
            "errors": sum(part["errors"] for part in parts),
            "error_examples": [e for part in parts for e in part["error_examples"]][:5],
            "client_cpu": round(sum(part["client_cpu_s"] for part in parts) / duration, 3),
            "by_op": {op: {"count": len(values), **latency_summary(values)} for op, values in by_op.items()}}


def measure_load(target: Target, pids: tuple[list[int], list[int]], spec: LoadSpec, procs: int,
                 label: str) -> dict[str, Any]:
    """Run one closed-loop load and return throughput, latency, errors and everyone's CPU."""
    workers = [Worker(run_load, target, spec, first, count) for first, count in split(spec.sockets, procs)]
    for worker in workers:
        worker.receive()  # "ready": every socket is open
    start_at = time.monotonic() + 0.2
    for worker in workers:
        worker.send(start_at)
    window = procstat.CpuWindow(*pids)
    wait_with_progress(f"{label} (warm-up)", start_at + spec.warmup)
    window.start()
    wait_with_progress(label, start_at + spec.warmup + spec.duration)
    cpu = window.stop(spec.duration)
    parts = [worker.receive(timeout=spec.duration + 60) for worker in workers]
    for worker in workers:
        worker.join()
    result = {"scenario": spec.kind, "sockets": spec.sockets, "client_processes": len(workers),
              **summarize(parts, spec.duration), **cpu}
    if result["throughput"]:  # CPU per request varies far less than throughput on a busy machine
        result["server_cpu_us_per_request"] = round(1e6 * cpu["server_cpu"] / result["throughput"], 1)
    result["created"] = [pk for part in parts for pk in part["created"]]
    return result


def cleanup_created(target: Target, result: dict[str, Any]) -> None:
    """Delete the rows a mixed run created, so later scenarios see the same table."""
    created = result.pop("created", [])
    result["created_rows_deleted"] = len(created)
    failures = asyncio.run(delete_rows(target, created))
    if failures:
        result["cleanup_failures"] = failures


def measure_idle(target: Target, pids: tuple[list[int], list[int]], count: int, procs: int,
                 label: str) -> dict[str, Any]:
    """Open `count` idle authenticated sockets: open rate, and server RSS growth per socket."""
    server = pids[0]
    before = procstat.rss_kib(server) if server else 0
    workers = [Worker(hold_idle, target, share, 32) for _, share in split(count, procs)]
    for worker in workers:
        worker.receive()  # ready
    start_at, window = time.monotonic() + 0.2, procstat.CpuWindow(*pids)
    window.start()
    for worker in workers:
        worker.send(start_at)
    if sys.stderr.isatty():
        sys.stderr.write(f"  {label}: opening {count} sockets...\r")
    opened = [worker.receive(timeout=600) for worker in workers]
    seconds = max(part["finished_at"] for part in opened) - start_at
    cpu = window.stop(seconds)
    time.sleep(1.0)  # let the server finish any per-socket work before reading its memory
    after = procstat.rss_kib(server) if server else 0
    for worker in workers:
        worker.send("close")
    still_open = sum(worker.receive(timeout=120)["still_open"] for worker in workers)
    for worker in workers:
        worker.join()
    total = sum(part["opened"] for part in opened)
    result = {"scenario": "idle", "sockets": count, "opened": total, "client_processes": len(workers),
              "errors": sum(part["errors"] for part in opened),
              "error_examples": [e for part in opened for e in part["error_examples"]][:3],
              "open_seconds": round(seconds, 3), "open_rate": round(total / seconds, 1) if seconds else 0.0,
              "still_open_at_measurement": still_open, **cpu,
              "client_cpu": round(sum(part["client_cpu_s"] for part in opened) / seconds, 3) if seconds else 0.0}
    if total:  # server CPU a handshake (upgrade, token lookup, socket set-up)
        result["server_cpu_us_per_socket"] = round(1e6 * cpu["server_cpu"] * seconds / total, 1)
    if server and total:
        result.update(rss_before_kib=before, rss_after_kib=after, kib_per_socket=round((after - before) / total, 2))
    return result


async def _write_series(target: Target, pk: int, writes: int, interval: float,
                        times: dict[str, tuple[float, float]]) -> str:
    """Patch patient `pk` `writes` times, filling `times` (tag: sent, replied); why it stopped early, or ""."""
    try:
        async with Session(target) as session:
            for number in range(writes):
                tag = f"Fanout {number} {time.monotonic_ns()}"
                sent = time.monotonic()
                reply = await session.request("patch", pk=pk, data={"last_name": tag})
                if reply["response_status"] != 200:
                    return f"write {number + 1} answered {reply}"[:300]
                times[tag] = (sent, time.monotonic())
                await asyncio.sleep(interval)
    except (OSError, asyncio.TimeoutError, wire.HandshakeError) as exc:  # e.g. a server that fell over
        return f"write {len(times) + 1} failed: {type(exc).__name__}: {exc}"[:300]
    return ""


def measure_fanout(target: Target, pids: tuple[list[int], list[int]], subscribers: int, writes: int,
                   interval: float, pk: int, budget: float, label: str) -> dict[str, Any]:
    """`subscribers` sockets subscribe to one patient; a writer patches it; push latency after the write's reply.

    Opening and subscribing get `budget` seconds, each write 30 s; pushes still missing 3 s after the
    last one arrived (at most 60 s after the last write) are counted as lost. Server CPU is read from
    the first write until every subscriber has reported: per push delivered.
    """
    workers = [Worker(subscribe_and_listen, target, first, count, pk, budget) for first, count in split(subscribers, 2)]
    if sys.stderr.isatty():
        sys.stderr.write(f"  {label}: opening and subscribing {subscribers} sockets...\r")
    times: dict[str, tuple[float, float]] = {}
    stopped, window = "", procstat.CpuWindow(*pids)
    try:
        infos = [worker.receive(timeout=budget + 60) for worker in workers]
        subscribed = sum(info["subscribed"] for info in infos)
        window.start()
        started = time.monotonic()
        if subscribed:
            stopped = asyncio.run(_write_series(target, pk, writes, interval, times))
        for worker in workers:
            worker.send(len(times))  # each waits for its last pushes, then hands over what it saw
        reports = [worker.receive(timeout=DRAIN_CAP + 60) for worker in workers]
        seconds = time.monotonic() - started
        cpu = window.stop(seconds)
    finally:
        for worker in workers:
            worker.join()  # killed if still running: a failure above leaves no stray client
    if not subscribed:
        return _fanout_refused(subscribers, [r for info in infos for r in info["refusals"]], infos)
    receipts = [receipt for report in reports for receipt in report["receipts"]]
    result = _fanout_result(subscribers, subscribed, len(times), times, receipts)
    result.update(cpu)
    opened = sum(info["opened"] for info in infos)
    result.update(opened=opened, not_opened=subscribers - opened, cpu_seconds=round(seconds, 2),
                  subscriptions_unanswered=sum(info["unanswered"] for info in infos),
                  open_error_examples=[e for info in infos for e in info["open_errors"]][:3],
                  still_open_after=sum(report["still_open"] for report in reports),
                  server_alive_after=all(procstat.alive(pid) for pid in pids[0]))
    if result["pushes_received"]:
        result["server_cpu_us_per_push"] = round(1e6 * cpu["server_cpu"] * seconds / result["pushes_received"], 1)
    if stopped or opened < subscribers:
        result["incident"] = "; ".join(filter(None, [stopped, *result["open_error_examples"][:1]]))
    if not times:  # no latency to show: say what happened instead
        result["note"] = (f"{opened:,} of {subscribers:,} sockets opened, {subscribed:,} subscribed, no write "
                          f"answered ({result.get('incident', '')})"
                          f"{'' if result['server_alive_after'] else '; the server died'}")[:300]
    return result


def _fanout_refused(subscribers: int, refusals: list[dict[str, Any]], infos: list[dict[str, Any]]) -> dict[str, Any]:
    refusal = refusals[0] if refusals else {}
    unsupported = refusal.get("response_status") in (404, 405)
    return {"scenario": "fanout", "subscribers": subscribers, "supported": False,
            "note": NOT_IMPLEMENTED if unsupported else f"no subscription succeeded: {refusal or infos[0]}",
            "refusal": refusal}


def _fanout_result(subscribers: int, subscribed: int, writes: int, times: dict[str, tuple[float, float]],
                   receipts: list[tuple[str, float]]) -> dict[str, Any]:
    after_reply = [at - times[tag][1] for tag, at in receipts if tag in times]
    after_send = [at - times[tag][0] for tag, at in receipts if tag in times]
    return {"scenario": "fanout", "subscribers": subscribers, "supported": True, "subscribed": subscribed,
            "writes": writes, "pushes_expected": subscribed * writes, "pushes_received": len(after_reply),
            # More than expected: subscriptions answered after the budget (not counted) got pushes too.
            "lost": max(0, subscribed * writes - len(after_reply)), "drain_cap_s": DRAIN_CAP,
            "after_reply": latency_summary(after_reply), "after_send": latency_summary(after_send)}


async def _rest_status(target: Target, pk: int) -> int:
    statuses: list[int] = []
    loop = asyncio.get_running_loop()
    got = loop.create_future()

    def on_response(status: int, body: bytes) -> None:
        statuses.append(status)
        got.set_result(None)

    transport, client = await loop.create_connection(lambda: wire.HttpClient(on_response), target.host, target.port)
    client.send(wire.get_request(target.host, target.port, f"/api/patients/{pk}/", target.token))
    await asyncio.wait_for(got, 10)
    transport.close()
    return statuses[0]


def rest_supported(target: Target, pk: int) -> tuple[bool, str]:
    status = asyncio.run(_rest_status(target, pk))
    if status == 200:
        return True, ""
    return False, NOT_IMPLEMENTED if status in (404, 405) else f"n/a (GET /api/patients/{pk}/ answered {status})"


