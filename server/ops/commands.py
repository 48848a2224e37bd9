"""What every command shares: its one-line error, and a database (the configured or the embedded one)."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys
from typing import Any, Awaitable, Callable, Iterator

from server.config import Config
from server.errors import ApiError
from server.store.db import Database, DriverError, open_database
from server.store.queries import load_queries


class CommandError(Exception):
    """A one-line reason the command failed."""


@contextlib.contextmanager
def refusals_as_errors(what: str) -> Iterator[None]:
    """Any refusal of the database inside the block (a driver error, or the server error it was
    mapped to) becomes a CommandError: `what`, then the first line of the database's reason."""
    try:
        yield
    except (DriverError, ApiError) as exc:
        cause = exc.__cause__ if isinstance(exc, ApiError) and exc.__cause__ else exc
        lines = str(cause).strip().splitlines()
        raise CommandError(f"{what}: {lines[0] if lines else type(cause).__name__}") from exc


@contextlib.contextmanager
def database_url(config: Config) -> Iterator[str]:
    """The configured database, or the embedded one (stopped again if we started it)."""
    if config.database_url:
        yield config.database_url
        return
    from server.store.embedded import EmbeddedError, start_embedded

    try:
        embedded = start_embedded(config.data_dir.resolve())
    except EmbeddedError as exc:
        raise CommandError(f"embedded database: {exc}") from None
    try:
        yield embedded.url
    finally:
        if embedded.started_here:
            embedded.stop()


def run_with_database(url: str, config: Config, work: Callable[[Database], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        db = await open_database(url, load_queries(config.sql_dir), minsize=1, maxsize=2,
                                 timeout=config.db_timeout_seconds)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def with_database(config: Config, work: Callable[[Database], Awaitable[Any]]) -> Any:
    with database_url(config) as url:
        return run_with_database(url, config, work)


def read_password(args: argparse.Namespace) -> str | None:
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("the passwords differ")
    else:
        return None  # a token-only account
    if not password:
        raise CommandError("the password may not be blank")
    return password
