"""Account commands: createuser, token, passwd, role, deactivate, reactivate, deleteuser, users, logins."""
from __future__ import annotations

import argparse
import sys
from datetime import timezone
from typing import Any

from server.accounts.passwords import password_problems
from server.accounts.secret import Sealer, load_secret
from server.accounts.users import (
    DEFAULT_ROLE,
    ROLES,
    USERNAME,
    create_user,
    deactivate,
    delete_user,
    issue_token,
    list_users,
    reactivate,
    recent_logins,
    set_password,
    set_role,
)
from server.config import Config
from server.ops.commands import CommandError, read_password, with_database


def new_password(args: argparse.Namespace) -> str | None:
    """The password read for args.name, refused with every message of the policy it breaks."""
    password = read_password(args)
    problems = [] if password is None else password_problems(password, args.name)
    if problems:
        raise CommandError(" ".join(problems))
    return password


def cmd_createuser(config: Config, args: argparse.Namespace) -> None:
    if not USERNAME.fullmatch(args.name):
        raise CommandError("a username is 1-150 letters, digits and @.+-_")
    password = new_password(args)
    user = with_database(config, lambda db: create_user(db, args.name, password, args.role))
    print(f"created user {user.username} ({user.role})", file=sys.stderr)


def cmd_token(config: Config, args: argparse.Namespace) -> None:
    sealer = Sealer(load_secret(config))
    print(with_database(config, lambda db: issue_token(db, args.name, sealer)))


def cmd_passwd(config: Config, args: argparse.Namespace) -> None:
    password = new_password(args)
    if password is None:
        raise CommandError("no password given: use --password-stdin or a terminal")
    with_database(config, lambda db: set_password(db, args.name, password))
    print(f"password changed for {args.name}; its login sessions ended", file=sys.stderr)


def cmd_role(config: Config, args: argparse.Namespace) -> None:
    with_database(config, lambda db: set_role(db, args.name, args.role))
    print(f"{args.name} is now a{'n' if args.role[0] in 'aeiou' else ''} {args.role}; its open sockets "
          "close now and reconnect with it", file=sys.stderr)


def cmd_deactivate(config: Config, args: argparse.Namespace) -> None:
    with_database(config, lambda db: deactivate(db, args.name))
    print(f"deactivated {args.name}: token revoked, sessions ended, open sockets close at once", file=sys.stderr)


def cmd_reactivate(config: Config, args: argparse.Namespace) -> None:
    with_database(config, lambda db: reactivate(db, args.name))
    print(f"reactivated {args.name}: it may log in again; its old token stays revoked "
          f"(dashboard-server token {args.name} issues a new one)", file=sys.stderr)


def cmd_deleteuser(config: Config, args: argparse.Namespace) -> None:
    if not args.yes:
        raise CommandError(f"deleting {args.name} cannot be undone: add --yes (deactivate keeps the account)")
    with_database(config, lambda db: delete_user(db, args.name))
    print(f"deleted {args.name}: its token and sessions are gone; history still names it", file=sys.stderr)


def cmd_users(config: Config, args: argparse.Namespace) -> None:
    rows = with_database(config, list_users)
    print("username\trole\tactive\tpassword\ttoken\tcreated")
    for row in rows:
        flags = ["yes" if row[key] else "no" for key in ("is_active", "has_password", "has_token")]
        print("\t".join([row["username"], row["role"], *flags, row["created_at"].strftime("%Y-%m-%d")]))


def cmd_logins(config: Config, args: argparse.Namespace) -> None:
    rows = with_database(config, lambda db: recent_logins(db, args.user, args.limit))
    print("at\tusername\taddress\toutcome")
    for row in rows:
        at = row["at"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        print("\t".join([at, row["username"] or "-", row["address"] or "-", row["outcome"]]))


def add_account_commands(commands: Any) -> None:
    create = commands.add_parser("createuser", help="create a user")
    create.add_argument("name")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.add_argument("--role", choices=ROLES, default=DEFAULT_ROLE,
                        help=f"viewer: list, retrieve, subscribe; editor: everything (default {DEFAULT_ROLE})")
    create.set_defaults(run=cmd_createuser)
    _named(commands, "token", cmd_token, "issue a new token for a user (revokes the old) and print it")
    passwd = _named(commands, "passwd", cmd_passwd, "set a user's password (ends its login sessions)")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    role = _named(commands, "role", cmd_role, "change a user's role (its open sockets reconnect with it)")
    role.add_argument("role", choices=ROLES)
    _named(commands, "deactivate", cmd_deactivate,
           "disable a user: its token, sessions and open sockets end at once")
    _named(commands, "reactivate", cmd_reactivate, "enable a deactivated user again")
    delete = _named(commands, "deleteuser", cmd_deleteuser,
                    "delete a user, its token and sessions (history keeps its name)")
    delete.add_argument("--yes", action="store_true", help="really delete")
    commands.add_parser("users", help="list the users").set_defaults(run=cmd_users)
    logins = commands.add_parser("logins", help="recent login attempts: when, who, from where, outcome")
    logins.add_argument("--user", help="only this user's")
    logins.add_argument("--limit", type=int, default=50, help="newest first, at most this many (default %(default)s)")
    logins.set_defaults(run=cmd_logins)


def _named(commands: Any, name: str, run: Any, help: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help)
    parser.add_argument("name")
    parser.set_defaults(run=run)
    return parser
