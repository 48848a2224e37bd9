"""Test databases: a migrated template cloned per test, on embedded or external PostgreSQL."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from server.config import PROJECT_DIR
from server.store.db import open_database
from server.store.migrate import migrate
from server.store.queries import load_queries

SQL_DIR = PROJECT_DIR / "sql"


def with_database_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin(url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    connection = psycopg2.connect(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


async def migrate_url(url: str) -> None:
    db = await open_database(url, load_queries(SQL_DIR), minsize=1, maxsize=1)
    try:
        await migrate(db, SQL_DIR)
    finally:
        await db.close()


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """DASHBOARD_DATABASE_URL when set, else an embedded PostgreSQL in a fresh temporary directory."""
    if os.environ.get("DASHBOARD_DATABASE_URL"):
        yield os.environ["DASHBOARD_DATABASE_URL"]
        return
    from server.store.embedded import start_embedded

    # 0755 and under /tmp, so that as root the cluster lives right here, not in /var/lib.
    base = Path(tempfile.mkdtemp(prefix="dashboard-test-"))
    base.chmod(0o755)
    embedded = start_embedded(base / "var")
    try:
        yield embedded.url
    finally:
        embedded.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def template_database(server: str) -> Iterator[str]:
    """A migrated database to clone; its name is unique so parallel runs never collide."""
    name = f"dashboard_tpl_{uuid.uuid4().hex[:12]}"
    admin(server, f'CREATE DATABASE "{name}"')
    try:
        asyncio.run(migrate_url(with_database_name(server, name)))
        yield name
    finally:
        admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def cloned_database(server: str, template: str) -> Iterator[str]:
    name = f"dashboard_t_{uuid.uuid4().hex[:12]}"
    admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield with_database_name(server, name)
    finally:
        admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")
