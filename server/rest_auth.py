"""/api/auth/: DRF's obtain_auth_token, cookie login and logout (aiohttp-session), and who am I."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from schemas.auth import CredentialsSchema, MeSchema
from server.auth import authenticate, origin_allowed, refuse_origin
from server.httpjson import detail_error, json_error, json_response, read_body
from server.keys import CONFIG, DB, METRICS, SEALER
from server.sessions import end_session, start_session
from server.throttle import Throttled, begin_attempt, forget
from server.users import User, obtain_token, verify_login

BAD_CREDENTIALS = {"non_field_errors": ["Unable to log in with provided credentials."]}


async def _credentials(request: web.Request) -> dict[str, str]:
    body = await read_body(request)
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise _bad({"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
    try:
        return CredentialsSchema().load(body)
    except ValidationError as exc:
        raise _bad(exc.messages) from None


def _bad(body: Any) -> web.HTTPException:
    return json_error(web.HTTPBadRequest, body)


async def _login(request: web.Request) -> User:
    """The user behind valid credentials, or DRF's 400; failures are throttled (429)."""
    credentials = await _credentials(request)
    db, config = request.app[DB], request.app[CONFIG]
    try:
        attempt = await begin_attempt(db, config, credentials["username"], request.remote)
        user = await verify_login(db, credentials["username"], credentials["password"])
        if user is not None:
            await forget(db, attempt)
    except Throttled as exc:
        request.app[METRICS].count_throttled("login")
        raise detail_error(web.HTTPTooManyRequests, exc.detail, headers={"Retry-After": str(exc.wait)}) from None
    if user is None:
        raise _bad(BAD_CREDENTIALS)
    return user


def _me(user: User) -> dict[str, Any]:
    return MeSchema().dump(user)


async def obtain_token_view(request: web.Request) -> web.Response:
    """POST {"username", "password"} (JSON or form) -> {"token": "<40 hex>"}, the same key each time."""
    user = await _login(request)
    return json_response({"token": await obtain_token(request.app[DB], user, request.app[SEALER])})


def _check_origin(request: web.Request) -> None:
    # A foreign page must not log its visitor in or out (login CSRF): same rule as cookie writes.
    if not origin_allowed(request, request.app[CONFIG].allowed_origins):
        raise refuse_origin(request)


async def login_view(request: web.Request) -> web.Response:
    """POST credentials -> a fresh session cookie (the old session ends) and who you are."""
    _check_origin(request)
    user = await _login(request)
    await start_session(request, request.app[DB], user, request.app[CONFIG].session_max_age_seconds)
    return json_response(_me(user))


async def logout_view(request: web.Request) -> web.Response:
    """POST -> 204; the session ends in the database, so a copied cookie is worthless too."""
    _check_origin(request)
    await end_session(request, request.app[DB])
    return json_response(None, 204)


async def me_view(request: web.Request) -> web.Response:
    principal = await authenticate(request, request.app[DB])
    return json_response(_me(principal.user))


def add_auth_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/token/", obtain_token_view)
    app.router.add_post("/api/auth/login/", login_view)
    app.router.add_post("/api/auth/logout/", logout_view)
    app.router.add_get("/api/auth/me/", me_view)
