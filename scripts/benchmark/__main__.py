"""scripts/bench: measure dashboard-server (and, with --peer, the old stack) with one client; see --help."""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from benchmark import instructions, pgtools, procstat, report, scenarios, servers
from benchmark.load import LoadSpec, Target
from benchmark.servers import Managed
from benchmark.session import ensure_rows, probe

SCENARIOS = ("idle", "retrieve", "list", "mixed", "writes", "rest", "fanout", "pgbench")
LOADS = {"idle", "retrieve", "list", "mixed", "writes", "rest"}  # repeated for each --workers count
PEER_CONFIGS = {  # name: (ASGI server, workers, PATIENTS_LIVE, scenarios)
    "daphne": ("daphne", 1, False, ("idle", "retrieve", "list", "mixed", "writes", "rest")),
    "uvicorn2": ("uvicorn", 2, False, ("retrieve", "list", "mixed", "writes", "rest")),
    "live": ("daphne", 1, True, ("fanout",)),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    p.add_argument("--url", help="measure this server instead of starting ours: ws://HOST:PORT/ws/")
    p.add_argument("--token", help="token for --url")
    p.add_argument("--server-pid", type=int, help="pid of the --url server, for its CPU and memory")
    p.add_argument("--label", default=None, help="name of the --url server in the report")
    p.add_argument("--kind", choices=("ours", "old"), default="ours", help="which column --url belongs in")
    p.add_argument("--live-stream", default="patients", help="stream for subscribe_instance on --url")
    p.add_argument("--database-url", help="run ours on this PostgreSQL instead of an embedded one")
    p.add_argument("--workers", default="1,2", help="ours: 'serve --workers' counts to measure (default 1,2)")
    p.add_argument("--serve-arg", action="append", default=[], help="extra argument for 'serve' (repeatable)")
    p.add_argument("--peer", action="store_true", help="also start and measure the old stack (../shared/peer-django)")
    p.add_argument("--peer-configs", default="daphne,uvicorn2,live", help=f"of: {', '.join(PEER_CONFIGS)}")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"of: {', '.join(SCENARIOS)}")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per load (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each load (default 1)")
    p.add_argument("--repeat", type=int, default=1, help="run each load N times, report the median (default 1)")
    p.add_argument("--sweep", default="1,4,16,64", help="socket counts for retrieve (default 1,4,16,64)")
    p.add_argument("--mixed-sockets", type=int, default=16, help="sockets for mixed and writes (default 16)")
    p.add_argument("--list-sockets", type=int, default=4)
    p.add_argument("--rest-connections", type=int, default=16)
    p.add_argument("--idle-sockets", type=int, default=5000)
    p.add_argument("--peer-idle-sockets", type=int, default=1000)
    p.add_argument("--subscribers", default="200,1000,5000",
                   help="subscriber counts for fan-out (default 200,1000,5000)")
    p.add_argument("--fanout-workers", type=int, default=2,
                   help="ours: run fan-out (and pgbench) with this --workers count if it is measured, else the first")
    p.add_argument("--fanout-budget", type=float, default=120.0,
                   help="seconds to open and subscribe the fan-out's sockets; later ones are abandoned (default 120)")
    p.add_argument("--fanout-writes", type=int, default=10)
    p.add_argument("--fanout-interval", type=float, default=0.5)
    p.add_argument("--rows", type=int, default=1000, help="patients in the table (default 1000)")
    p.add_argument("--list-limit", type=int, default=50)
    p.add_argument("--client-procs", type=int, default=1, help="client processes for the loads (default 1)")
    p.add_argument("--open-procs", type=int, default=2, help="client processes opening idle sockets (default 2)")
    p.add_argument("--json", type=Path, help="default bench-results/<timestamp>.json")
    p.add_argument("--chart", type=Path, help="default: the JSON path with .png")
    p.add_argument("--instructions", action="store_true",
                   help="measure nothing else: count the server's instructions per retrieve under callgrind "
                        "at each --sweep socket count (repeatable where CPU seconds are not)")
    p.add_argument("--instruction-requests", type=int, default=2000, help="counted retrieves per sweep point")
    p.add_argument("--report", type=Path, metavar="JSON", help="measure nothing: print the tables of a saved run "
                                                              "and redraw its chart")
    return p.parse_args(argv)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def one_line(name: str, result: dict[str, Any]) -> str:
    if result.get("note"):
        return f"{name}: {result['note']}"
    if "throughput" in result:
        return (f"{name}: {result['throughput']:,.0f} req/s  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
                f"  errors {result['errors']}  cpu client {result['client_cpu']:.2f} server {result['server_cpu']:.2f}"
                f" db {result['db_cpu']:.2f} machine {result['machine_cpu']:.2f}"
                f"  server {result.get('server_cpu_us_per_request', 0):.0f} us/req")
    if result.get("scenario") == "idle":
        return (f"{name}: {result['opened']} sockets at {result['open_rate']:,.0f}/s, "
                f"{result.get('kib_per_socket', '?')} KiB each, errors {result['errors']}; cpu while opening: "
                f"client {result['client_cpu']:.2f} server {result['server_cpu']:.2f} db {result['db_cpu']:.2f} machine {result['machine_cpu']:.2f}"
                f"  server {result.get('server_cpu_us_per_socket', 0):.0f} us/socket")
    if result.get("scenario") == "fanout":
        late = result["after_reply"]
        return (f"{name}: p50 {late['p50_ms']:.1f} ms  p99 {late['p99_ms']:.1f} ms  max {late['max_ms']:.1f} ms"
                f" after the reply; {result['subscribed']}/{result['subscribers']} subscribed, {result['pushes_received']}/"
                f"{result['pushes_expected']} pushes, {result['lost']} lost, {result['not_opened']} sockets not opened, "
                f"{result['subscriptions_unanswered']} subscriptions unanswered; cpu server {result['server_cpu']:.2f} "
                f"db {result['db_cpu']:.2f}  server {result.get('server_cpu_us_per_push', 0):.0f} us/push"
                f"{'' if result['server_alive_after'] else '; THE SERVER DIED'}"
                f"{'; ' + result['incident'] if result.get('incident') else ''}")
    return f"{name}: {result}"


class Suite:
    """Runs the wanted scenarios against one server, printing a line as each one finishes."""

    def __init__(self, subject: Managed, args: argparse.Namespace, wanted: set[str], idle_sockets: int) -> None:
        self.subject, self.args, self.wanted, self.idle_sockets = subject, args, wanted, idle_sockets
        self.pids = ([subject.server_pid] if subject.server_pid else [], [subject.db_pid] if subject.db_pid else [])
        self.results: dict[str, Any] = {}
        self.pks: tuple[int, ...] = ()

    def record(self, name: str, result: dict[str, Any]) -> None:
        self.results[name] = result
        say(f"  {self.subject.label} · {one_line(name, result)}")

    def load(self, kind: str, sockets: int) -> dict[str, Any]:
        """One load, or with --repeat the run of median throughput (all throughputs kept in "runs")."""
        spec = LoadSpec(kind, sockets, self.pks, self.args.warmup, self.args.duration, self.args.list_limit)
        procs = min(self.args.client_procs, sockets)
        runs = []
        for number in range(self.args.repeat):
            runs.append(scenarios.measure_load(self.subject.target, self.pids, spec, procs,
                                               f"{self.subject.label}: {kind} x{sockets} ({number + 1})"))
            if kind in ("mixed", "writes") and number + 1 < self.args.repeat:
                scenarios.cleanup_created(self.subject.target, runs[-1])
        runs.sort(key=lambda run: run["throughput"])
        median = runs[len(runs) // 2]
        if len(runs) > 1:
            median["runs"] = [run["throughput"] for run in runs]
            median["created"] = [pk for run in runs for pk in run.get("created", [])]
        return median

    def run(self, reset: Callable[[int], None] | None) -> dict[str, Any]:
        if reset is not None:
            reset(self.args.rows)
        target = self.subject.target
        self.pks = asyncio.run(ensure_rows(target, self.args.rows))
        reply = asyncio.run(probe(target, self.pks[0]))
        if reply["response_status"] != 200:
            raise RuntimeError(f"{self.subject.label}: retrieve probe failed: {reply}")
        for name in SCENARIOS:
            if name in self.wanted and name != "pgbench":
                try:
                    getattr(self, f"run_{name}")()
                except (RuntimeError, OSError, asyncio.TimeoutError) as exc:  # report it, go on with the rest
                    self.record(name, {"scenario": name, "note": f"failed: {type(exc).__name__}: {exc}"[:300]})
        if self.pids[0]:
            self.results["peak_rss_kib"] = procstat.peak_rss_kib(self.pids[0])
        return self.results

    def run_idle(self) -> None:
        self.record("idle", scenarios.measure_idle(self.subject.target, self.pids, self.idle_sockets,
                                                   self.args.open_procs, self.subject.label))

    def run_retrieve(self) -> None:
        for sockets in (int(n) for n in self.args.sweep.split(",")):
            self.record(f"retrieve@{sockets}", self.load("retrieve", sockets))

    def run_list(self) -> None:
        self.record("list_all", self.load("list_all", self.args.list_sockets))

    def run_mixed(self) -> None:
        result = self.load("mixed", self.args.mixed_sockets)
        scenarios.cleanup_created(self.subject.target, result)
        self.record("mixed", result)

    def run_writes(self) -> None:
        result = self.load("writes", self.args.mixed_sockets)
        scenarios.cleanup_created(self.subject.target, result)
        self.record("writes", result)

    def run_rest(self) -> None:
        supported, note = scenarios.rest_supported(self.subject.target, self.pks[0])
        if not supported:
            self.record("rest", {"scenario": "rest_retrieve", "note": note})
            return
        self.record("rest", self.load("rest_retrieve", self.args.rest_connections))

    def run_fanout(self) -> None:
        args = self.args
        for count in (int(n) for n in args.subscribers.split(",")):
            result = scenarios.measure_fanout(self.subject.target, self.pids, count, args.fanout_writes,
                                              args.fanout_interval, self.pks[-1], args.fanout_budget,
                                              self.subject.label)
            self.record(f"fanout@{count}", result)
            if not result["supported"]:
                return


def run_ours(args: argparse.Namespace, wanted: set[str], data: dict[str, Any]) -> None:
    if args.url:
        parts = urlsplit(args.url)
        target = Target(parts.hostname or "127.0.0.1", parts.port or 80, args.token or "",
                        live_stream=args.live_stream, ws_path=parts.path or "/ws/")
        subject = Managed(args.label or args.url, target, args.server_pid or 0, None)
        data["subjects"].append(_subject(subject, args.kind, Suite(subject, args, wanted, args.idle_sockets).run(None)))
        return
    counts = [int(n) for n in args.workers.split(",")]
    # pgbench and fan-out once, in the --fanout-workers configuration (issue 15: 2 workers);
    # the other configurations repeat the request loads and idle sockets
    once_in = args.fanout_workers if args.fanout_workers in counts else counts[0]
    for workers in counts:
        run_ours_once(args, wanted if workers == once_in else wanted & LOADS, data, workers)


def run_ours_once(args: argparse.Namespace, wanted: set[str], data: dict[str, Any], workers: int) -> None:
    say(f"starting dashboard-server, {workers} process(es) (embedded PostgreSQL in a temporary directory)...")
    worker_args = ["--workers", str(workers)]  # serve defaults to one process per CPU
    subject = servers.start_ours(args.database_url, [*worker_args, *args.serve_arg])
    subject.label = f"ours ({workers} process{'es' if workers > 1 else ''}{', ' if args.serve_arg else ''}" \
                    f"{' '.join(args.serve_arg)})"
    try:
        results = Suite(subject, args, wanted, args.idle_sockets).run(lambda rows: servers.reset_ours(subject, rows))
        data["subjects"].append(_subject(subject, "ours", results))
        if "pgbench" in wanted:
            say("  pgbench -S on the same cluster...")
            data["pgbench"] = pgtools.pgbench_select_only(subject.database_url, 16, args.duration)
            say(f"  pgbench -S: {data['pgbench']['tps']:,.0f} selects/s")
    finally:
        subject.stop()


def run_peer(args: argparse.Namespace, wanted: set[str], data: dict[str, Any]) -> None:
    say("setting up the old stack (../shared/peer-django/setup.sh)...")
    token = servers.peer_setup()
    for name in args.peer_configs.split(","):
        server, workers, live, their_scenarios = PEER_CONFIGS[name]
        scenario_set = wanted & set(their_scenarios)
        if not scenario_set:
            continue
        subject = servers.start_peer(token, server, workers, live)
        say(f"started {subject.label} on port {subject.target.port}")
        try:
            suite = Suite(subject, args, scenario_set, args.peer_idle_sockets)
            data["subjects"].append(_subject(subject, "old", suite.run(servers.reset_peer)))
        finally:
            subject.stop()


def _subject(subject: Managed, kind: str, results: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "config": subject.label, "results": results}


def show(data: dict[str, Any], chart: Path) -> None:
    print(report.markdown(data) + "\n\n" + report.cpu_markdown(data))
    meta = data["meta"]
    say(f"\nload average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; {meta['seconds']:.0f} s in all")
    say(f"chart: {chart}" if report.write_chart(data, chart) else "(no matplotlib: no chart)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        show(json.loads(args.report.read_text()), args.chart or args.report.with_suffix(".png"))
        return 0
    if args.instructions:
        return instructions.main(args)
    wanted = set(args.scenarios.split(","))
    stamp = dt.datetime.now(dt.timezone.utc)
    json_path = args.json or Path("bench-results") / f"{stamp:%Y%m%dT%H%M%SZ}.json"
    data: dict[str, Any] = {"meta": {
        "date": f"{stamp:%Y-%m-%d %H:%M} UTC", "command": "scripts/bench " + shlex.join(argv or sys.argv[1:]),
        "machine": procstat.machine(), "loadavg_start": procstat.loadavg(), "duration": args.duration,
        "warmup": args.warmup, "client_processes": args.client_procs}, "subjects": []}
    started = time.monotonic()
    say(f"load average at start: {data['meta']['loadavg_start']}")
    run_ours(args, wanted, data)
    if args.peer:
        try:
            run_peer(args, wanted, data)
        except RuntimeError as exc:  # e.g. no PostgreSQL 15 for the old stack: keep our own figures
            data["peer_error"] = str(exc)
            say(f"old stack not measured: {exc}")
    data["meta"].update(loadavg_end=procstat.loadavg(), seconds=round(time.monotonic() - started, 1))
    report.write_json(data, json_path)
    say(f"JSON: {json_path}")
    show(data, args.chart or json_path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
