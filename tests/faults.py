"""A second embedded PostgreSQL the fault tests may stop, kill and restart without disturbing the others."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from server.store.embedded import EmbeddedPostgres, start_embedded
from tests.live import sql
from tests.pg import migrate_url


class FaultyPostgres:
    """An embedded cluster of its own, in a fresh 0755 directory under /tmp (as tests/pg.py makes them)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="dashboard-fault-"))
        self.base.chmod(0o755)
        # Always the handle of the latest start: the one that started the running cluster, so it may stop it.
        self.embedded: EmbeddedPostgres = start_embedded(self.base / "var")
        self.url = self.embedded.url
        asyncio.run(migrate_url(self.url))

    def stop(self, mode: str = "immediate") -> None:
        """pg_ctl stop: `immediate` is kill -9 for the clients (no goodbye), `fast` ends them politely."""
        self.embedded.stop(mode)

    def start(self) -> None:
        self.embedded = start_embedded(self.base / "var")
        assert self.embedded.url == self.url and self.embedded.started_here

    def processes(self) -> list[int]:
        """The postmaster (its pid file's first line) and its children, the backends."""
        postmaster = int((self.base / "var" / "pgdata" / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            try:
                # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
                if entry.name.isdigit() and int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == postmaster:
                    children.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass  # gone meanwhile
        return [postmaster, *children]

    def freeze(self) -> list[int]:
        """SIGSTOP the whole cluster: connections stay open, nothing answers. Returns what to thaw."""
        frozen = self.processes()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        return frozen

    @staticmethod
    def thaw(frozen: list[int]) -> None:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def query(self, statement: str, params: Any = None) -> list[tuple]:
        return sql(self.url, statement, params)

    def remove(self) -> None:
        try:
            self.embedded.stop()  # a no-op if the last thing done was a stop
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
