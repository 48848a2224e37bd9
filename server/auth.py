"""Who is asking: a token (query string or Authorization header) or a login session cookie."""
from __future__ import annotations

import dataclasses
import re

from aiohttp import web

from server.db import Database
from server.errors import Unavailable
from server.httpjson import detail_error
from server.sessions import session_digest, session_key, user_for_session
from server.users import User, token_digest, user_for_token

TOKEN_SHAPE = re.compile(r"[0-9a-f]{40}")
NOT_PROVIDED = "Authentication credentials were not provided."


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
        raise detail_error(web.HTTPUnauthorized, "Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise detail_error(web.HTTPUnauthorized, "Invalid token header. Token string should not contain spaces.")
    return parts[1]


def origin_allowed(request: web.Request, allowed_origins: tuple[str, ...]) -> bool:
    """A browser request from a page we trust: no Origin (curl, native apps) or a listed one."""
    origin = request.headers.get("Origin")
    return origin is None or origin.rstrip("/") in allowed_origins


def refuse_origin(request: web.Request) -> web.HTTPException:
    """DRF's CSRF text: a cookie sent by a page on a foreign site must not act for its owner."""
    origin = request.headers.get("Origin", "")
    return detail_error(web.HTTPForbidden,
                        f"CSRF Failed: Origin checking failed - {origin} does not match any trusted origins.")


async def _by_token(db: Database, token: str) -> Principal:
    if not TOKEN_SHAPE.fullmatch(token):
        raise detail_error(web.HTTPUnauthorized, "Invalid token.")
    user = await user_for_token(db, token)
    if user is None:
        raise detail_error(web.HTTPUnauthorized, "Invalid token.")
    if not user.is_active:
        raise detail_error(web.HTTPUnauthorized, "User inactive or deleted.")
    return Principal(user, token_digest(token), "token")


async def _by_session(request: web.Request, db: Database, allowed_origins: tuple[str, ...] | None) -> Principal:
    key = await session_key(request)
    if key is None:
        raise detail_error(web.HTTPUnauthorized, NOT_PROVIDED)
    if allowed_origins is not None and not origin_allowed(request, allowed_origins):
        raise refuse_origin(request)
    user = await user_for_session(db, key)
    if user is None or not user.is_active:  # ended, expired or disabled: as if no cookie
        raise detail_error(web.HTTPUnauthorized, NOT_PROVIDED)
    return Principal(user, session_digest(key), "session")


async def authenticate(request: web.Request, db: Database, *, query_token: bool = False,
                       origins: tuple[str, ...] | None = None) -> Principal:
    """The active user behind the request, or an HTTP 401 with DRF's detail text.

    The token wins when one is sent (a bad token is a 401 even with a good cookie, as in DRF).
    With `origins` given, a session cookie counts only from those origins (or none): 403."""
    try:
        token = token_from_request(request, query_token)
        if token is not None:
            return await _by_token(db, token)
        return await _by_session(request, db, origins)
    except Unavailable:
        raise detail_error(web.HTTPServiceUnavailable, "Service unavailable, try again.") from None
