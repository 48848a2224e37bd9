"""Login sessions: an encrypted aiohttp-session cookie carrying a random key, checked in login_sessions."""
from __future__ import annotations

import secrets
from typing import Callable

from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from server.accounts.secret import digest, subkey
from server.accounts.users import User
from server.config import Config
from server.store.db import Database

COOKIE_NAME = "dashboard_session"
KEY_FIELD = "key"


class SessionCookies(EncryptedCookieStorage):
    """The session cookie, Secure exactly when `secure_for(request)`: whether this client really uses
    HTTPS (the transports decide: server/web/auth_api.py), or always with session_cookie_secure."""

    def __init__(self, key: bytes, secure_for: Callable[[web.BaseRequest], bool], **params: object) -> None:
        super().__init__(key, **params)  # type: ignore[arg-type]
        self._secure_for = secure_for

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        await super().save_session(request, response, session)
        cookie = response.cookies.get(self.cookie_name)
        if cookie is not None:
            cookie["secure"] = self._secure_for(request)


def session_storage(config: Config, secret: bytes, uses_https: Callable[[web.BaseRequest], bool]) -> SessionCookies:
    # Lax keeps the cookie off cross-site POSTs and sub-requests; httponly keeps it from scripts.
    return SessionCookies(subkey(secret, "session-cookie"),
                          lambda request: config.session_cookie_secure or uses_https(request),
                          cookie_name=COOKIE_NAME, httponly=True, samesite="Lax",
                          max_age=config.session_max_age_seconds)


async def session_key(request: web.Request) -> str | None:
    """The key inside the request's session cookie (not yet checked against the database)."""
    key = (await get_session(request)).get(KEY_FIELD)
    return key if isinstance(key, str) and key else None


async def user_for_session(db: Database, key: str) -> User | None:
    row = await db.fetch_one("users.by_session_digest", {"digest": digest(key)})
    return None if row is None else User(**row)


async def start_session(request: web.Request, db: Database, user: User, max_age: int) -> None:
    """Log the user in with a brand-new session: the old one (if any) ends, nothing carries over,
    so a session planted before login is worth nothing after it (no session fixation)."""
    old_key = await session_key(request)
    if old_key is not None:
        await db.execute("users.end_session", {"digest": digest(old_key)})
    await db.execute("users.prune_sessions")
    key = secrets.token_urlsafe(32)
    await db.execute("users.start_session", {"digest": digest(key), "user_id": user.id,
                                             "max_age": max_age})
    session = await new_session(request)
    session[KEY_FIELD] = key


async def renew_session(request: web.Request, db: Database, max_age: int) -> None:
    """Slide the session: its database expiry and its cookie's Max-Age start over at `max_age`.

    The rule: a session ends `max_age` seconds after its last renewal, and the page renews it by
    asking /api/auth/me/ on load and every hour while it is open (app.js), so a wall display that
    stays up stays signed in, and a closed one is signed out `max_age` after it was last shown."""
    key = await session_key(request)
    if key is None:
        return
    await db.execute("users.renew_session", {"digest": digest(key), "max_age": max_age})
    # Setting the key again restarts the cookie's own clock ("created", checked against max_age on
    # load) and makes the middleware send it again with a fresh Max-Age.
    (await get_session(request))[KEY_FIELD] = key


async def end_session(request: web.Request, db: Database) -> None:
    key = await session_key(request)
    if key is not None:
        await db.execute("users.end_session", {"digest": digest(key)})
    (await get_session(request)).invalidate()
