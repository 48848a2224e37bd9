"""Token endpoint (DRF's exact bodies), cookie login/logout/me, Origin checks, the failed-login throttle."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError

from server.config import Config
from server.keys import DB
from server.users import create_user
from tests.conftest import ADA, ANY_ID, TEST_SECRET, Pattern, Socket, ok
from tests.test_rest import call

PASSWORD = "correct horse "  # the trailing space is part of it: passwords are not trimmed
TRUSTED = "https://ward.example"
EVIL = "https://evil.example"
BAD_CREDENTIALS = {"non_field_errors": ["Unable to log in with provided credentials."]}
CSRF = {"detail": f"CSRF Failed: Origin checking failed - {EVIL} does not match any trusted origins."}
NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}


@pytest.fixture
def config() -> Config:
    return Config(db_timeout_seconds=3.0, session_key=TEST_SECRET, allowed_origins=(TRUSTED,))


@pytest.fixture
async def ward(client) -> dict[str, Any]:
    """A user with a password; returns its login body."""
    await create_user(client.app[DB], "ward", PASSWORD)
    return {"username": "ward", "password": PASSWORD}


async def login(client, credentials: dict[str, Any], **kwargs: Any) -> tuple[int, Any]:
    return await call(client, "POST", "/api/auth/login/", json=credentials, **kwargs)


# --- POST /api/auth/token/ -------------------------------------------------------------------


async def test_token_endpoint_gives_the_same_key_each_time(client, ward: dict) -> None:
    async with client.post("/api/auth/token/", json=ward) as response:
        raw = await response.text()
    assert response.status == 200 and raw == Pattern(r'\{"token":"[0-9a-f]{40}"\}')
    token = (await response.json())["token"]
    assert await call(client, "POST", "/api/auth/token/", data=ward) == (200, {"token": token})  # a form too
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        assert await Socket(connection).request("list") == ok([], "list")


@pytest.mark.parametrize(("body", "errors"), [
    ({"username": "ward", "password": "wrong"}, BAD_CREDENTIALS),
    ({"username": "nobody", "password": PASSWORD}, BAD_CREDENTIALS),
    ({"username": "ward", "password": PASSWORD.strip()}, BAD_CREDENTIALS),
    ({}, {"username": ["This field is required."], "password": ["This field is required."]}),
    ({"username": "", "password": ""}, {"username": ["This field may not be blank."],
                                        "password": ["This field may not be blank."]}),
    ({"username": None, "password": "x"}, {"username": ["This field may not be null."]}),
    ({"username": ["ward"], "password": "x"}, {"username": ["Not a valid string."]}),
])
async def test_token_endpoint_errors_are_drf_exact(client, ward: dict, body: dict, errors: dict) -> None:
    assert await call(client, "POST", "/api/auth/token/", json=body) == (400, errors)


async def test_no_token_for_inactive_or_passwordless_users(client, ward: dict) -> None:
    await create_user(client.app[DB], "kiosk", None)
    assert await call(client, "POST", "/api/auth/token/", json={"username": "kiosk", "password": "!"}) == (
        400, BAD_CREDENTIALS)
    await client.app[DB].execute("users.deactivate", {"username": "ward"})
    assert await call(client, "POST", "/api/auth/token/", json=ward) == (400, BAD_CREDENTIALS)


# --- cookie sessions ------------------------------------------------------------------------


async def test_login_me_logout_with_a_real_cookie_jar(client, ward: dict) -> None:
    assert await call(client, "GET", "/api/auth/me/") == (401, NOT_PROVIDED)
    async with client.post("/api/auth/login/", json=ward) as response:
        assert response.status == 200
        me = await response.json()
        cookie = response.cookies["dashboard_session"]
    assert me == {"id": ANY_ID, "username": "ward", "role": "editor"}
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert cookie["max-age"] == str(14 * 24 * 3600) and not cookie["secure"]
    assert await call(client, "GET", "/api/auth/me/") == (200, me)
    status, created = await call(client, "POST", "/api/patients/", json=ADA)  # curl -b jar: no Origin
    assert status == 201
    async with client.ws_connect("/ws/") as connection:  # the cookie opens /ws/ too
        assert await Socket(connection).request("list") == ok([created], "list")
    copied = client.session.cookie_jar.filter_cookies(client.make_url("/"))["dashboard_session"].value
    assert await call(client, "POST", "/api/auth/logout/") == (204, None)
    assert await call(client, "GET", "/api/auth/me/") == (401, NOT_PROVIDED)
    # The session ended in the database: a copy of the cookie is worthless too.
    assert await call(client, "GET", "/api/auth/me/", headers={"Cookie": f"dashboard_session={copied}"}) == (
        401, NOT_PROVIDED)


async def test_login_rotates_the_session(client, ward: dict) -> None:
    await create_user(client.app[DB], "other", "other pass")
    assert (await login(client, {"username": "other", "password": "other pass"}))[0] == 200
    jar = client.session.cookie_jar
    first = jar.filter_cookies(client.make_url("/"))["dashboard_session"].value
    assert (await login(client, ward))[0] == 200
    second = jar.filter_cookies(client.make_url("/"))["dashboard_session"].value
    assert second != first
    assert (await call(client, "GET", "/api/auth/me/"))[1]["username"] == "ward"
    # The session from before the login no longer counts: nothing carries over.
    jar.clear()
    assert await call(client, "GET", "/api/auth/me/", headers={"Cookie": f"dashboard_session={first}"}) == (
        401, NOT_PROVIDED)


async def test_a_token_wins_over_a_cookie(client, ward: dict, token: str) -> None:
    assert (await login(client, ward))[0] == 200
    assert (await call(client, "GET", "/api/auth/me/", token))[1]["username"] == "nurse"
    assert await call(client, "GET", "/api/auth/me/", "0" * 40) == (401, {"detail": "Invalid token."})


# --- Origin ---------------------------------------------------------------------------------


async def test_cookie_writes_and_logins_only_from_trusted_origins(client, ward: dict) -> None:
    assert await login(client, ward, headers={"Origin": EVIL}) == (403, CSRF)
    assert (await login(client, ward, headers={"Origin": TRUSTED}))[0] == 200
    assert await call(client, "POST", "/api/patients/", json=ADA, headers={"Origin": EVIL}) == (403, CSRF)
    assert (await call(client, "POST", "/api/patients/", json=ADA, headers={"Origin": TRUSTED}))[0] == 201
    assert (await call(client, "GET", "/api/patients/", headers={"Origin": EVIL}))[0] == 200  # reads are safe
    assert await call(client, "POST", "/api/auth/logout/", headers={"Origin": EVIL}) == (403, CSRF)


async def test_cookie_websockets_only_from_trusted_origins(client, ward: dict, token: str) -> None:
    assert (await login(client, ward))[0] == 200
    async with client.ws_connect("/ws/", headers={"Origin": TRUSTED}) as connection:
        assert await Socket(connection).request("list") == ok([], "list")
    async with client.get("/ws/", headers={"Origin": EVIL, "Connection": "Upgrade", "Upgrade": "websocket",
                                           "Sec-WebSocket-Version": "13",
                                           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as response:
        assert response.status == 403 and await response.json() == CSRF
    with pytest.raises(WSServerHandshakeError) as refusal:
        await client.ws_connect("/ws/", headers={"Origin": EVIL})
    assert refusal.value.status == 403
    # A token is not ambient authority: it is not Origin-checked, as before.
    async with client.ws_connect(f"/ws/?token={token}", headers={"Origin": EVIL}) as connection:
        assert await Socket(connection).request("list") == ok([], "list")


# --- throttle -------------------------------------------------------------------------------


THROTTLED = {"detail": Pattern(r"Request was throttled\. Expected available in (60|59|58) seconds\.")}


async def test_failed_logins_are_throttled_per_username(client, ward: dict) -> None:
    await create_user(client.app[DB], "doctor", "doctor pass")
    wrong = {**ward, "password": "wrong"}
    for endpoint in ("token", "login", "token", "login", "token"):  # both endpoints count
        assert await call(client, "POST", f"/api/auth/{endpoint}/", json=wrong) == (400, BAD_CREDENTIALS)
    async with client.post("/api/auth/token/", json=ward) as response:  # even the right password now
        body = await response.json()
        assert response.status == 429 and body == THROTTLED
        assert body["detail"] == f"Request was throttled. Expected available in {response.headers['Retry-After']} seconds."
    assert await login(client, ward) == (429, THROTTLED)
    # Another user from the same address is not held up by ward's failures.
    assert (await login(client, {"username": "doctor", "password": "doctor pass"}))[0] == 200


async def test_failed_logins_are_throttled_per_address(aiohttp_client, config: Config, database_url: str) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(dataclasses.replace(config, login_failures_per_address=3),
                                             database_url))
    await create_user(client.app[DB], "ward", PASSWORD)
    for name in ("a", "b", "c"):
        assert await login(client, {"username": name, "password": "x"}) == (400, BAD_CREDENTIALS)
    assert await login(client, {"username": "ward", "password": PASSWORD}) == (429, THROTTLED)
