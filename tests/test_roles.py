"""Viewer and editor on both transports; revoked credentials close open sockets with 4401."""
from __future__ import annotations

import dataclasses

import pytest
from aiohttp import WSMsgType

from server.accounts.users import create_user, deactivate, issue_token, set_password, set_role
from server.config import Config
from server.web.keys import DB, SEALER
from tests.conftest import ADA, ANY_ID, Socket, create, error, ok
from tests.test_rest import call

DENIED = "You do not have permission to perform this action."


@pytest.fixture
def config(config: Config) -> Config:
    # Re-check open sockets often, so the 4401 tests wait a fraction of a second, not 30 s.
    return dataclasses.replace(config, credential_check_seconds=0.1)


async def test_a_viewer_reads_but_cannot_write_on_either_transport(client, token: str, token_for) -> None:
    viewer = await token_for(client, "visitor", role="viewer")
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        created = await create(Socket(connection))
    pk = created["id"]
    forbidden = {"detail": DENIED}
    assert await call(client, "GET", "/api/patients/", viewer) == (200, [created])
    assert await call(client, "GET", f"/api/patients/{pk}/", viewer) == (200, created)
    for method, path in (("POST", "/api/patients/"), ("PUT", f"/api/patients/{pk}/"),
                         ("PATCH", f"/api/patients/{pk}/"), ("DELETE", f"/api/patients/{pk}/"),
                         ("POST", f"/api/patients/{pk}/")):  # no such route: still 403 before 405
        assert await call(client, method, path, viewer, json=ADA) == (403, forbidden), (method, path)
    async with client.ws_connect(f"/ws/?token={viewer}") as connection:
        ws = Socket(connection)
        assert await ws.request("list") == ok([created], "list")
        assert await ws.request("retrieve", pk=pk) == ok(created, "retrieve")
        for action in ("create", "update", "patch", "delete", "explode"):
            assert await ws.request(action, pk=pk, data=ADA) == error([DENIED], action, 403), action
    assert await call(client, "GET", "/api/auth/me/", viewer) == (200, {"id": ANY_ID, "username": "visitor",
                                                                       "role": "viewer"})


async def closed_with(connection, code: int) -> None:
    # The code the server's close frame carries: the client's own close_code may say 1006 when the
    # server, closing at once on a notification, does not wait for a reply the client sends late.
    message = await connection.receive(timeout=10)
    assert message.type == WSMsgType.CLOSE and message.data == code, message


async def test_deactivation_closes_open_sockets_with_4401_and_stops_the_token_at_once(client, token: str) -> None:
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        assert await Socket(connection).request("list") == ok([], "list")
        await deactivate(client.app[DB], "nurse")
        assert await call(client, "GET", "/api/patients/", token) == (401, {"detail": "Invalid token."})
        await closed_with(connection, 4401)


async def test_a_revoked_token_or_ended_session_closes_its_socket(client, token: str) -> None:
    await create_user(client.app[DB], "ward", "ward pass")
    assert (await call(client, "POST", "/api/auth/login/", json={"username": "ward", "password": "ward pass"}))[0] == 200
    async with client.ws_connect(f"/ws/?token={token}") as by_token, client.ws_connect("/ws/") as by_cookie:
        await issue_token(client.app[DB], "nurse", client.app[SEALER])  # the old key is revoked
        await closed_with(by_token, 4401)
        assert await Socket(by_cookie).request("list") == ok([], "list")  # other sockets stay
        await set_password(client.app[DB], "ward", "new pass")  # ends ward's sessions
        await closed_with(by_cookie, 4401)


async def test_a_role_change_closes_the_users_sockets_and_they_reconnect_with_the_new_role(client, token: str) -> None:
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        assert (await Socket(connection).request("create", data=ADA))["response_status"] == 201
        await set_role(client.app[DB], "nurse", "viewer")
        await closed_with(connection, 4401)
    async with client.ws_connect(f"/ws/?token={token}") as connection:  # the same token, now a viewer
        assert await Socket(connection).request("create", data=ADA) == error([DENIED], "create", 403)
