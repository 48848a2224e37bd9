"""A second embedded PostgreSQL the fault tests may stop, kill and restart without disturbing the others."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any


from server.embedded import EmbeddedPostgres, start_embedded
from tests.live import sql
from tests.pg import migrate_url


class FaultyPostgres:
    """An embedded cluster of its own, in a fresh 0755 directory under /tmp (as tests/pg.py makes them)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="dashboard-fault-"))
        self.base.chmod(0o755)
        self.embedded: EmbeddedPostgres = start_embedded(self.base / "var")
        self.url = self.embedded.url
        asyncio.run(migrate_url(self.url))

    def stop(self, mode: str = "immediate") -> None:
        """pg_ctl stop: `immediate` is kill -9 for the clients (no goodbye), `fast` ends them politely."""
        cluster = self.embedded._cluster
        result = cluster.run("pg_ctl", "-D", str(cluster.pgdata), "-m", mode, "-w", "-t", "60", "stop")
        assert result.returncode == 0, result.stderr

    def start(self) -> None:
        again = start_embedded(self.base / "var")
        assert again.url == self.url and again.started_here

    def query(self, statement: str, params: Any = None) -> list[tuple]:
        return sql(self.url, statement, params)

    def remove(self) -> None:
        self.embedded.started_here = True  # whoever started it last, this one stops it
        self.embedded._stopped = False
        try:
            self.embedded.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
