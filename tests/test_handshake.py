"""Credentials are checked before the upgrade; tokens never reach the logs."""
from __future__ import annotations

import logging

import pytest
from aiohttp import WSServerHandshakeError

from tests.conftest import Socket, ok
from tests.pg import admin


async def refused(client, url: str, headers: dict | None = None) -> tuple[int, dict]:
    response = await client.get(url, headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                              "Sec-WebSocket-Version": "13",
                                              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **(headers or {})})
    return response.status, await response.json()


NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
INVALID = {"detail": "Invalid token."}


@pytest.mark.parametrize(("url", "headers", "body"), [
    ("/ws/", None, NOT_PROVIDED),
    ("/ws/?token=", None, NOT_PROVIDED),
    ("/ws/?token=0000000000000000000000000000000000000000", None, INVALID),
    ("/ws/?token=not-a-token", None, INVALID),
    ("/ws/?token=" + "a" * 1000, None, INVALID),
    ("/ws/", {"Authorization": "Token 0000000000000000000000000000000000000000"}, INVALID),
    ("/ws/", {"Authorization": "Basic dXNlcjpwYXNz"}, NOT_PROVIDED),
    ("/ws/", {"Authorization": "Token"}, {"detail": "Invalid token header. No credentials provided."}),
    ("/ws/", {"Authorization": "Token a b"},
     {"detail": "Invalid token header. Token string should not contain spaces."}),
])
async def test_refused_handshakes_get_401_with_a_json_detail(client, token: str, url: str, headers, body) -> None:
    assert await refused(client, url, headers) == (401, body)


async def test_the_client_sees_401_and_no_upgrade(client) -> None:
    with pytest.raises(WSServerHandshakeError) as refusal:
        await client.ws_connect("/ws/?token=0000000000000000000000000000000000000000")
    assert refusal.value.status == 401


async def test_a_disabled_user_is_refused(client, token: str) -> None:
    admin(client.app_database_url, "UPDATE users SET is_active = false")
    assert await refused(client, f"/ws/?token={token}") == (401, {"detail": "User inactive or deleted."})


@pytest.mark.parametrize("how", ["query", "Token", "token", "Bearer", "no slash"])
async def test_accepted_credentials(client, token: str, how: str) -> None:
    url, headers = "/ws/", {}
    if how == "query":
        url = f"/ws/?token={token}"
    elif how == "no slash":
        url = f"/ws?token={token}"
    else:
        headers = {"Authorization": f"{how} {token}"}
    async with client.ws_connect(url, headers=headers) as connection:
        assert connection.protocol is None  # no subprotocol, as before
        assert await Socket(connection).request("list") == ok([], "list")


async def test_a_new_token_revokes_the_old_one(client, token: str, token_for) -> None:
    from server.accounts.users import issue_token
    from server.web.keys import DB, SEALER

    newer = await issue_token(client.app[DB], "nurse", client.app[SEALER])
    assert await refused(client, f"/ws/?token={token}") == (401, INVALID)
    async with client.ws_connect(f"/ws/?token={newer}"):
        pass


async def test_plain_http_get_with_a_token_is_told_to_upgrade(client, token: str) -> None:
    response = await client.get(f"/ws/?token={token}")
    assert response.status == 426 and await response.json() == {"detail": "Use a WebSocket client."}


async def test_tokens_never_reach_the_logs(client, token: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        async with client.ws_connect(f"/ws/?token={token}") as connection:
            ws = Socket(connection)
            await ws.request("list")
            await ws.request("retrieve", pk=1)
        await refused(client, f"/ws/?token={token[:-1]}x")
        await refused(client, "/ws/", {"Authorization": f"Bearer {token[:-1]}x"})
    access = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert any('"GET /ws/"' in line for line in access), access
    assert token not in caplog.text and token[:-1] not in caplog.text


async def test_a_token_revoked_by_another_process_is_refused_at_once_though_cached(database_url: str) -> None:
    """The handshake remembers good tokens (no database round trip); the credentials notification
    of a change made elsewhere (here the CLI) forgets them before the next handshake. The periodic
    re-check, and so the cache's max age, is an hour: only the notification can do it."""
    import aiohttp

    from tests.processes import ServerProcess
    from tests.test_revocation import SAFETY_NET_OFF, cli, closed_within_a_second, user_with_token

    old = await user_with_token(database_url, "cached")
    server = await ServerProcess.start(database_url, "--workers", "1", env=SAFETY_NET_OFF)
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
            url = f"{server.http}/ws/?token="
            sockets = [Socket(await session.ws_connect(url + old)) for _ in range(2)]  # the second one from the cache
            assert await sockets[1].request("list") == ok([], "list")
            new = await cli(database_url, "token", "cached")
            for ws in sockets:  # the notification has arrived: the sockets it closes say so
                await closed_within_a_second(ws)
            assert await refused(session, url + old) == (401, INVALID)
            async with session.ws_connect(url + new) as connection:
                assert await Socket(connection).request("list") == ok([], "list")
        assert await server.stop() == 0, server.log
    finally:
        await server.kill()
