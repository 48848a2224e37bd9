"""A second embedded PostgreSQL the fault tests may stop, kill and restart without disturbing the others."""
from __future__ import annotations

import asyncio
import shutil
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

    def query(self, statement: str, params: Any = None) -> list[tuple]:
        return sql(self.url, statement, params)

    def remove(self) -> None:
        try:
            self.embedded.stop()  # a no-op if the last thing done was a stop
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
