"""/api/auth/: DRF's obtain_auth_token, cookie login and logout (aiohttp-session), and who am I."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from schemas.auth import CredentialsSchema, MeSchema
from server.accounts.sessions import end_session, start_session
from server.accounts.throttle import begin_attempt, forget
from server.accounts.users import User, obtain_token, verify_login
from server.errors import BadRequest, MethodNotAllowed, Throttled
from server.web.authenticate import authenticate, check_origin
from server.web.http import VIEW, json_response, negotiate, read_body
from server.web.keys import CONFIG, DB, METRICS, SEALER
from server.web.metadata import token_metadata

BAD_CREDENTIALS = {"non_field_errors": ["Unable to log in with provided credentials."]}
CREDENTIALS = CredentialsSchema()
ME = MeSchema()


async def _credentials(request: web.Request) -> dict[str, str]:
    body = await read_body(request)
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise BadRequest([{"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}])
    try:
        return CREDENTIALS.load(body)
    except ValidationError as exc:
        raise BadRequest([exc.messages]) from None


async def _login(request: web.Request) -> User:
    """The user behind valid credentials, or DRF's 400; failures are throttled (429)."""
    credentials = await _credentials(request)
    db, config = request.app[DB], request.app[CONFIG]
    try:
        attempt = await begin_attempt(db, config, credentials["username"], request.remote)
    except Throttled:
        request.app[METRICS].count_throttled("login")
        raise
    user = await verify_login(db, credentials["username"], credentials["password"])
    if user is None:
        raise BadRequest([BAD_CREDENTIALS])
    await forget(db, attempt)
    return user


def _me(user: User) -> dict[str, Any]:
    return ME.dump(user)


async def obtain_token_view(request: web.Request) -> web.Response:
    """POST {"username", "password"} (JSON or form) -> {"token": "<40 hex>"}, the same key each time.
    A DRF view like the resources: Accept negotiated, OPTIONS described, Allow on every answer."""
    negotiate(request, "POST, OPTIONS")
    indent = request[VIEW].indent
    if request.method == "OPTIONS":
        return json_response(token_metadata(), indent=indent)
    if request.method != "POST":
        raise MethodNotAllowed([f'Method "{request.method}" not allowed.'])
    user = await _login(request)
    token = await obtain_token(request.app[DB], user, request.app[SEALER])
    return json_response({"token": token}, indent=indent)


async def login_view(request: web.Request) -> web.Response:
    """POST credentials -> a fresh session cookie (the old session ends) and who you are."""
    check_origin(request, request.app[CONFIG].allowed_origins)  # a foreign page must not log its visitor in
    user = await _login(request)
    await start_session(request, request.app[DB], user, request.app[CONFIG].session_max_age_seconds)
    return json_response(_me(user))


async def logout_view(request: web.Request) -> web.Response:
    """POST -> 204; the session ends in the database, so a copied cookie is worthless too."""
    check_origin(request, request.app[CONFIG].allowed_origins)
    await end_session(request, request.app[DB])
    return json_response(None, 204)


async def me_view(request: web.Request) -> web.Response:
    principal = await authenticate(request, request.app[DB])
    return json_response(_me(principal.user))


def add_auth_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/token/", obtain_token_view)
    app.router.add_route("*", "/api/auth/token/", obtain_token_view)  # 405 and OPTIONS, as DRF's view
    app.router.add_post("/api/auth/login/", login_view)
    app.router.add_post("/api/auth/logout/", logout_view)
    app.router.add_get("/api/auth/me/", me_view)
