"""Accounts: roles, passwords, and 40-hex tokens stored as SHA-256 digests (plus a sealed copy)."""
from __future__ import annotations

import asyncio
import dataclasses
import hmac
import re
import secrets
from typing import Any

from server.accounts.passwords import (
    UNUSABLE_PASSWORD,
    check_password,
    dummy_hash,
    hash_password,
    is_usable,
    needs_upgrade,
)
from server.accounts.secret import Sealer, digest
from server.errors import Conflict
from server.store.db import Database

ROLES = ("viewer", "editor")
USERNAME = re.compile(r"[\w.@+-]{1,150}")  # Django's username rule, so imported names fit
DEFAULT_ROLE = "editor"  # the first user scripts/run makes must be able to write
TOKEN_SHAPE = re.compile(r"[0-9a-f]{40}")  # DRF's authtoken keys


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    username: str
    is_active: bool
    role: str = DEFAULT_ROLE


class UserError(Exception):
    """A CLI-facing account problem, with a one-line message."""


def new_token() -> str:
    """40 lowercase hex characters, like DRF's authtoken keys."""
    return secrets.token_hex(20)


def _user(row: dict[str, Any]) -> User:
    return User(id=row["id"], username=row["username"], is_active=row["is_active"], role=row["role"])


async def create_user(db: Database, username: str, password: str | None, role: str = DEFAULT_ROLE) -> User:
    stored = UNUSABLE_PASSWORD if password is None else hash_password(password)
    try:
        row = await db.fetch_one("users.create", {"username": username, "password": stored, "role": role})
    except Conflict:
        raise UserError(f"user {username!r} already exists") from None
    assert row is not None
    return _user(row)


async def _existing(db: Database, username: str) -> dict[str, Any]:
    row = await db.fetch_one("users.by_username", {"username": username})
    if row is None:
        raise UserError(f"no user {username!r}")
    return row


async def issue_token(db: Database, username: str, sealer: Sealer) -> str:
    """A new token for the user, revoking the old one; returns the key."""
    row = await _existing(db, username)
    return await _replace_token(db, row["id"], sealer)


async def _replace_token(db: Database, user_id: int, sealer: Sealer) -> str:
    token = new_token()
    await db.execute("users.set_token", {"user_id": user_id, "digest": digest(token),
                                         "sealed": sealer.seal(token)})
    return token


async def obtain_token(db: Database, user: User, sealer: Sealer) -> str:
    """DRF's get_or_create: the user's current key when it can be unsealed, else a new one."""
    row = await db.fetch_one("users.token_of", {"user_id": user.id})
    if row is not None:
        key = sealer.unseal(row["sealed"])
        if key is not None and hmac.compare_digest(digest(key), bytes(row["digest"])):
            return key
    return await _replace_token(db, user.id, sealer)


async def user_for_token(db: Database, token: str) -> User | None:
    """The token's user (active or not), or None; the digest is compared in constant time."""
    wanted = digest(token)
    row = await db.fetch_one("users.by_token_digest", {"digest": wanted})
    if row is None or not hmac.compare_digest(bytes(row["digest"]), wanted):
        return None
    return _user(row)


@dataclasses.dataclass(frozen=True)
class Login:
    """A login attempt's result: the user when it succeeded, else why not (sql/migrations/0006_accounts.sql)."""
    user: User | None
    outcome: str  # success, unknown user, wrong password, inactive, no password
    known: bool   # the username names a user (only then may it be logged or stored)


async def verify_login(db: Database, username: str, password: str) -> Login:
    """Check a username and password; the user only when it is active and the password matches.

    Hashing runs in a thread: an imported 1,000,000-round pbkdf2 hash takes most of a
    second, which must not stall every open socket. A correct imported hash is upgraded."""
    row = await db.fetch_one("users.by_username", {"username": username})
    stored = row["password"] if row is not None and is_usable(row["password"]) else None
    matches = await asyncio.to_thread(check_password, password, stored or dummy_hash())
    if row is None or stored is None or not matches or not row["is_active"]:
        why = ("unknown user" if row is None else "no password" if stored is None
               else "wrong password" if not matches else "inactive")
        return Login(None, why, row is not None)
    if needs_upgrade(stored):
        upgraded = await asyncio.to_thread(hash_password, password)
        await db.execute("users.upgrade_password",
                           {"user_id": row["id"], "password": upgraded, "old": stored})
    return Login(_user(row), "success", True)


async def record_login(db: Database, username: str | None, address: str | None, outcome: str,
                       retain_seconds: float) -> None:
    """The audit row of one attempt; username None when it names no user."""
    await db.execute("users.record_login", {"username": username, "address": address, "outcome": outcome,
                                            "retain_seconds": retain_seconds})


async def set_password(db: Database, username: str, password: str) -> None:
    """A new password; every login session of the user ends (the token stays)."""
    row = await _existing(db, username)
    await db.execute("users.set_password", {"user_id": row["id"], "password": hash_password(password)})


async def _by_name(db: Database, query: str, username: str, **params: Any) -> None:
    if await db.fetch_one(query, {"username": username, **params}) is None:
        raise UserError(f"no user {username!r}")


async def deactivate(db: Database, username: str) -> None:
    """Disable the account; its token and sessions stop working at once."""
    await _by_name(db, "users.deactivate", username)


async def reactivate(db: Database, username: str) -> None:
    """Enable the account again; it needs a new token or a login (the old ones were revoked)."""
    await _by_name(db, "users.reactivate", username)


async def set_role(db: Database, username: str, role: str) -> None:
    """A new role; open sockets keep the old one until their next credential check."""
    await _by_name(db, "users.set_role", username, role=role)


async def delete_user(db: Database, username: str) -> None:
    """The account, its token and its sessions go; `history` keeps its name."""
    await _by_name(db, "users.delete", username)


async def list_users(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all("users.all")


async def recent_logins(db: Database, username: str | None, limit: int) -> list[dict[str, Any]]:
    return await db.fetch_all("users.recent_logins", {"username": username, "limit": limit})
