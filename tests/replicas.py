"""A replicated PostgreSQL for the failover test: a primary and a synchronous standby (pg_basebackup -R),
both on TCP 127.0.0.1 at free ports, run with pgserver's binaries (as the `dashboard-pg` user when root)."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from server.store.pginstall import pgserver_install, reachable_install, system_user
from tests.live import sql
from tests.pg import admin, migrate_url
from tests.processes import free_port

DATABASE = "dashboard"
TIMEOUT = 60  # seconds for any one tool
# Both nodes' settings (initdb copies them into postgresql.conf, pg_basebackup into the standby's).
# No Unix socket: the nodes are reached only through the multi-host URL's TCP addresses.
SETTINGS = ("listen_addresses = '127.0.0.1'", "unix_socket_directories = ''", "wal_level = replica",
            "max_wal_senders = 5", "synchronous_commit = on", "fsync = off", "shared_buffers = 16MB",
            "max_connections = 60")


class Node:
    """One cluster: its directory, port and log."""

    def __init__(self, home: Path, name: str) -> None:
        self.name = name
        self.pgdata = home / name
        self.log = home / f"{name}.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"


class ReplicatedPostgres:
    """`primary` streams synchronously to `standby`; `url` names both, libpq's way, read-write wanted."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="dashboard-failover-"))
        self.base.chmod(0o755)
        src, libs = pgserver_install()
        self.uid, self.gid = system_user() if os.geteuid() == 0 else (None, None)
        self.bin_dir, self.lib_dir = (src / "bin", libs) if self.uid is None else reachable_install(
            src, libs, self.uid, self.gid)
        self.home = self.base / "pg"  # the system user's: it writes the clusters and their logs here
        self.home.mkdir(mode=0o700)
        if self.uid is not None:
            os.chown(self.home, self.uid, self.gid)
        self.primary = Node(self.home, "primary")
        self.standby = Node(self.home, "standby")
        self.url = (f"postgresql://postgres@127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
                    f"/{DATABASE}?target_session_attrs=read-write")
        try:
            self._make_primary()
            self._make_standby()
        except BaseException:
            self.remove()
            raise

    def run(self, exe: str, *args: str) -> str:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LD_LIBRARY_PATH"] = str(self.lib_dir)
        done = subprocess.run([str(self.bin_dir / exe), *args], capture_output=True, text=True, env=env, cwd="/",
                              timeout=TIMEOUT, user=self.uid, group=self.gid,
                              extra_groups=None if self.uid is None else [])
        if done.returncode != 0:
            raise RuntimeError(f"{exe} {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
        return done.stdout

    def _make_primary(self) -> None:
        # initdb's pg_hba.conf already trusts replication connections from 127.0.0.1 with --auth=trust.
        self.run("initdb", "-D", str(self.primary.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                 "--locale=C")
        self.configure(self.primary, *SETTINGS, f"port = {self.primary.port}")
        self.start(self.primary)
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres", DATABASE)
        asyncio.run(migrate_url(self.primary.url))

    def _make_standby(self) -> None:
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                 "-D", str(self.standby.pgdata), "-R", "-X", "stream", "-c", "fast")
        # Its own port, and its name: what the primary's synchronous_standby_names waits for.
        self.configure(self.standby, f"port = {self.standby.port}", f"cluster_name = '{self.standby.name}'")
        self.start(self.standby)
        # Synchronous from here on (before, the primary's own commits would wait for it): ALTER SYSTEM
        # writes the primary's postgresql.auto.conf only, so once promoted the standby waits for no one.
        admin(self.primary.url, f"ALTER SYSTEM SET synchronous_standby_names = '{self.standby.name}'")
        self.query(self.primary, "SELECT pg_reload_conf()")
        self.wait_for(self.primary, "SELECT sync_state FROM pg_stat_replication", "sync")

    def configure(self, node: Node, *settings: str) -> None:
        """Append to postgresql.conf (later lines win); the file is the system user's, root may write it."""
        with open(node.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\n" + "\n".join(settings) + "\n")

    def start(self, node: Node) -> None:
        self.run("pg_ctl", "-D", str(node.pgdata), "-l", str(node.log), "-w", "-t", str(TIMEOUT), "start")

    def stop(self, node: Node, mode: str = "immediate") -> None:
        self.run("pg_ctl", "-D", str(node.pgdata), "-m", mode, "-w", "-t", str(TIMEOUT), "stop")

    def promote(self, node: Node) -> None:
        """pg_ctl promote -w: returns once the node accepts writes."""
        self.run("pg_ctl", "-D", str(node.pgdata), "-w", "-t", str(TIMEOUT), "promote")

    def wait_for(self, node: Node, statement: str, expected: str) -> None:
        for _ in range(TIMEOUT * 10):
            rows = self.query(node, statement)
            if rows and str(rows[0][0]) == expected:
                return
            time.sleep(0.1)
        raise AssertionError(f"{node.name}: {statement} never gave {expected!r}")

    def query(self, node: Node, statement: str, params: Any = None) -> list[tuple]:
        return sql(node.url, statement, params)

    def remove(self) -> None:
        for node in (self.primary, self.standby):
            if (node.pgdata / "postmaster.pid").exists():
                try:
                    self.stop(node)
                except RuntimeError:
                    pass
        shutil.rmtree(self.base, ignore_errors=True)
