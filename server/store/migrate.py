"""Applies sql/migrations/NNNN_name.sql in order, each in a transaction, under an advisory lock."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from server.store.db import Database

log = logging.getLogger(__name__)
MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def migration_files(sql_dir: Path) -> list[tuple[int, str, Path]]:
    """(version, name, path) of every migration, in version order."""
    found = []
    for path in sorted((sql_dir / "migrations").iterdir()):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            raise ValueError(f"not a migration file name: {path.name}")
        found.append((int(match.group(1)), match.group(2), path))
    versions = [version for version, _, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError("two migrations share a version number")
    return found


async def migrate(db: Database, sql_dir: Path) -> list[str]:
    """Apply what is missing; returns the names applied. Safe to run twice, or twice at once."""
    applied_now = []
    async with db.session() as session:
        await session.fetch_one("migrations.lock")
        try:
            await session.execute("migrations.create_table")
            done = {row["version"] for row in await session.fetch_all("migrations.applied")}
            for version, name, path in migration_files(sql_dir):
                if version in done:
                    continue
                async with session.transaction():
                    await session.execute_script(path.read_text(encoding="utf-8"))
                    await session.execute("migrations.record", {"version": version, "name": name})
                log.info("applied migration %04d_%s", version, name)
                applied_now.append(f"{version:04d}_{name}")
        finally:
            await session.fetch_one("migrations.unlock")
    return applied_now


async def pending_migrations(db: Database, sql_dir: Path) -> list[str]:
    """Names of migrations the database does not have yet."""
    async with db.session() as session:
        done: set[int] = set()
        if (await session.fetch_one("migrations.table_exists"))["exists"]:
            done = {row["version"] for row in await session.fetch_all("migrations.applied")}
    return [f"{v:04d}_{n}" for v, n, _ in migration_files(sql_dir) if v not in done]
