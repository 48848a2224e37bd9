"""Accounts: slow salted password hashes, and 40-hex tokens stored only as SHA-256 digests."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets

from server.db import Database
from server.errors import Conflict

# scrypt: memory-hard and in the standard library; about 50 ms a hash here.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
UNUSABLE_PASSWORD = "!"


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    username: str
    is_active: bool


class UserError(Exception):
    """A CLI-facing account problem, with a one-line message."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encode = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt),
                               n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def new_token() -> str:
    """40 lowercase hex characters, like DRF's authtoken keys."""
    return secrets.token_hex(20)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


async def create_user(db: Database, username: str, password: str | None) -> User:
    stored = UNUSABLE_PASSWORD if password is None else hash_password(password)
    try:
        row = await db.fetch_one("users.create", {"username": username, "password": stored})
    except Conflict:
        raise UserError(f"user {username!r} already exists") from None
    assert row is not None
    return User(**row)


async def issue_token(db: Database, username: str) -> str:
    """A new token for the user, revoking the old one; returns the key (never stored)."""
    async with db.session() as session:
        row = await session.fetch_one("users.by_username", {"username": username})
        if row is None:
            raise UserError(f"no user {username!r}")
        token = new_token()
        await session.execute("users.set_token", {"user_id": row["id"], "digest": token_digest(token)})
    return token


async def user_for_token(db: Database, token: str) -> User | None:
    """The token's user (active or not), or None; the digest is compared in constant time."""
    digest = token_digest(token)
    row = await db.fetch_one("users.by_token_digest", {"digest": digest})
    if row is None or not hmac.compare_digest(bytes(row.pop("digest")), digest):
        return None
    return User(**row)
