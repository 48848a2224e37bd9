"""Tests for server.store.embedded: an embedded PostgreSQL started from pgserver's binaries."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

psycopg2 = pytest.importorskip("psycopg2")

_SPEC = importlib.util.find_spec("pgserver")
_PGINSTALL = Path(_SPEC.origin).resolve().parent / "pginstall" if _SPEC and _SPEC.origin else None
pytestmark = [pytest.mark.embedded, pytest.mark.skipif(
    sys.platform != "linux" or _PGINSTALL is None or not (_PGINSTALL / "bin" / "postgres").exists(),
    reason="pgserver's PostgreSQL binaries are not available",
)]

from server.store import pginstall  # noqa: E402
from server.store.embedded import STOP_MODES, EmbeddedError, start_embedded  # noqa: E402

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
PROJECT = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/cmdline").read_bytes() != b""  # zombies have an empty cmdline
    except (ProcessLookupError, FileNotFoundError):
        return False


def _wait_gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_postmaster(data_dir: Path) -> None:
    """Fast-shutdown whatever postmaster still runs for data_dir (test cleanup only)."""
    pid = _postmaster_pid(data_dir)
    if pid is None or not _alive(pid) or b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        return
    kids = _children(pid)
    os.kill(pid, signal.SIGINT)
    if not _wait_gone([pid]):
        os.kill(pid, signal.SIGKILL)
    _wait_gone([pid, *kids])


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A dir under /tmp that the dashboard-pg user (or nobody) can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="test-embedded-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cleanup() -> Iterator[Callable[[Path], Path]]:
    """Register data dirs; afterwards every postmaster and shared cluster dir for them is removed."""
    data_dirs: list[Path] = []
    yield lambda d: data_dirs.append(d) or d
    for data_dir in data_dirs:
        _kill_postmaster(data_dir)
        record = data_dir / "postgresql.socketdir"
        if record.exists():
            shutil.rmtree(record.read_text().strip(), ignore_errors=True)
        link = data_dir / "pgdata"
        if link.is_symlink():
            home = link.resolve().parent
            if home.parent == pginstall.SHARED_DIR:
                shutil.rmtree(home, ignore_errors=True)


def _query(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def _snapshot(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    result = {}
    for path in paths:
        for p in (path, *path.parents):
            if p.exists():
                st = os.stat(p)
                result[p] = (st.st_mode, st.st_uid, st.st_gid)
    return result


def test_start_in_closed_dir_changes_no_existing_modes(tmp_path: Path, cleanup) -> None:
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o700)
    data_dir = cleanup(closed / "data")
    watched = [data_dir.parent, _PGINSTALL / "bin", _PGINSTALL / "lib", _PGINSTALL.parent.parent / "pgserver.libs",
               Path("/root"), Path("/var/lib"), Path("/tmp")]
    before = _snapshot(watched)

    pg = start_embedded(data_dir)
    try:
        assert pg.started_here
        assert _query(pg.url, "select 1") == [(1,)]
        assert _query(pg.url, "select current_database()") == [("dashboard",)]
        assert _query(pg.url, "show listen_addresses") == [("",)]
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        if os.geteuid() == 0:  # closed dir: cluster must live in the shared dir, linked from data_dir
            assert (data_dir / "pgdata").is_symlink()
            assert (data_dir / "pgdata").resolve().parent.parent == pginstall.SHARED_DIR
    finally:
        pg.stop()
    assert _snapshot(watched) == before


def test_reuse_restart_persistence_and_stale_pid(open_dir: Path, cleanup) -> None:
    data_dir = cleanup(open_dir / "data")
    first = start_embedded(data_dir)
    try:
        assert first.started_here
        if os.geteuid() == 0:  # reachable dir: cluster lives in data_dir itself, owned by dashboard-pg
            assert not (data_dir / "pgdata").is_symlink()
            assert (data_dir / "pgdata").stat().st_mode & 0o777 == 0o700
        _query(first.url, "create table kept (v text); insert into kept values ('x')")
        second = start_embedded(data_dir)
        assert (second.started_here, second.url) == (False, first.url)
        second.stop()  # not ours: must be a no-op
        assert _query(first.url, "select 1") == [(1,)]
    finally:
        first.stop()
        first.stop()  # idempotent
    assert _postmaster_pid(data_dir) is None

    again = start_embedded(data_dir)
    assert again.started_here
    assert _query(again.url, "select v from kept") == [("x",)]
    pid = _postmaster_pid(data_dir)
    kids = _children(pid)
    os.kill(pid, signal.SIGKILL)  # crash: postmaster.pid and the socket lock file stay behind
    assert _wait_gone([pid, *kids])
    assert (data_dir / "pgdata" / "postmaster.pid").exists()
    after_crash = start_embedded(data_dir)
    assert after_crash.started_here
    assert _query(after_crash.url, "select v from kept") == [("x",)]
    after_crash.stop()

    dead = subprocess.Popen(["true"])
    dead.wait()
    (data_dir / "pgdata" / "postmaster.pid").write_text(f"{dead.pid}\n{data_dir / 'pgdata'}\n0\n5432\n\n\n\nready\n")
    after_stale = start_embedded(data_dir)
    try:
        assert after_stale.started_here
        assert _query(after_stale.url, "select 1") == [(1,)]
    finally:
        after_stale.stop()


def test_each_stop_mode_stops_and_only_the_latest_start_stops(open_dir: Path, cleanup) -> None:
    data_dir = cleanup(open_dir / "data")
    handles = []
    for mode in STOP_MODES:
        handles.append(start_embedded(data_dir))
        assert handles[-1].started_here
        for old in handles[:-1]:
            old.stop()  # stopped once already: a no-op, though the cluster runs again
        assert _query(handles[-1].url, "select 1") == [(1,)]
        with pytest.raises(ValueError, match="stop mode"):
            handles[-1].stop("kill")
        handles[-1].stop(mode)
        assert _postmaster_pid(data_dir) is None


def test_long_path_uses_temp_socket_dir(open_dir: Path, cleanup) -> None:
    data_dir = open_dir / ("d" * 60) / ("e" * 60)
    data_dir.parent.mkdir(mode=0o755)
    cleanup(data_dir)
    pg = start_embedded(data_dir)
    try:
        host = pg.url.split("host=")[1].split("&")[0]
        assert Path(host).name.startswith("dashboard-pg-") and len(host) < 100
        assert _query(pg.url, "select 1") == [(1,)]
    finally:
        pg.stop()
    pg = start_embedded(data_dir)
    try:
        assert pg.url.split("host=")[1].split("&")[0] == host  # recorded dir is reused
    finally:
        pg.stop()


def test_dangling_pgdata_link_is_an_error(open_dir: Path) -> None:
    data_dir = open_dir / "data"
    data_dir.mkdir()
    (data_dir / "pgdata").symlink_to(open_dir / "gone")
    with pytest.raises(EmbeddedError, match="missing directory"):
        start_embedded(data_dir)


_CHILD = """
import json, sys
from pathlib import Path
from server.store.embedded import start_embedded
pg = start_embedded(Path(sys.argv[1]))
print(json.dumps({"url": pg.url, "started_here": pg.started_here, "uid": Path(sys.argv[1], "pgdata").stat().st_uid}), flush=True)
sys.stdin.readline()
pg.stop()
"""


def _spawn(data_dir: Path, *prefix: str) -> subprocess.Popen:
    return subprocess.Popen([*prefix, sys.executable, "-c", _CHILD, str(data_dir)], cwd=PROJECT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        try:
            proc.communicate("\n", timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_concurrent_callers_share_one_postmaster(open_dir: Path, cleanup) -> None:
    data_dir = cleanup(open_dir / "data")
    procs = [_spawn(data_dir) for _ in range(2)]
    try:
        lines = [proc.stdout.readline() for proc in procs]
        assert all(lines), [proc.stderr.read() for proc in procs]
        results = [json.loads(line) for line in lines]
        assert sorted(r["started_here"] for r in results) == [False, True]
        assert results[0]["url"] == results[1]["url"]
        assert _query(results[0]["url"], "select 1") == [(1,)]
    finally:
        _finish(procs)
    assert all(proc.returncode == 0 for proc in procs)
    assert _postmaster_pid(data_dir) is None


@ROOT_ONLY
def test_normal_user_runs_postgres_as_itself(open_dir: Path, cleanup) -> None:
    data_dir = cleanup(open_dir / "data")
    data_dir.mkdir()
    os.chown(data_dir, 65534, 65534)
    proc = _spawn(data_dir, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        result = json.loads(line)
        assert result["started_here"] and result["uid"] == 65534
        assert _query(result["url"], "select current_database()") == [("dashboard",)]
        assert Path(f"/proc/{_postmaster_pid(data_dir)}").stat().st_uid == 65534
    finally:
        _finish([proc])
    assert proc.returncode == 0, proc.stderr
    assert not (data_dir / "pgdata").is_symlink()


@ROOT_ONLY
def test_unreachable_binaries_are_copied(tmp_path: Path, open_dir: Path, cleanup, monkeypatch) -> None:
    # Simulate a venv under a 0700 directory (like /root): a copy of pgserver's files in tmp_path, first on sys.path.
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    src = closed / "pgserver" / "pginstall"
    for sub in ("bin", "lib", "share"):
        shutil.copytree(_PGINSTALL / sub, src / sub, symlinks=True)
    (closed / "pgserver" / "__init__.py").touch()
    shutil.copytree(_PGINSTALL.parent.parent / "pgserver.libs", closed / "pgserver.libs")
    monkeypatch.syspath_prepend(str(closed))
    monkeypatch.delitem(sys.modules, "pgserver", raising=False)  # else find_spec answers from the imported one
    monkeypatch.setattr(pginstall, "SHARED_DIR", open_dir / "shared")
    assert pginstall.pgserver_install() == (src.resolve(), (closed / "pgserver.libs").resolve())
    closed_mode = closed.stat().st_mode

    data_dir = cleanup(open_dir / "data")
    pg = start_embedded(data_dir)
    try:
        copies = list((open_dir / "shared").glob("pginstall-*"))
        assert len(copies) == 1 and copies[0].stat().st_mode & 0o777 == 0o755
        cmdline = Path(f"/proc/{_postmaster_pid(data_dir)}/cmdline").read_bytes().split(b"\0")[0]
        assert cmdline.decode() == str(copies[0] / "bin" / "postgres")
        assert _query(pg.url, "select 1") == [(1,)]
    finally:
        pg.stop()
    assert closed.stat().st_mode == closed_mode
