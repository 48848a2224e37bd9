"""PostgreSQL client tools from the pgserver wheel (psql, pgbench), and the embedded cluster's address."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from server.store.pginstall import pgserver_install


def run_tool(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a bundled client binary with its bundled libraries; PG* variables are not inherited."""
    install, libs = pgserver_install()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LD_LIBRARY_PATH"] = str(libs)
    return subprocess.run([str(install / "bin" / name), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd="/")


def psql(url: str, sql: str) -> str:
    done = run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout


def embedded_url(data_dir: Path) -> str:
    """The running embedded cluster's URL (it is already up: this never starts or stops it)."""
    from server.store.embedded import start_embedded

    return start_embedded(data_dir).url


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def with_database(url: str, name: str) -> str:
    """The same server URL, naming another database."""
    return re.sub(r"(postgres(?:ql)?://[^/]*/)([^?]*)", lambda m: m.group(1) + name, url, count=1)


def pgbench_select_only(url: str, clients: int, seconds: float) -> dict[str, float | str]:
    """pgbench -S in a scratch database on the same cluster: the database's own ceiling."""
    scratch = "dashboard_bench_pgbench"
    psql(url, f"DROP DATABASE IF EXISTS {scratch}")
    psql(url, f"CREATE DATABASE {scratch}")
    try:
        target = with_database(url, scratch)
        init = run_tool("pgbench", "-i", "-q", "-s", "1", target)
        if init.returncode != 0:
            raise RuntimeError(f"pgbench -i failed: {init.stderr.strip()[-500:]}")
        done = run_tool("pgbench", "-S", "-n", "-c", str(clients), "-j", "2", "-T", str(max(1, round(seconds))),
                        target)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench -S failed: {done.stderr.strip()[-500:]}")
    finally:
        psql(url, f"DROP DATABASE IF EXISTS {scratch}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    return {"tps": float(tps.group(1)) if tps else 0.0,
            "latency_avg_ms": float(latency.group(1)) if latency else 0.0, "clients": clients,
            "protocol": "simple"}
