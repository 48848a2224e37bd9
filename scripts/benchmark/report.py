"""The results as a table (terminal and Markdown), a JSON file and a PNG chart."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

Results = dict[str, Any]
Cell = Callable[[Results], tuple[float | None, str]]   # (value compared for the ratio, text)


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def load_cell(key: str) -> Cell:
    def cell(results: Results) -> tuple[float | None, str]:
        result = results.get(key)
        if not result:
            return None, "—"
        if result.get("note"):
            return None, result["note"]
        errors = f", {result['errors']} errors" if result["errors"] else ""
        return result["throughput"], (f"{_num(result['throughput'])} req/s, p50 {result['p50_ms']:.1f} ms, "
                                      f"p99 {result['p99_ms']:.1f} ms{errors}")
    return cell


def idle_memory(results: Results) -> tuple[float | None, str]:
    idle = results.get("idle")
    if not idle or "kib_per_socket" not in idle:
        return None, "—"
    return idle["kib_per_socket"], f"{idle['kib_per_socket']:.1f} KiB/socket ({idle['opened']:,} open)"


def open_rate(results: Results) -> tuple[float | None, str]:
    idle = results.get("idle")
    if not idle or idle.get("note"):
        return None, idle["note"] if idle else "—"
    errors = f", {idle['errors']} errors" if idle["errors"] else ""
    return idle["open_rate"], f"{_num(idle['open_rate'])} sockets/s ({idle['opened']:,} sockets{errors})"


def fanout_cell(key: str) -> Cell:
    return lambda results: fanout(results.get(key))


def fanout(result: Results | None) -> tuple[float | None, str]:
    if not result:
        return None, "—"
    if not result.get("supported") or result.get("note"):
        return None, result["note"]
    latency = result["after_reply"]
    lost = result["pushes_expected"] - result["pushes_received"]
    lost_text = f"{lost} lost" if lost >= 0 else f"{-lost} pushes more than counted (late subscriptions)"
    died = "" if result.get("server_alive_after", True) else ", the server died"
    unopened = f", {result['not_opened']:,} not opened" if result.get("not_opened") else ""
    return latency["p99_ms"], (f"p50 {latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms "
                               f"({result['subscribed']:,} of {result['subscribers']:,} subscribed{unopened}, "
                               f"{lost_text}{died})")


def peak_rss(results: Results) -> tuple[float | None, str]:
    peak = results.get("peak_rss_kib")
    return (None, "—") if not peak else (peak, f"{peak / 1024:,.0f} MiB")


# (label, cell, higher is better)
ROWS: list[tuple[str, Cell, bool]] = [
    ("retrieve, 1 socket, one request at a time", load_cell("retrieve@1"), True),
    ("retrieve, 4 sockets", load_cell("retrieve@4"), True),
    ("retrieve, 16 sockets", load_cell("retrieve@16"), True),
    ("retrieve, 64 sockets", load_cell("retrieve@64"), True),
    ("mixed 60/20/10/10, 16 sockets", load_cell("mixed"), True),
    ("write mix 60% retrieve / 30% patch / 10% create, 16 sockets", load_cell("writes"), True),
    ("unpaginated list of 1,000 rows, 4 sockets", load_cell("list_all"), True),
    ("REST retrieve, keep-alive, 16 connections", load_cell("rest"), True),
    ("memory per idle authenticated socket", idle_memory, False),
    ("opening sockets", open_rate, True),
    ("change pushed to 200 subscribers, after the write's reply", fanout_cell("fanout@200"), False),
    ("change pushed to 1,000 subscribers, after the write's reply", fanout_cell("fanout@1000"), False),
    ("change pushed to 5,000 subscribers, after the write's reply", fanout_cell("fanout@5000"), False),
    ("peak RSS of the server", peak_rss, False),
]


def best_of(kind: str, subjects: list[Results], cell: Cell, higher: bool) -> tuple[float | None, str]:
    """The best configuration of one side (ours / old) for this figure, named when there are several."""
    candidates = [(cell(s["results"]), s["config"]) for s in subjects if s["kind"] == kind]
    measured = [(value, text, config) for (value, text), config in candidates if value is not None]
    if not measured:
        texts = [text for (value, text), _ in candidates if text != "—"]
        return None, texts[0] if texts else "—"
    value, text, config = (max if higher else min)(measured, key=lambda item: item[0])
    return value, f"{text} [{config}]" if len(candidates) > 1 else text


def ratio(ours: float | None, old: float | None, higher: bool) -> str:
    if not ours or not old:
        return "—"
    return f"{(ours / old) if higher else (old / ours):.1f}×"


def table_rows(data: Results) -> list[tuple[str, str, str, str]]:
    rows = []
    for label, cell, higher in ROWS:
        ours_value, ours_text = best_of("ours", data["subjects"], cell, higher)
        old_value, old_text = best_of("old", data["subjects"], cell, higher)
        rows.append((label, ours_text, old_text, ratio(ours_value, old_value, higher)))
    pgbench = data.get("pgbench")
    if pgbench:
        text = pgbench.get("note") or f"{_num(pgbench['tps'])} selects/s ({pgbench['clients']} clients)"
        rows.append(("PostgreSQL's own ceiling (pgbench -S, same cluster)", text, "—", "—"))
    return rows


def markdown(data: Results) -> str:
    lines = ["| figure | ours | old stack | ours vs old |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in table_rows(data)]
    return "\n".join(lines)


# Server CPU per unit of work: a request for loads, a handshake for idle sockets, a push for fan-out.
PER_UNIT = (("server_cpu_us_per_request", "req"), ("server_cpu_us_per_socket", "socket opened"),
            ("server_cpu_us_per_push", "push"))


def cpu_markdown(data: Results) -> str:
    """Where the 2 cores went during each scenario (cores busy: 1.0 = one core), and server CPU per unit."""
    lines = ["| server | scenario | rate | client | server | PostgreSQL | whole machine | server CPU µs per |",
             "|---|---|---|---|---|---|---|---|"]
    for subject in data["subjects"]:
        for key, result in subject["results"].items():
            if isinstance(result, dict) and "server_cpu" in result:
                rate = result.get("throughput") or result.get("open_rate")
                rate_text = f"{_num(rate)}/s" if rate else f"{result.get('pushes_received', 0):,} pushes"
                per = next((f"{result[field]:,.0f} µs / {unit}" for field, unit in PER_UNIT if field in result), "—")
                client = f"{result['client_cpu']:.2f}" if "client_cpu" in result else "—"
                lines.append(f"| {subject['config']} | {key} | {rate_text} | {client} | {result['server_cpu']:.2f} "
                             f"| {result['db_cpu']:.2f} | {result['machine_cpu']:.2f} | {per} |")
    return "\n".join(lines)


def write_json(data: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def sweep_points(subject: Results) -> list[tuple[int, float, float]]:
    points = [(r["sockets"], r["throughput"], r["p99_ms"]) for key, r in subject["results"].items()
              if key.startswith("retrieve@") and isinstance(r, dict) and "throughput" in r]
    return sorted(points)


def write_chart(data: Results, path: Path) -> bool:
    """Throughput and p99 against sockets, one line per server configuration; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for subject in data["subjects"]:
        points = sweep_points(subject)
        if points:
            sockets = [p[0] for p in points]
            left.plot(sockets, [p[1] for p in points], marker="o", label=subject["config"])
            right.plot(sockets, [p[2] for p in points], marker="o", label=subject["config"])
    for axis, title, unit in ((left, "retrieve throughput", "requests/s"), (right, "retrieve p99 latency", "ms")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("sockets (one request in flight each)")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    if left.lines:
        left.legend(fontsize=8)
    figure.suptitle(f"dashboard-server vs old stack, {data['meta']['date']} "
                    f"({data['meta']['machine']['cores']} cores, load avg at start {data['meta']['loadavg_start']})",
                    fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
