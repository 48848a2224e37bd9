"""The dashboard-server command: migrate, createuser, token, serve."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import re
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from aiohttp import web

from server.config import Config, load_config
from server.db import Database, DatabaseUnavailable, open_database
from server.migrate import migrate, pending_migrations
from server.sql import load_queries
from server.users import UserError, create_user, issue_token
from server.workers import run_workers

USERNAME = re.compile(r"[\w.@+-]{1,150}")


class CommandError(Exception):
    """A one-line reason the command failed."""


@contextlib.contextmanager
def database_url(config: Config) -> Iterator[str]:
    """The configured database, or the embedded one (stopped again if we started it)."""
    if config.database_url:
        yield config.database_url
        return
    from server.embedded import EmbeddedError, start_embedded

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
    if args.password_stdin:
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


def cmd_migrate(config: Config, args: argparse.Namespace) -> None:
    applied = with_database(config, lambda db: migrate(db, config.sql_dir))
    print(f"applied {', '.join(applied)}" if applied else "database is up to date")


def cmd_createuser(config: Config, args: argparse.Namespace) -> None:
    if not USERNAME.fullmatch(args.name):
        raise CommandError("a username is 1-150 letters, digits and @.+-_")
    password = read_password(args)
    user = with_database(config, lambda db: create_user(db, args.name, password))
    print(f"created user {user.username}", file=sys.stderr)


def cmd_token(config: Config, args: argparse.Namespace) -> None:
    print(with_database(config, lambda db: issue_token(db, args.name)))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (it serves more requests per CPU second: docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def cmd_serve(config: Config, args: argparse.Namespace) -> None:
    from server.app import AccessLogger, configure_logging, create_app

    configure_logging()
    with database_url(config) as url:
        pending = run_with_database(url, config, lambda db: pending_migrations(db, config.sql_dir))
        if pending:
            raise CommandError(f"the database needs migrating ({', '.join(pending)}): run 'dashboard-server migrate'")
        host, port = args.host or config.host, args.port or config.port
        print(f"dashboard-server: serving ws://{host}:{port}/ws/", file=sys.stderr, flush=True)

        def serve(reuse_port: bool | None = None) -> None:
            web.run_app(create_app(config, url), host=host, port=port, access_log_class=AccessLogger,
                        shutdown_timeout=10, print=None, loop=new_event_loop(), reuse_port=reuse_port)

        if args.workers > 1:
            if run_workers(lambda: serve(reuse_port=True), args.workers):
                raise CommandError("a worker process exited unexpectedly; see the log above")
        else:
            serve()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dashboard-server", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    create = commands.add_parser("createuser", help="create a user")
    create.add_argument("name")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.set_defaults(run=cmd_createuser)
    token = commands.add_parser("token", help="issue a new token for a user (revokes the old) and print it")
    token.add_argument("name")
    token.set_defaults(run=cmd_token)
    serve = commands.add_parser("serve", help="serve /ws/")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port (SO_REUSEPORT, Linux); default 1")
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        args.run(config, args)
    except (CommandError, UserError, DatabaseUnavailable, ValueError, OSError) as exc:
        print(f"dashboard-server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
