"""Who is asking: a token (query string or Authorization header) or a login session cookie."""
from __future__ import annotations

import dataclasses
import time

from aiohttp import web

from server.accounts.secret import digest
from server.accounts.sessions import session_key, user_for_session
from server.accounts.users import TOKEN_SHAPE, User, user_for_token
from server.errors import Forbidden, Unauthorized
from server.store.db import Database


@dataclasses.dataclass(frozen=True)
class Principal:
    """An authenticated user, and the credential to re-check while a socket stays open."""

    user: User
    credential: bytes  # SHA-256 digest of the token or of the session key
    via: str           # "token" or "session"


def token_from_request(request: web.Request, query_token: bool) -> str | None:
    """The token a client sent, if any; raises 401 for a malformed header."""
    if query_token and request.query.get("token"):
        return request.query["token"]
    header = request.headers.get("Authorization")
    if not header:
        return None
    parts = header.split()
    if not parts or parts[0].lower() not in ("token", "bearer"):
        return None
    if len(parts) == 1:
        raise Unauthorized("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise Unauthorized("Invalid token header. Token string should not contain spaces.")
    if not parts[1].isascii() and not _utf8(parts[1]):
        raise Unauthorized("Invalid token header. Token string should not contain invalid characters.")
    return parts[1]


def _utf8(text: str) -> bool:
    """Whether a header value was UTF-8 on the wire (aiohttp keeps other bytes as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def same_origin(request: web.Request, origin: str) -> bool:
    """The page was served by this very server: the Origin names the host the browser asked for.

    A foreign page cannot fake that: its visitor's browser sets Origin to the foreign site and Host
    to ours. https is accepted besides the socket's own scheme, because a TLS-terminating proxy in
    front of the server makes the browser's https look like plain http here."""
    host = request.headers.get("Host")
    if not host:
        return False
    return origin.lower() in {f"{request.scheme}://{host}".lower(), f"https://{host}".lower()}


def check_origin(request: web.Request, allowed_origins: tuple[str, ...]) -> None:
    """A browser request from a page we trust: no Origin (curl, native apps), our own page, or a
    listed one. Else DRF's CSRF 403: a cookie sent by a foreign page must not act for its owner."""
    origin = request.headers.get("Origin")
    if origin is None or origin.rstrip("/") in allowed_origins or same_origin(request, origin.rstrip("/")):
        return
    raise Forbidden(f"CSRF Failed: Origin checking failed - {origin} does not match any trusted origins.")


class TokenCache:
    """Token digest → its principal, so that a handshake skips the database round trip.

    Only good tokens of active users are kept (so at most one entry per user). Its owner drops a
    user's entries when the credentials notification names the user, and all of them when it may
    have missed one (None); `max_age` is the safety net. A lookup that a drop overtook is not kept:
    it may have read the row from before the change."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self.generation = 0  # bumped by every drop
        self._principals: dict[bytes, tuple[Principal, float]] = {}

    def get(self, key: bytes) -> Principal | None:
        # A dict lookup by SHA-256 digest: its timing tells nothing usable about stored tokens.
        entry = self._principals.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, principal: Principal, generation: int) -> None:
        """Keep a lookup that started at `generation`, unless a drop happened meanwhile."""
        if generation == self.generation:
            self._principals[principal.credential] = (principal, time.monotonic() + self.max_age)

    def forget(self, users: frozenset[int] | None) -> None:
        """These users' credentials changed (None: anyone's may have)."""
        self.generation += 1
        if users is None:
            self._principals.clear()
            return
        for key in [key for key, (principal, _) in self._principals.items() if principal.user.id in users]:
            del self._principals[key]


async def _by_token(db: Database, token: str, tokens: TokenCache | None) -> Principal:
    if not TOKEN_SHAPE.fullmatch(token):
        raise Unauthorized("Invalid token.")
    key = digest(token)
    if tokens is not None:
        principal = tokens.get(key)
        if principal is not None:
            return principal
        generation = tokens.generation
    user = await user_for_token(db, token)
    if user is None:
        raise Unauthorized("Invalid token.")
    if not user.is_active:
        raise Unauthorized("User inactive or deleted.")
    principal = Principal(user, key, "token")
    if tokens is not None:
        tokens.put(principal, generation)
    return principal


async def _by_session(request: web.Request, db: Database, allowed_origins: tuple[str, ...] | None) -> Principal:
    key = await session_key(request)
    if key is None:
        raise Unauthorized()
    if allowed_origins is not None:
        check_origin(request, allowed_origins)
    user = await user_for_session(db, key)
    if user is None or not user.is_active:  # ended, expired or disabled: as if no cookie
        raise Unauthorized()
    return Principal(user, digest(key), "session")


async def authenticate(request: web.Request, db: Database, *, query_token: bool = False,
                       origins: tuple[str, ...] | None = None, tokens: TokenCache | None = None) -> Principal:
    """The active user behind the request, or Unauthorized (401) with DRF's detail text.

    The token wins when one is sent (a bad token is a 401 even with a good cookie, as in DRF).
    With `origins` given, a session cookie counts only from those origins (or none): 403.
    With `tokens`, a token is looked up there first (the /ws/ handshake)."""
    token = token_from_request(request, query_token)
    if token is not None:
        return await _by_token(db, token, tokens)
    return await _by_session(request, db, origins)
