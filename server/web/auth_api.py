"""/api/auth/: DRF's obtain_auth_token, cookie login and logout (aiohttp-session), and who am I."""
from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from schemas.auth import CredentialsSchema, MeSchema
from server.accounts.sessions import end_session, renew_session, start_session
from server.accounts.throttle import begin_attempt, forget
from server.accounts.users import User, obtain_token, record_login, verify_login
from server.errors import BadRequest, MethodNotAllowed, Throttled
from server.web.authenticate import authenticate, check_origin
from server.web.http import VIEW, json_response, negotiate, read_body
from server.web.keys import CONFIG, DB, METRICS, SEALER
from server.web.metadata import token_metadata

log = logging.getLogger(__name__)

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
    """The user behind valid credentials, or DRF's 400; failures are throttled (429). Every attempt
    is logged, counted and recorded (`dashboard-server logins`); the password never is."""
    credentials = await _credentials(request)
    db, config = request.app[DB], request.app[CONFIG]
    username, address = credentials["username"], request.remote or ""
    try:
        attempt = await begin_attempt(db, config, username, address)
    except Throttled:
        request.app[METRICS].count_throttled("login")
        await _audit(request, None, address, "throttled")
        raise
    login = await verify_login(db, username, credentials["password"])
    await _audit(request, username if login.known else None, address, login.outcome)
    if login.user is None:
        raise BadRequest([BAD_CREDENTIALS])
    await forget(db, attempt)
    return login.user


async def _audit(request: web.Request, username: str | None, address: str, outcome: str) -> None:
    """username None: it names no user, and may be a password typed in the wrong field, so it is never kept."""
    request.app[METRICS].login_attempted(outcome)
    who = "an unknown username" if username is None else f"user {username!r}"
    if outcome == "success":
        log.info("login of %s from %s", who, address)
    else:
        log.warning("login failed (%s) for %s from %s", outcome, who, address)
    await record_login(request.app[DB], username, address, outcome, request.app[CONFIG].audit_retain_seconds)


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


INSECURE_LOGIN = ("This server sends its login cookie over HTTPS only (session_cookie_secure), and this "
                  "request came over plain HTTP, so the browser would drop it: open the dashboard through "
                  "https://, or set session_cookie_secure = false.")


def over_https(request: web.BaseRequest) -> bool:
    """The client really uses HTTPS: our own TLS, or a trusted proxy that says so (server/web/front.py)."""
    return request.secure


async def login_view(request: web.Request) -> web.Response:
    """POST credentials -> a fresh session cookie (the old session ends) and who you are."""
    check_origin(request, request.app[CONFIG].allowed_origins)  # a foreign page must not log its visitor in
    if request.app[CONFIG].session_cookie_secure and not over_https(request):
        raise BadRequest([{"non_field_errors": [INSECURE_LOGIN]}])  # a 200 whose cookie is dropped misleads
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
    if principal.via == "session":  # the page's hourly question keeps a display signed in
        await renew_session(request, request.app[DB], request.app[CONFIG].session_max_age_seconds)
    return json_response(_me(principal.user))


def add_auth_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/token/", obtain_token_view)
    app.router.add_route("*", "/api/auth/token/", obtain_token_view)  # 405 and OPTIONS, as DRF's view
    app.router.add_post("/api/auth/login/", login_view)
    app.router.add_post("/api/auth/logout/", logout_view)
    app.router.add_get("/api/auth/me/", me_view)
