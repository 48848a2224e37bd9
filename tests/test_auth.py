"""Token endpoint (DRF's exact bodies), cookie login/logout/me, Origin checks, the failed-login throttle."""
from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError

from server.accounts.users import create_user
from server.config import Config
from server.web.keys import DB
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


THROTTLED = re.compile(r"Request was throttled\. Expected available in ([1-9][0-9]*) (seconds?)\.")


async def throttled(client, endpoint: str, credentials: dict[str, Any], window: int) -> dict[str, str]:
    """POST credentials, expecting DRF's 429; its headers.

    The wait it names is whatever is left of the window when the test gets there (how fast the test
    runs is no business of the assertion): whole seconds, at least 1 and at most the window, and
    the same number in Retry-After if the response has one."""
    async with client.post(f"/api/auth/{endpoint}/", json=credentials) as response:
        body = await response.json()
    assert response.status == 429 and list(body) == ["detail"], body
    match = THROTTLED.fullmatch(body["detail"])
    assert match is not None, body
    wait = int(match[1])
    assert 1 <= wait <= window and match[2] == ("second" if wait == 1 else "seconds"), body
    assert response.headers.get("Retry-After", str(wait)) == str(wait), (response.headers, body)
    return dict(response.headers)


async def test_failed_logins_are_throttled_per_username(client, ward: dict, config: Config) -> None:
    await create_user(client.app[DB], "doctor", "doctor pass")
    wrong = {**ward, "password": "wrong"}
    for endpoint in ("token", "login", "token", "login", "token"):  # both endpoints count
        assert await call(client, "POST", f"/api/auth/{endpoint}/", json=wrong) == (400, BAD_CREDENTIALS)
    # Even the right password now, on either endpoint.
    assert "Retry-After" in await throttled(client, "token", ward, config.login_throttle_seconds)
    await throttled(client, "login", ward, config.login_throttle_seconds)
    # Another user from the same address is not held up by ward's failures.
    assert (await login(client, {"username": "doctor", "password": "doctor pass"}))[0] == 200


async def test_failed_logins_are_throttled_per_address(aiohttp_client, config: Config, database_url: str) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(dataclasses.replace(config, login_failures_per_address=3,
                                                                 database_url=database_url)))
    await create_user(client.app[DB], "ward", PASSWORD)
    for name in ("a", "b", "c"):
        assert await login(client, {"username": name, "password": "x"}) == (400, BAD_CREDENTIALS)
    await throttled(client, "login", {"username": "ward", "password": PASSWORD}, config.login_throttle_seconds)


async def test_the_servers_own_page_is_trusted_without_listing(client, ward: dict) -> None:
    """A page served by this server (Origin = scheme + Host) may use its cookie; a foreign one still not."""
    own = f"http://{client.server.host}:{client.server.port}"
    assert (await login(client, ward, headers={"Origin": own}))[0] == 200
    assert (await call(client, "POST", "/api/patients/", json=ADA, headers={"Origin": own}))[0] == 201
    async with client.ws_connect("/ws/", headers={"Origin": own}) as connection:
        assert (await Socket(connection).request("list"))["response_status"] == 200
    # Behind a TLS-terminating proxy the browser's Origin says https for the same host.
    assert (await call(client, "POST", "/api/patients/", json=ADA,
                       headers={"Origin": f"https://{client.server.host}:{client.server.port}"}))[0] == 201
    # Another port, another host, another scheme on the same host name: foreign.
    for foreign in (f"http://{client.server.host}:1", "http://localhost.evil.example", f"ftp://{client.server.host}:{client.server.port}"):
        assert (await call(client, "POST", "/api/patients/", json=ADA, headers={"Origin": foreign}))[0] == 403
        with pytest.raises(WSServerHandshakeError) as refusal:
            await client.ws_connect("/ws/", headers={"Origin": foreign})
        assert refusal.value.status == 403
    # A foreign page cannot claim to be ours: its visitor's browser sends our Host but its own Origin.
    assert await call(client, "POST", "/api/auth/logout/", headers={"Origin": EVIL}) == (403, CSRF)


async def test_a_secure_only_cookie_is_not_handed_out_over_plain_http(aiohttp_client, config: Config,
                                                                      database_url: str) -> None:
    """With session_cookie_secure, a login over http:// would answer 200 with a cookie the browser drops:
    it says why instead; through a trusted proxy that says https, it logs in."""
    from server.app import create_app

    client = await aiohttp_client(create_app(dataclasses.replace(config, session_cookie_secure=True,
                                                                 trusted_proxies="127.0.0.1/32",
                                                                 database_url=database_url)))
    await create_user(client.app[DB], "ward", PASSWORD)
    ward = {"username": "ward", "password": PASSWORD}
    status, body = await login(client, ward)
    assert status == 400 and "session_cookie_secure" in body["non_field_errors"][0]
    assert "plain HTTP" in body["non_field_errors"][0]
    async with client.post("/api/auth/login/", json=ward, headers={"X-Forwarded-Proto": "https"}) as response:
        assert response.status == 200
        assert "Secure" in response.headers["Set-Cookie"]


async def test_the_cookie_is_secure_exactly_when_the_client_uses_https(client, ward: dict, aiohttp_client,
                                                                       config: Config) -> None:
    """session_cookie_secure false (the default): Secure follows the client's scheme, as a trusted proxy
    says it (X-Forwarded-Proto), so one config serves plain http:// on a ward PC and https:// behind nginx;
    from any other peer the header is the client's word, and ignored."""
    from server.app import create_app

    credentials = {"username": "ward", "password": PASSWORD}
    for headers in ({}, {"X-Forwarded-Proto": "https"}):  # no trusted_proxies: the header is ignored
        async with client.post("/api/auth/login/", json=credentials, headers=headers) as response:
            assert response.status == 200
            cookie = response.headers["Set-Cookie"]
            assert "dashboard_session=" in cookie and "Secure" not in cookie
    proxied = await aiohttp_client(create_app(dataclasses.replace(
        config, trusted_proxies="127.0.0.0/8", database_url=client.app_database_url)))
    async with proxied.post("/api/auth/login/", json=credentials, headers={"X-Forwarded-Proto": "https"}) as response:
        assert response.status == 200 and "Secure" in response.headers["Set-Cookie"]
    async with proxied.post("/api/auth/login/", json=credentials, headers={"X-Forwarded-Proto": "http"}) as response:
        assert response.status == 200 and "Secure" not in response.headers["Set-Cookie"]


async def test_every_login_is_logged_counted_and_recorded(client, ward: dict, caplog) -> None:
    """Success and failure with the username and address (never the password, nor a name that names no
    user: it may be a password typed in the wrong field); `dashboard-server logins` shows them."""
    from tests.conftest import scrape, value
    from tests.test_cli import run

    caplog.set_level("INFO", logger="server.web.auth_api")
    assert (await login(client, {**ward, "password": "wrong one"}))[0] == 400
    assert (await login(client, {"username": "s3cret-typed-here", "password": "x"}))[0] == 400
    assert (await login(client, ward))[0] == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "server.web.auth_api"]
    assert lines == ["login failed (wrong password) for user 'ward' from 127.0.0.1",
                     "login failed (unknown user) for an unknown username from 127.0.0.1",
                     "login of user 'ward' from 127.0.0.1"]
    assert PASSWORD.strip() not in caplog.text and "wrong one" not in caplog.text
    samples = await scrape(client)
    assert [value(samples, "dashboard_logins_total", outcome=outcome)
            for outcome in ("success", "wrong_password", "unknown_user", "throttled")] == [1, 1, 1, 0]
    shown = run(client.app_database_url, "logins")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split("\t")[1:] for line in shown.stdout.splitlines()]
    assert rows == [["username", "address", "outcome"], ["ward", "127.0.0.1", "success"],
                    ["-", "127.0.0.1", "unknown user"], ["ward", "127.0.0.1", "wrong password"]]
    assert "s3cret-typed-here" not in shown.stdout + caplog.text
    assert run(client.app_database_url, "logins", "--user", "ward", "--limit", "1").stdout.count("\n") == 2
