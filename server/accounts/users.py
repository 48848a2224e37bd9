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


async def verify_login(db: Database, username: str, password: str) -> User | None:
    """The active user with this password, or None (unknown, wrong, inactive, no password).

    Hashing runs in a thread: an imported 1,000,000-round pbkdf2 hash takes most of a
    second, which must not stall every open socket. A correct imported hash is upgraded."""
    row = await db.fetch_one("users.by_username", {"username": username})
    stored = row["password"] if row is not None and is_usable(row["password"]) else None
    matches = await asyncio.to_thread(check_password, password, stored or dummy_hash())
    if row is None or stored is None or not matches or not row["is_active"]:
        return None
    if needs_upgrade(stored):
        upgraded = await asyncio.to_thread(hash_password, password)
        await db.execute("users.upgrade_password",
                           {"user_id": row["id"], "password": upgraded, "old": stored})
    return _user(row)


async def set_password(db: Database, username: str, password: str) -> None:
    """A new password; every login session of the user ends (the token stays)."""
    row = await _existing(db, username)
    await db.execute("users.set_password", {"user_id": row["id"], "password": hash_password(password)})


async def deactivate(db: Database, username: str) -> None:
    """Disable the account; its token and sessions stop working at once."""
    if await db.fetch_one("users.deactivate", {"username": username}) is None:
        raise UserError(f"no user {username!r}")


async def list_users(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all("users.all")
