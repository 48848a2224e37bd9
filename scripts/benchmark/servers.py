"""Servers the bench starts and stops itself: ours (CLI, embedded PostgreSQL) and the old stack (peer-django)."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmark import pgtools
from benchmark.load import Target

PROJECT = Path(__file__).resolve().parents[2]
# Ours is started by the launcher the tests use (tests/processes.py: no pytest needed); tests/ is a package of PROJECT.
sys.path.insert(0, str(PROJECT))
from tests.processes import ServerPopen, free_port, server_command, server_environment  # noqa: E402

# The old stack's scripts; BENCH_PEER_HOME overrides (e.g. from a clone that is not beside shared/).
PEER_HOME = Path(os.environ.get("BENCH_PEER_HOME") or PROJECT / ".." / "shared" / "peer-django").resolve()
SEED_SQL = """
TRUNCATE patients RESTART IDENTITY CASCADE;  -- vitals reference patients
INSERT INTO patients (first_name, last_name, admission_date, dismissal_date)
SELECT 'First' || i, 'Last' || i, date_trunc('second', now()) - (1000 - i) * interval '1 day',
       CASE WHEN i % 3 = 0 THEN date_trunc('second', now()) - (998 - i) * interval '1 day' END
FROM generate_series(1, {rows}) AS i;
"""


@dataclasses.dataclass
class Managed:
    """A running server: how to reach it, which processes are its own and its database's."""

    label: str                      # e.g. "ours", "old stack (daphne, 1 process)"
    target: Target
    server_pid: int
    db_pid: int | None
    stop_command: list[str] | None = None
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    database_url: str | None = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.stop_command:
            subprocess.run(self.stop_command, capture_output=True, check=False)
        if self.workdir is not None:
            log = self.workdir / "server.log"
            if log.exists():  # what the server said, for a run that went wrong
                shutil.copy(log, Path(tempfile.gettempdir()) / "dashboard-bench-server.log")
            shutil.rmtree(self.workdir, ignore_errors=True)


def _cli(env: dict[str, str], *args: str, stdin: int | None = subprocess.DEVNULL) -> str:
    done = subprocess.run(server_command(*args), env=env, cwd=PROJECT, stdin=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dashboard-server {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def start_ours(database_url: str | None, serve_args: list[str], wrapper: list[str] | None = None,
               ready_within: float = 90) -> Managed:
    """migrate, createuser, token, serve on a free port; embedded PostgreSQL in a temporary directory.

    `wrapper` runs before serve (its "{workdir}" is the temporary directory): instructions.py's valgrind."""
    workdir = Path(tempfile.mkdtemp(prefix="dashboard-bench."))
    workdir.chmod(0o755)  # the embedded cluster's system user must reach it when we are root
    settings = {"DASHBOARD_DATA_DIR": str(workdir / "var"),
                # One bench user opens thousands of sockets: lift the per-user cap (default 200) for it.
                "DASHBOARD_MAX_SOCKETS_PER_USER": "100000", "DASHBOARD_MAX_SOCKETS": "100000"}
    env = server_environment(database_url, settings)
    _cli(env, "migrate")
    user = f"bench{os.getpid()}"
    _cli(env, "createuser", user)
    token = _cli(env, "token", user)
    server = ServerPopen.start(database_url, *serve_args, env=settings, cwd=PROJECT, log_path=workdir / "server.log",
                               wrapper=[part.format(workdir=workdir) for part in wrapper or ()])
    managed = Managed("ours", Target("127.0.0.1", server.port, token), server.process.pid, None,
                      process=server.process, workdir=workdir)
    try:
        server.wait_serving(timeout=ready_within)
        managed.database_url = database_url or pgtools.embedded_url(workdir / "var")
        managed.db_pid = None if database_url else pgtools.postmaster_pid(workdir / "var" / "pgdata")
    except BaseException:
        managed.stop()
        raise
    return managed


def reset_ours(managed: Managed, rows: int) -> None:
    pgtools.psql(managed.database_url, SEED_SQL.format(rows=rows))


def peer_env(live: bool, server: str) -> dict[str, str]:
    return {**os.environ, "PATIENTS_LIVE": "1" if live else "0", "ASGI_SERVER": server}


def peer_setup() -> str:
    """Run the old stack's idempotent setup.sh; its bench user's token."""
    if not (PEER_HOME / "setup.sh").exists():
        raise RuntimeError(f"no old stack at {PEER_HOME}: set BENCH_PEER_HOME to the peer-django folder")
    done = subprocess.run([str(PEER_HOME / "setup.sh")], capture_output=True, text=True)
    tokens = [line.split("=", 1)[1] for line in done.stdout.splitlines() if line.startswith("BENCH_TOKEN=")]
    if done.returncode != 0 or not tokens:
        raise RuntimeError(f"peer-django setup.sh failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return tokens[-1]


def start_peer(token: str, server: str, workers: int, live: bool) -> Managed:
    """start.sh on a free port; the table reset later by reset_peer."""
    port = free_port()
    env = peer_env(live, server)
    done = subprocess.run([str(PEER_HOME / "start.sh"), str(port), str(workers)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"peer-django start.sh failed:\n{done.stdout}\n{done.stderr}")
    run_dir = Path(os.environ.get("PEER_RUN", "/tmp/peer-django/run"))
    pid = int((run_dir / f"server-{port}.pid").read_text())
    pg_dir = Path(os.environ.get("PEER_PG", "/tmp/peer-django/pg"))
    live_note = ", PATIENTS_LIVE=1" if live else ", PATIENTS_LIVE=0"
    label = f"old stack ({server}, {workers} process{'es' if workers > 1 else ''}{live_note})"
    target = Target("127.0.0.1", port, token, live_stream="patients_live")
    return Managed(label, target, pid, pgtools.postmaster_pid(pg_dir / "data"),
                   stop_command=[str(PEER_HOME / "stop.sh"), str(port)])


def reset_peer(rows: int) -> None:
    script = f'source "{PEER_HOME}/env.sh" && "$PEER_VENV/bin/python" "$PEER_HOME/manage.py" reset_patients --seed {rows}'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"peer-django reset_patients failed: {done.stderr[-1500:]}")
