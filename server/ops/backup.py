"""`dashboard-server backup FILE` and `restore FILE`: pg_dump / pg_restore (pgserver's binaries) of the whole database."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from server.config import Config
from server.ops.commands import CommandError, run_with_database
from server.store.db import Database
from server.store.pginstall import EmbeddedError, pgserver_install

TIMEOUT_SECONDS = 3600  # a large database takes a while; a hung one must still end


def pg_tool(name: str, *args: str) -> None:
    """Run pgserver's `name` (the embedded server's own binaries: no client to install, and new enough
    for any PostgreSQL 13+); CommandError with its last line when it fails."""
    try:
        install, libs = pgserver_install()
    except EmbeddedError as exc:
        raise CommandError(str(exc)) from None
    # Inherited PG* variables (PGDATABASE, PGHOST, ...) would silently change what the tools do.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LD_LIBRARY_PATH"] = str(libs)
    try:
        done = subprocess.run([str(install / "bin" / name), *args], capture_output=True, text=True, env=env,
                              timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise CommandError(f"{name} did not finish within {TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise CommandError(f"{name} failed: {lines[-1].removeprefix(f'{name}: ')}")


def backup(url: str, file: Path) -> int:
    """One consistent snapshot of the database (pg_dump's, taken while serving), written beside `file`
    first and renamed, so a failed backup never leaves a truncated file under its name; its size."""
    partial = file.with_name(f".{file.name}.partial")
    try:
        pg_tool("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", f"--dbname={url}")
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)
    return file.stat().st_size


def restore(url: str, config: Config, file: Path) -> None:
    """Into a database with no tables yet (a fresh data directory, or an empty external database)."""
    if not file.is_file():
        raise CommandError(f"no backup file {file}")

    async def tables(db: Database) -> int:
        return (await db.fetch_one("migrations.public_tables"))["count"]

    if run_with_database(url, config, tables):
        raise CommandError("the database is not empty: restore into a fresh data directory "
                           "(DASHBOARD_DATA_DIR) or an empty database")
    pg_tool("pg_restore", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
            f"--dbname={url}", str(file))

    async def settle(db: Database) -> None:
        await db.execute("changes.restored")

    run_with_database(url, config, settle)
