"""The dashboard-server command: migrate, the account commands (accounts_cli.py), import-django, serve, history, backup, restore."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from schemas.fields import MAX_BIGINT, parse_integer
from server.accounts.secret import Sealer, SecretError, load_secret
from server.accounts.users import UserError
from server.config import Config, ConfigError, load_config
from server.ops.accounts_cli import add_account_commands
from server.ops.commands import (
    CommandError,
    database_url,
    refusals_as_errors,
    run_with_database,
    with_database,
)
from server.store.db import Database, DatabaseUnavailable, open_database
from server.store.migrate import migrate, pending_migrations


def cmd_migrate(config: Config, args: argparse.Namespace) -> None:
    applied = with_database(config, lambda db: migrate(db, config.sql_dir))
    print(f"applied {', '.join(applied)}" if applied else "database is up to date")


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
        tls_context(config)  # server/ops/tls.py: checked here once; each worker builds its own
        spec = ServeSpec(dataclasses.replace(config, database_url=url), config.host, config.port)
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
    lines = with_database(config, lambda db: object_history(db, resource, pk))
    if not lines:  # a typo'd id must not look like an object nobody touched
        raise CommandError(f"no recorded changes of {resource.name} {pk}: no such object, or its changes are "
                           f"older than the audit retention ({config.audit_retain_seconds / 86400:g} days)")
    for line in lines:
        print(line)


def cmd_backup(config: Config, args: argparse.Namespace) -> None:
    from server.ops.backup import backup

    with database_url(config) as url:
        size = backup(url, args.file.resolve())
    print(f"backed up the database to {args.file} ({size} bytes); keep the server secret with it "
          f"(DASHBOARD_SESSION_KEY, or {config.data_dir / 'session.key'}): tokens and sessions need it",
          file=sys.stderr)


def cmd_restore(config: Config, args: argparse.Namespace) -> None:
    from server.ops.backup import restore

    with database_url(config) as url:
        restore(url, config, args.file.resolve())
    print(f"restored {args.file}; cursors issued before it expire (clients list again)", file=sys.stderr)


def tls_arguments(args: argparse.Namespace) -> dict[str, Path]:
    """--certfile/--keyfile given on the command line win over the configuration."""
    return {name: getattr(args, name) for name in ("certfile", "keyfile") if getattr(args, name, None)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dashboard-server", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    add_account_commands(commands)
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
    backup = commands.add_parser("backup", help="write a consistent copy of the database to FILE (while serving)")
    backup.add_argument("file", type=Path)
    backup.set_defaults(run=cmd_backup)
    restore = commands.add_parser("restore", help="load a backup into an empty database (a fresh data directory)")
    restore.add_argument("file", type=Path)
    restore.set_defaults(run=cmd_restore)
    return parser


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
