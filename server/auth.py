"""Who is asking: token credentials from the query string or the Authorization header."""
from __future__ import annotations

import json
import re

from aiohttp import web

from server.db import Database
from server.errors import Unavailable
from server.users import User, user_for_token

TOKEN_SHAPE = re.compile(r"[0-9a-f]{40}")


def _detail(status: type[web.HTTPException], detail: str) -> web.HTTPException:
    body = json.dumps({"detail": detail}, separators=(",", ":"), ensure_ascii=False)
    headers = {"WWW-Authenticate": "Token"} if status is web.HTTPUnauthorized else None
    return status(text=body, content_type="application/json", headers=headers)


def token_from_request(request: web.Request) -> str | None:
    """The credential a client sent, if any; raises 401 for a malformed header."""
    if request.query.get("token"):
        return request.query["token"]
    header = request.headers.get("Authorization")
    if not header:
        return None
    parts = header.split()
    if not parts or parts[0].lower() not in ("token", "bearer"):
        return None
    if len(parts) == 1:
        raise _detail(web.HTTPUnauthorized, "Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise _detail(web.HTTPUnauthorized, "Invalid token header. Token string should not contain spaces.")
    return parts[1]


async def authenticate(request: web.Request, db: Database) -> User:
    """The active user behind the request's token, or an HTTP 401 with DRF's detail text."""
    token = token_from_request(request)
    if token is None:
        raise _detail(web.HTTPUnauthorized, "Authentication credentials were not provided.")
    if not TOKEN_SHAPE.fullmatch(token):
        raise _detail(web.HTTPUnauthorized, "Invalid token.")
    try:
        user = await user_for_token(db, token)
    except Unavailable:
        raise _detail(web.HTTPServiceUnavailable, "Service unavailable, try again.") from None
    if user is None:
        raise _detail(web.HTTPUnauthorized, "Invalid token.")
    if not user.is_active:
        raise _detail(web.HTTPUnauthorized, "User inactive or deleted.")
    return user
