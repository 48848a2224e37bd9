"""The dashboard-server command: migrate, accounts (createuser, token, passwd, deactivate, users), import-django, serve, history."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import logging
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from schemas.fields import MAX_BIGINT, parse_integer
from server.accounts.secret import Sealer, SecretError, load_secret
from server.accounts.users import (
    DEFAULT_ROLE,
    ROLES,
    USERNAME,
    UserError,
    create_user,
    deactivate,
    issue_token,
    list_users,
    set_password,
)
from server.config import Config, ConfigError, load_config
from server.errors import ApiError
from server.store.db import Database, DatabaseUnavailable, DriverError, open_database
from server.store.migrate import migrate, pending_migrations
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


def cmd_migrate(config: Config, args: argparse.Namespace) -> None:
    applied = with_database(config, lambda db: migrate(db, config.sql_dir))
    print(f"applied {', '.join(applied)}" if applied else "database is up to date")


def cmd_createuser(config: Config, args: argparse.Namespace) -> None:
    if not USERNAME.fullmatch(args.name):
        raise CommandError("a username is 1-150 letters, digits and @.+-_")
    password = read_password(args)
    user = with_database(config, lambda db: create_user(db, args.name, password, args.role))
    print(f"created user {user.username} ({user.role})", file=sys.stderr)


def cmd_token(config: Config, args: argparse.Namespace) -> None:
    sealer = Sealer(load_secret(config))
    print(with_database(config, lambda db: issue_token(db, args.name, sealer)))


def cmd_passwd(config: Config, args: argparse.Namespace) -> None:
    password = read_password(args)
    if password is None:
        raise CommandError("no password given: use --password-stdin or a terminal")
    with_database(config, lambda db: set_password(db, args.name, password))
    print(f"password changed for {args.name}; its login sessions ended", file=sys.stderr)


def cmd_deactivate(config: Config, args: argparse.Namespace) -> None:
    with_database(config, lambda db: deactivate(db, args.name))
    print(f"deactivated {args.name}: token revoked, sessions ended, open sockets close within "
          f"{config.credential_check_seconds:g} s", file=sys.stderr)


def cmd_users(config: Config, args: argparse.Namespace) -> None:
    rows = with_database(config, list_users)
    print("username\trole\tactive\tpassword\ttoken\tcreated")
    for row in rows:
        flags = ["yes" if row[key] else "no" for key in ("is_active", "has_password", "has_token")]
        print("\t".join([row["username"], row["role"], *flags, row["created_at"].strftime("%Y-%m-%d")]))


def cmd_import_django(config: Config, args: argparse.Namespace) -> None:
    from server.accounts.django_import import import_django

    sealer = Sealer(load_secret(config))

    async def work(db: Database) -> list[str]:
        try:
            source = await open_database(args.source, db.queries, minsize=1, maxsize=1,
                                         timeout=config.db_timeout_seconds)
        except DatabaseUnavailable as exc:
            raise CommandError(f"Django {exc}") from None
        try:
            with refusals_as_errors("import failed, nothing was changed"):
                return (await import_django(db, source, sealer, args.patients_table)).lines()
        finally:
            await source.close()

    for line in with_database(config, work):
        print(line)


def cmd_serve(config: Config, args: argparse.Namespace) -> None:
    from server.ops.logs import configure_logging
    from server.ops.serving import ServeSpec
    from server.ops.tls import tls_context
    from server.ops.workers import cpu_count, serve_processes

    flags = {"workers": args.workers, "log_format": args.log_format, "host": args.host, "port": args.port}
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        config = dataclasses.replace(config, **given)
    except ConfigError as exc:  # a flag's value, refused as a file's or a variable's would be
        raise ConfigError(exc.name, exc.value, exc.reason, f"--{exc.name.replace('_', '-')}") from None
    configure_logging(config.log_format)
    with database_url(config) as url:
        pending = run_with_database(url, config, lambda db: pending_migrations(db, config.sql_dir))
        if pending:
            raise CommandError(f"the database needs migrating ({', '.join(pending)}): run 'dashboard-server migrate'")
        load_secret(config)  # a bad or unwritable secret fails here, once, not in every worker
        host, port = config.host, config.port
        tls = tls_context(config)  # server/ops/tls.py: checked here once; each worker builds its own
        print(f"dashboard-server: serving {'wss' if tls else 'ws'}://{host}:{port}/ws/", file=sys.stderr, flush=True)
        spec = ServeSpec(dataclasses.replace(config, database_url=url), host, port)
        if serve_processes(spec, config.workers or cpu_count(), config.log_format):
            raise CommandError("a worker exited unexpectedly (see the log above); stopped")


def cmd_history(config: Config, args: argparse.Namespace) -> None:
    from server.live.history import object_history
    from server.resources import RESOURCES

    resource = next((declared for declared in RESOURCES if declared.name == args.resource), None)
    if resource is None:
        known = ", ".join(declared.name for declared in RESOURCES)
        raise CommandError(f"unknown resource {args.resource!r}; known: {known}")
    pk = parse_integer(args.pk, signed=False)
    if pk is None or not 0 < pk <= MAX_BIGINT:
        raise CommandError(f"not an id: {args.pk!r}")
    for line in with_database(config, lambda db: object_history(db, resource, pk)):
        print(line)


def tls_arguments(args: argparse.Namespace) -> dict[str, Path]:
    """--certfile/--keyfile given on the command line win over the configuration."""
    return {name: getattr(args, name) for name in ("certfile", "keyfile") if getattr(args, name, None)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dashboard-server", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    _add_account_commands(commands)
    django = commands.add_parser("import-django", help="import users, tokens and patients from the old Django stack")
    django.add_argument("--from", dest="source", required=True, metavar="URL",
                        help="libpq URL of the Django database, e.g. postgresql://user@host/dbname")
    django.add_argument("--patients-table", default="patients_patient", help="default: %(default)s")
    django.set_defaults(run=cmd_import_django)
    serve = commands.add_parser("serve", help="serve /ws/ and /api/")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="processes sharing the port (default: one per CPU)")
    serve.add_argument("--log-format", choices=("plain", "json"), help="log lines as text or JSON objects")
    serve.add_argument("--certfile", type=Path, help="PEM certificate (chain): serve https:// and wss://")
    serve.add_argument("--keyfile", type=Path, help="PEM private key of --certfile")
    serve.set_defaults(run=cmd_serve)
    history = commands.add_parser("history", help="print an object's recorded changes: when, who, what")
    history.add_argument("resource", help="a stream name, e.g. patients")
    history.add_argument("pk", help="the object's id")
    history.set_defaults(run=cmd_history)
    return parser


def _add_account_commands(commands: Any) -> None:
    create = commands.add_parser("createuser", help="create a user")
    create.add_argument("name")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.add_argument("--role", choices=ROLES, default=DEFAULT_ROLE,
                        help=f"viewer: list, retrieve, subscribe; editor: everything (default {DEFAULT_ROLE})")
    create.set_defaults(run=cmd_createuser)
    token = commands.add_parser("token", help="issue a new token for a user (revokes the old) and print it")
    token.add_argument("name")
    token.set_defaults(run=cmd_token)
    passwd = commands.add_parser("passwd", help="set a user's password (ends its login sessions)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    passwd.set_defaults(run=cmd_passwd)
    off = commands.add_parser("deactivate", help="disable a user: token and sessions at once, sockets within a minute")
    off.add_argument("name")
    off.set_defaults(run=cmd_deactivate)
    commands.add_parser("users", help="list the users").set_defaults(run=cmd_users)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        config = dataclasses.replace(config, **tls_arguments(args))
        args.run(config, args)
    except (CommandError, UserError, DatabaseUnavailable, SecretError, ValueError, OSError) as exc:
        print(f"dashboard-server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
