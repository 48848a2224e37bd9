"""Start and stop an embedded PostgreSQL cluster (pgserver's binaries) inside the server's data directory."""
from __future__ import annotations

import fcntl
import logging
import os
import shlex
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple
from urllib.parse import quote

from server.store.pginstall import (
    EmbeddedError,
    last_line,
    new_file,
    pgserver_install,
    reachable_install,
    system_pgdata,
    system_user,
)

log = logging.getLogger(__name__)

DATABASE = "dashboard"
PORT = 5432
TIMEOUT = 60  # seconds for pg_ctl start/stop and for waiting on a postmaster
MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes; keep a margin
STOP_MODES = ("fast", "immediate", "smart")  # pg_ctl stop -m
# Written into postgresql.conf by initdb, so an admin can still tune them later.
SETTINGS = ("max_connections=200", "shared_buffers=128MB", "unix_socket_permissions=0700",
            "listen_addresses=")


class _PidFile(NamedTuple):
    pid: int
    port: int
    socket_dir: str
    status: str


@dataclass(frozen=True)
class _Cluster:
    bin_dir: Path
    lib_dir: Path  # holds the bundled libpq that pgserver's binaries link against
    pgdata: Path
    log_file: Path
    uid: int | None  # None: run as the current user
    gid: int | None

    def run(self, exe: str, *args: str) -> subprocess.CompletedProcess[str]:
        # Inherited PG* variables (PGDATA, PGPORT, ...) would silently change what the tools do.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LD_LIBRARY_PATH"] = str(self.lib_dir)
        try:  # cwd="/" because the caller's cwd (e.g. /root) may be closed to the system user
            return subprocess.run([str(self.bin_dir / exe), *args], capture_output=True, text=True,
                                  env=env, cwd="/", timeout=TIMEOUT + 30, user=self.uid, group=self.gid,
                                  extra_groups=None if self.uid is None else [])
        except subprocess.TimeoutExpired:
            raise EmbeddedError(f"{exe} timed out; see {self.log_file}") from None


class EmbeddedPostgres:
    """Handle on a running embedded cluster; stop() acts only if this handle started it, and only once."""

    def __init__(self, url: str, started_here: bool, cluster: _Cluster, lock_path: Path) -> None:
        self.url = url
        self._started_here = started_here
        self._cluster = cluster
        self._lock_path = lock_path
        self._stopped = False

    @property
    def started_here(self) -> bool:
        """Whether start_embedded() started the cluster for this handle (else it was running already)."""
        return self._started_here

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m mode (fast, immediate, smart); only if this handle started the cluster, and only once."""
        if mode not in STOP_MODES:
            raise ValueError(f"stop mode must be one of {', '.join(STOP_MODES)}, not {mode!r}")
        if not self._started_here or self._stopped:
            return
        try:
            with _locked(self._lock_path):
                _pg_stop(self._cluster, mode)
        except OSError as exc:
            raise EmbeddedError(f"could not stop embedded PostgreSQL: {exc}") from exc
        self._stopped = True

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(url={self.url!r}, started_here={self.started_here})"


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Ensure a cluster exists under data_dir and is running; create database `dashboard` if missing; return its URL."""
    data_dir = Path(data_dir).expanduser().absolute()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        return _start_locked(data_dir, data_dir / "embedded-postgres.lock")
    except OSError as exc:  # permissions, disk full, ...: the CLI wants one line, not a traceback
        raise EmbeddedError(f"embedded PostgreSQL setup failed: {exc}") from exc


def _start_locked(data_dir: Path, lock_path: Path) -> EmbeddedPostgres:
    with _locked(lock_path):
        cluster = _prepare_cluster(data_dir)
        info = _running_postmaster(cluster)
        started_here = info is None
        if info is None:
            if not (cluster.pgdata / "PG_VERSION").exists():
                _initdb(cluster)
            info = _start(cluster)
        try:
            _ensure_database(cluster, info)
        except BaseException:
            if started_here:  # don't leave a postmaster behind that nobody will stop
                _pg_stop(cluster)
            raise
    return EmbeddedPostgres(_url(info), started_here, cluster, lock_path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Serializes init/start/stop between processes sharing a data dir (serve, migrate, token, ...).
    # Blocking is bounded: every holder only runs subprocesses and connects with timeouts.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _prepare_cluster(data_dir: Path) -> _Cluster:
    src, libs = pgserver_install()
    link = data_dir / "pgdata"
    if link.is_symlink() and not link.exists():
        raise EmbeddedError(f"{link} points to a missing directory ({os.readlink(link)}); "
                            "refusing to create a new empty cluster")
    if os.geteuid() != 0:
        return _Cluster(src / "bin", libs, link, data_dir / "postgresql.log", None, None)
    # PostgreSQL refuses to run as root: the system user runs it, so it must reach binaries and cluster.
    uid, gid = system_user()
    bin_dir, lib_dir = reachable_install(src, libs, uid, gid)
    pgdata = system_pgdata(data_dir, uid, gid)
    log_file = pgdata.parent / "postgresql.log"
    new_file(log_file, uid, gid)  # pg_ctl opens the log as the system user, so it must own it
    return _Cluster(bin_dir, lib_dir, pgdata, log_file, uid, gid)


def _initdb(cluster: _Cluster) -> None:
    log.info("initializing embedded PostgreSQL cluster in %s", cluster.pgdata)
    settings = [arg for s in SETTINGS for arg in ("--set", s)]
    for locale in ("C.UTF-8", "C"):  # C.UTF-8 classifies non-ASCII letters; plain C exists everywhere
        res = cluster.run("initdb", "-D", str(cluster.pgdata), "-U", "postgres", "--auth=trust",
                          "--auth-local=trust", "--encoding=UTF8", f"--locale={locale}", *settings)
        if res.returncode == 0:
            return
        if "invalid locale" not in res.stderr:
            break
    raise EmbeddedError(f"initdb failed in {cluster.pgdata}: {last_line(res.stderr)}")


def _socket_dir(cluster: _Cluster) -> Path:
    if len(str(cluster.pgdata / f".s.PGSQL.{PORT}")) <= MAX_SOCKET_PATH:
        return cluster.pgdata
    # Path too long for a unix socket: use a private temp dir, recorded so restarts reuse it.
    record = cluster.pgdata.parent / "postgresql.socketdir"
    owner = os.geteuid() if cluster.uid is None else cluster.uid
    try:
        old = Path(record.read_text().strip())
        st = old.lstat()
        if old.is_dir() and not old.is_symlink() and st.st_uid == owner and st.st_mode & 0o777 == 0o700:
            return old
    except OSError:
        pass
    new = Path(tempfile.mkdtemp(prefix="dashboard-pg-"))
    if cluster.uid is not None and cluster.gid is not None:
        os.chown(new, cluster.uid, cluster.gid)
    record.write_text(f"{new}\n")
    return new


def _start(cluster: _Cluster) -> _PidFile:
    socket_dir = _socket_dir(cluster)
    log.info("starting embedded PostgreSQL (%s, socket in %s)", cluster.pgdata, socket_dir)
    # -o is run through /bin/sh by pg_ctl, hence the quoting; -h '' means no TCP at all.
    opts = f"-h '' -p {PORT} -k {shlex.quote(str(socket_dir))}"
    res = cluster.run("pg_ctl", "-D", str(cluster.pgdata), "-l", str(cluster.log_file), "-w",
                      "-t", str(TIMEOUT), "-o", opts, "start")
    info = _running_postmaster(cluster) if res.returncode == 0 else None
    if info is None:
        raise EmbeddedError(f"embedded PostgreSQL did not start ({last_line(res.stderr)}); "
                            f"log {cluster.log_file}: {_log_tail(cluster.log_file)}")
    return info


def _pg_stop(cluster: _Cluster, mode: str = "fast") -> None:
    res = cluster.run("pg_ctl", "-D", str(cluster.pgdata), "-m", mode, "-w", "-t", str(TIMEOUT), "stop")
    info = _read_pidfile(cluster.pgdata)
    if res.returncode != 0 and info is not None and _alive(info.pid):
        raise EmbeddedError(f"could not stop embedded PostgreSQL: {last_line(res.stderr)}")
    log.info("embedded PostgreSQL stopped (%s)", cluster.pgdata)


def _running_postmaster(cluster: _Cluster) -> _PidFile | None:
    """The live, answering postmaster for pgdata, or None if none runs (a stale pid file counts as none)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        info = _read_pidfile(cluster.pgdata)
        alive = _alive(info.pid) if info is not None else False
        if info is None or alive is False:
            return None
        if alive is None:  # PostgreSQL counts a zombie postmaster as running: wait until it is reaped
            if time.monotonic() > deadline:
                return None
            _reap(info.pid)
            time.sleep(0.2)
            continue
        if info.status == "ready" and not info.socket_dir:
            raise EmbeddedError(f"postmaster {info.pid} for {cluster.pgdata} has no unix socket")
        if info.status == "ready" and _answers(cluster, info):
            return info
        if time.monotonic() > deadline:
            raise EmbeddedError(f"postmaster {info.pid} for {cluster.pgdata} is not answering; "
                                f"log {cluster.log_file}: {_log_tail(cluster.log_file)}")
        time.sleep(0.2)


def _read_pidfile(pgdata: Path) -> _PidFile | None:
    # Lines: pid, datadir, start time, port, socket dir, listen address, shmem key, status.
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines() + [""] * 8
        return _PidFile(int(lines[0]), int(lines[3] or PORT), lines[4].strip(), lines[7].strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool | None:
    """True for a live postgres process, None for a zombie (gone once reaped), else False."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:  # a recycled pid of some unrelated process is not our postmaster; zombies have no cmdline
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return None if not cmdline else b"postgres" in cmdline


def _reap(pid: int) -> None:
    # Only matters when we are the postmaster's parent, e.g. the server runs as PID 1 in a container.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _client_args(info: _PidFile) -> list[str]:
    return ["-h", info.socket_dir, "-p", str(info.port), "-U", "postgres"]


def _answers(cluster: _Cluster, info: _PidFile) -> bool:
    # The cluster's own client tools, so that db.py stays the only module that knows the driver.
    return cluster.run("pg_isready", *_client_args(info), "-d", "postgres", "-t", "5").returncode == 0


def _ensure_database(cluster: _Cluster, info: _PidFile) -> None:
    found = cluster.run("psql", *_client_args(info), "-d", "postgres", "-tAc",
                        f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
    if found.returncode == 0 and found.stdout.strip() == "1":
        return
    log.info("creating database %s", DATABASE)
    created = cluster.run("createdb", *_client_args(info), DATABASE)
    if created.returncode != 0:
        raise EmbeddedError(f"could not create database {DATABASE}: {last_line(created.stderr)}")


def _url(info: _PidFile) -> str:
    return f"postgresql://postgres@/{DATABASE}?host={quote(info.socket_dir, safe='/')}&port={info.port}"


def _log_tail(path: Path, count: int = 5) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(lines[-count:]) or "(empty log)"
