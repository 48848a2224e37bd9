"""Issue 13, attacks 5 and 6 against a real `serve`: a foreign Host refused before any work, the CSP
a constant, links from the allowed host; X-Forwarded-For/-Proto believed only from trusted_proxies."""
from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tests.processes import ServerProcess, make_token, raw_request

PASSWORD = "correct horse "
REFUSED = (400, {"detail": "Bad Request (400)"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PATIENT = {"first_name": "Ada", "last_name": "Lovelace", "admission_date": "2026-11-01T08:30:00Z"}


async def answer(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def login(session: aiohttp.ClientSession, server: ServerProcess, username: str, password: str = "wrong",
                **headers: str) -> tuple[int, Any, str]:
    async with session.post(f"{server.http}/api/auth/login/", headers=headers,
                            json={"username": username, "password": password}) as response:
        return response.status, await response.json(), response.headers.get("Set-Cookie", "")


@pytest.fixture
async def served(database_url: str, request: pytest.FixtureRequest) -> Any:
    """`serve --workers 1` with the environment given by indirect parametrization (else the defaults)."""
    server = await ServerProcess.start(database_url, "--workers", "1", env=getattr(request, "param", {}))
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
            yield server, session, await make_token(database_url, "ward", PASSWORD)
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_foreign_host_is_refused_before_any_work(served: Any) -> None:
    """Default allowed_hosts (the bind address, localhost): evil.example gets 400 on the page, the REST
    mirror, the socket (no upgrade) and the login (the throttle is not charged); health stays local."""
    server, session, token = served
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", "evil.example; script-src *"):
        evil = {"Host": host}
        async with session.get(f"{server.http}/", headers=evil) as page:
            assert (page.status, await page.json()) == REFUSED
            assert "Content-Security-Policy" not in page.headers
        assert await answer(session, "GET", f"{server.http}/api/patients/",
                            headers={**evil, "Authorization": f"Token {token}"}) == REFUSED
        with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
            await session.ws_connect(f"{server.http}/ws/?token={token}", headers=evil)
        assert handshake.value.status == 400
    for attempt in range(25):  # more than both throttles allow, had they counted
        assert await answer(session, "POST", f"{server.http}/api/auth/login/", headers={"Host": "evil.example"},
                            json={"username": "ward", "password": f"guess {attempt}"}) == REFUSED
    assert (await login(session, server, "ward", PASSWORD))[0] == 200
    for path in ("/healthz", "/readyz", "/metrics"):  # systemd and monitoring on the loopback
        async with session.get(f"{server.http}{path}") as response:
            assert response.status == 200, path
    raw = await raw_request(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")  # no Host: the bind address
    assert raw.startswith(b"HTTP/1.0 200") and raw.endswith(b"\r\n\r\nok\n"), raw


async def test_the_csp_is_the_same_whatever_the_host(served: Any) -> None:
    server, session, _ = served
    for host in (None, "localhost", f"localhost:{server.port}", "[::1]", "127.0.0.1"):
        async with session.get(f"{server.http}/", headers={"Host": host} if host else {}) as page:
            assert page.status == 200 and page.headers["Content-Security-Policy"] == CSP, host


@pytest.mark.parametrize("served", [{"DASHBOARD_ALLOWED_HOSTS": ".ward.example,127.0.0.1",
                                      "DASHBOARD_TRUSTED_PROXIES": "127.0.0.1/32"}], indirect=True)
async def test_links_are_built_from_the_allowed_host(served: Any) -> None:
    server, session, token = served
    auth = {"Authorization": f"Token {token}"}
    for _ in range(3):
        assert (await answer(session, "POST", f"{server.http}/api/patients/", json=PATIENT,
                             headers={**auth, "Host": "ward.example"}))[0] == 201
    status, body = await answer(session, "GET", f"{server.http}/api/patients/?limit=1&offset=1",
                                headers={**auth, "Host": "beds.ward.example:8443"})
    assert status == 200 and (body["next"], body["previous"]) == (
        "http://beds.ward.example:8443/api/patients/?limit=1&offset=2",
        "http://beds.ward.example:8443/api/patients/?limit=1")
    status, body = await answer(session, "GET", f"{server.http}/api/patients/?limit=1",  # as nginx relays it
                                headers={**auth, "Host": "ward.example", "X-Forwarded-Proto": "https"})
    assert status == 200 and body["next"] == "https://ward.example/api/patients/?limit=1&offset=1"
    raw = await raw_request(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")  # no Host: the bind address, listed
    assert raw.startswith(b"HTTP/1.0 200") and raw.endswith(b"\r\n\r\nok\n"), raw
    for host in ("evil.example", "evilward.example", "localhost"):  # not listed: not ours (the list is the list)
        assert await answer(session, "GET", f"{server.http}/api/patients/?limit=1",
                            headers={**auth, "Host": host}) == REFUSED


@pytest.mark.parametrize("served", [{"DASHBOARD_TRUSTED_PROXIES": "127.0.0.1/32"}], indirect=True)
async def test_a_trusted_proxy_names_the_client(served: Any) -> None:
    """From a trusted proxy the socket log, the throttle, the access log and the cookie's Secure see the client: one
    client's 20 failures lock that client, not everyone behind the proxy."""
    server, session, token = served
    async with session.ws_connect(f"{server.http}/ws/?token={token}", headers={"X-Forwarded-For": "198.51.100.4"}):
        await server.next_line(r"ws \d+ open: user ward from 198\.51\.100\.4$")
    _, _, cookie = await login(session, server, "ward", PASSWORD, **{"X-Forwarded-For": "198.51.100.9",
                                                                     "X-Forwarded-Proto": "https"})
    assert "dashboard_session=" in cookie and "Secure" in cookie
    for attempt in range(20):  # a different name each time: only the address throttle counts them all
        forwarded = "203.0.113.66, 203.0.113.7"  # the left one is the client's own claim: not believed
        assert (await login(session, server, f"nobody{attempt}", **{"X-Forwarded-For": forwarded}))[0] == 400
    status, body, _ = await login(session, server, "nobody", **{"X-Forwarded-For": "203.0.113.7"})
    assert status == 429 and body["detail"].startswith("Request was throttled."), body
    assert (await login(session, server, "nobody", **{"X-Forwarded-For": "203.0.113.66"}))[0] == 400
    assert (await login(session, server, "ward", PASSWORD, **{"X-Forwarded-For": "203.0.113.8"}))[0] == 200
    await server.next_line(r' 203\.0\.113\.8 "POST /api/auth/login/" 200 ')
    assert re.search(r' 203\.0\.113\.7 "POST /api/auth/login/" 429 ', server.log), server.log
    assert "login failed (unknown user) for an unknown username from 203.0.113.7" in server.log, server.log


async def test_an_untrusted_peer_is_not_believed(served: Any) -> None:
    """No trusted_proxies (the default): X-Forwarded-For is the client's word. 20 failures with a
    different forwarded address each still lock the peer; the log shows the peer; no Secure from a header."""
    server, session, token = served
    async with session.ws_connect(f"{server.http}/ws/?token={token}", headers={"X-Forwarded-For": "198.51.100.4"}):
        await server.next_line(r"ws \d+ open: user ward from 127\.0\.0\.1$")
    _, _, cookie = await login(session, server, "ward", PASSWORD, **{"X-Forwarded-Proto": "https"})
    assert "dashboard_session=" in cookie and "Secure" not in cookie
    for attempt in range(20):
        forwarded = {"X-Forwarded-For": f"203.0.113.{attempt + 1}"}
        assert (await login(session, server, f"nobody{attempt}", **forwarded))[0] == 400
    status, body, _ = await login(session, server, "ward", PASSWORD, **{"X-Forwarded-For": "198.51.100.1"})
    assert status == 429 and body["detail"].startswith("Request was throttled."), body
    await server.next_line(r' 127\.0\.0\.1 "POST /api/auth/login/" 429 ')
    assert "203.0.113." not in server.log and "198.51.100." not in server.log, server.log
