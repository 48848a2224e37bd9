"""Find pgserver's PostgreSQL binaries; as root, make them and the cluster reachable by the `dashboard-pg` user."""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "dashboard-pg"
SHARED_DIR = Path("/var/lib/dashboard-server/embedded")


class EmbeddedError(RuntimeError):
    """The embedded cluster could not be set up; str() is a one-line message for humans."""


def pgserver_install() -> tuple[Path, Path]:
    """pgserver's `pginstall` directory (bin, lib, share) and the directory of its bundled libraries."""
    # find_spec does not import pgserver, whose import has side effects we do not want.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise EmbeddedError("the pgserver package (embedded PostgreSQL binaries) is not installed")
    pkg = Path(spec.origin).resolve().parent
    return pkg / "pginstall", pkg.parent / "pgserver.libs"


def system_user() -> tuple[int, int]:
    """uid and gid of PG_SYSTEM_USER, created first if missing."""
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        cmd = [shutil.which("useradd") or "/usr/sbin/useradd", "--system", "--no-create-home",
               "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--user-group", PG_SYSTEM_USER]
        log.info("creating system user %s", PG_SYSTEM_USER)
        res = subprocess.run(cmd, capture_output=True, text=True)
        try:  # a concurrent caller may have created it first, so look again rather than trust rc
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            raise EmbeddedError(f"could not create system user {PG_SYSTEM_USER}: {last_line(res.stderr)}") from None
    return entry.pw_uid, entry.pw_gid


def reachable_install(src: Path, libs: Path, uid: int, gid: int) -> tuple[Path, Path]:
    """bin and lib directories uid/gid can run: pgserver's own, else a copy of them under SHARED_DIR."""
    if _install_usable(src, libs, uid, gid):
        return src / "bin", libs
    return _copied_install(src, libs, uid, gid)


def _install_usable(src: Path, libs: Path, uid: int, gid: int) -> bool:
    for top in (src / "bin", src / "lib", src / "share", libs):
        if not _traversable(top, uid, gid):
            return False
        for dirpath, _dirs, files in os.walk(top):
            if not _permits(os.stat(dirpath), uid, gid, 0o5):
                return False
            for name in files:
                st = os.stat(os.path.join(dirpath, name))
                if not _permits(st, uid, gid, 0o4 | (0o1 if st.st_mode & 0o100 else 0)):
                    return False
    return True


def _copied_install(src: Path, libs: Path, uid: int, gid: int) -> tuple[Path, Path]:
    base = _shared_base(uid, gid)
    res = subprocess.run([str(src / "bin" / "postgres"), "--version"], capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout.split():
        raise EmbeddedError(f"cannot run {src / 'bin' / 'postgres'}: {last_line(res.stderr)}")
    dest = base / f"pginstall-{res.stdout.split()[-1]}"  # one copy per PostgreSQL version
    if not (dest / "bin" / "postgres").exists():
        log.info("copying PostgreSQL binaries to %s (the venv is not reachable by %s)", dest, PG_SYSTEM_USER)
        _publish_copy(src, libs, dest)
    if not _install_usable(dest, dest / "lib", uid, gid):
        raise EmbeddedError(f"{dest} exists but is not readable by {PG_SYSTEM_USER}")
    return dest / "bin", dest / "lib"


def _publish_copy(src: Path, libs: Path, dest: Path) -> None:
    # Built in a temp dir beside dest, so that nobody ever sees a half-copied dest.
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".pginstall-"))
    try:
        for sub in ("bin", "lib", "share"):
            _copy_tree(src / sub, tmp / sub)
        for lib in libs.iterdir():  # the binaries' $ORIGIN rpath won't find these after the move
            _copy_file(lib, tmp / "lib" / lib.name)
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)  # atomic publish; losing a race to another process is fine
    except OSError as exc:
        if not (dest / "bin" / "postgres").exists():
            raise EmbeddedError(f"could not copy PostgreSQL binaries to {dest}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_tree(src: Path, dst: Path) -> None:
    _mkdirs(dst, 0o755)
    for entry in os.scandir(src):
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), dst / entry.name)
        elif entry.is_dir():
            _copy_tree(Path(entry.path), dst / entry.name)
        else:
            _copy_file(Path(entry.path), dst / entry.name)


def _copy_file(src: Path, dst: Path) -> None:
    # Explicit modes: the source may carry a restrictive umask from pip install.
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o755 if src.stat().st_mode & 0o111 else 0o644)


def system_pgdata(data_dir: Path, uid: int, gid: int) -> Path:
    """The cluster directory for data_dir, owned by uid and reachable by it; created if missing."""
    link = data_dir / "pgdata"
    if link.exists():
        pgdata = link.resolve()
    else:
        pgdata = link if _traversable(data_dir, uid, gid) else _shared_pgdata(data_dir, uid, gid)
    if not _traversable(pgdata.parent, uid, gid):
        raise EmbeddedError(f"{pgdata.parent} is not reachable by system user {PG_SYSTEM_USER}")
    _mkdirs(pgdata, 0o700, (uid, gid))
    if pgdata.stat().st_uid != uid:
        raise EmbeddedError(f"{pgdata} is owned by uid {pgdata.stat().st_uid}, not {PG_SYSTEM_USER}; "
                            f"chown -R it to {PG_SYSTEM_USER} or move it away")
    return pgdata


def _shared_pgdata(data_dir: Path, uid: int, gid: int) -> Path:
    # data_dir is closed to the system user: keep the cluster outside, but leave a pointer in data_dir.
    home = _shared_base(uid, gid) / hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    _mkdirs(home, 0o700, (uid, gid))
    log.info("data dir %s is not reachable by %s; cluster lives in %s", data_dir, PG_SYSTEM_USER, home)
    (data_dir / "pgdata").symlink_to(home / "pgdata", target_is_directory=True)
    log_link = data_dir / "postgresql.log"
    if not (log_link.exists() or log_link.is_symlink()):
        log_link.symlink_to(home / "postgresql.log")
    return home / "pgdata"


def _shared_base(uid: int, gid: int) -> Path:
    """SHARED_DIR, created if missing; an error if uid/gid cannot reach it."""
    _mkdirs(SHARED_DIR, 0o755)
    if not _traversable(SHARED_DIR, uid, gid):
        raise EmbeddedError(f"{SHARED_DIR} is not reachable by system user {PG_SYSTEM_USER}; "
                            "make the data directory or that path traversable")
    return SHARED_DIR


def _traversable(path: Path, uid: int, gid: int) -> bool:
    """Whether uid/gid may search path and every directory above it."""
    path = path.resolve()
    return all(_permits(os.stat(p), uid, gid, 0o1) for p in (path, *path.parents))


def _permits(st: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    # Same class selection as the kernel: owner bits, else group bits, else other bits.
    shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
    return (st.st_mode >> shift) & bits == bits


def _mkdirs(path: Path, mode: int, owner: tuple[int, int] | None = None) -> None:
    """mkdir -p: path gets mode (and owner), missing parents 0755."""
    # Only directories created right here get a mode/owner; existing ones are never touched.
    for parent in reversed([path, *path.parents]):
        try:
            os.mkdir(parent, 0o700)
        except FileExistsError:
            continue
        os.chmod(parent, mode if parent == path else 0o755)  # explicit, independent of umask
        if owner is not None and parent == path:
            os.chown(parent, *owner)


def new_file(path: Path, uid: int, gid: int) -> None:
    """Create an empty 0600 file owned by uid/gid, unless path exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    os.fchown(fd, uid, gid)
    os.close(fd)


def last_line(text: str) -> str:
    """The last non-blank line of a tool's output, for one-line error messages."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
