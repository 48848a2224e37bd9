"""Every error row of the protocol over a real socket; the socket always stays open."""
from __future__ import annotations

import logging

import pytest
from aiohttp import WSMsgType

from tests.conftest import ADA, Socket, create, error, ok
from tests.pg import admin, database_name


def invalid_frame(why: str) -> dict:
    return {"stream": None, "payload": error([f"Invalid frame: {why}"], None, 400, request_id=None)}


async def test_action_missing(ws: Socket) -> None:
    reply = await ws.call({"stream": "patients", "payload": {"request_id": 10}})
    assert reply == {"stream": "patients", "payload": error(["Unable to find action in message body."], None, 405, 10)}
    assert (await ws.call({"stream": "patients", "payload": {}}))["payload"] == error(
        ["Unable to find action in message body."], None, 405, None)


async def test_unknown_action(ws: Socket) -> None:
    assert await ws.request("explode", request_id=9) == error(['Method "explode" not allowed.'], "explode", 405, 9)
    # Action names are exact: a near miss of a real action is just as unknown.
    assert await ws.request("subscribe_instances", pk=1) == error(
        ['Method "subscribe_instances" not allowed.'], "subscribe_instances", 405)


@pytest.mark.parametrize(("action", "shown"), [(5, "5"), (None, "null"), (["list"], '["list"]'), ({"a": 1}, '{"a": 1}')])
async def test_an_action_that_is_not_a_string(ws: Socket, action: object, shown: str) -> None:
    reply = await ws.call({"stream": "patients", "payload": {"action": action, "request_id": 1}})
    assert reply["payload"] == error([f'Method "{shown}" not allowed.'], action, 405)


async def test_unknown_stream(ws: Socket) -> None:
    reply = await ws.call({"stream": "doctors", "payload": {"action": "list", "request_id": 11}})
    assert reply == {"stream": "doctors", "payload": error(['Unknown stream "doctors".'], "list", 404, 11)}
    assert await ws.request("list") == ok([], "list")  # the socket is still up


@pytest.mark.parametrize(("text", "why"), [
    ("hello", "not valid JSON."),
    ("", "not valid JSON."),
    ('{"stream": "patients", "payload": {"action": "list", "request_id": NaN}}', "not valid JSON."),
    ('{"stream": "patients", "payload": {"action": "list", "request_id": -Infinity}}', "not valid JSON."),
    ('{"stream": "patients", "payload": {"action": "create", "data": {"first_name": 1e999}}}', "not valid JSON."),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply (at most 32 levels)."),
    ("[1, 2]", 'expected a JSON object with "stream" and "payload".'),
    ('"patients"', 'expected a JSON object with "stream" and "payload".'),
    ('{"payload": {"action": "list"}}', 'expected a JSON object with "stream" and "payload".'),
    ('{"stream": "patients"}', 'expected a JSON object with "stream" and "payload".'),
    ('{"stream": 5, "payload": {}}', '"stream" must be a string.'),
    ('{"stream": "patients", "payload": null}', '"payload" must be an object.'),
    ('{"stream": "patients", "payload": [1, 2]}', '"payload" must be an object.'),
    ('{"stream": "patients", "payload": "list"}', '"payload" must be an object.'),
])
async def test_invalid_frames_get_a_400_and_the_socket_stays_up(ws: Socket, text: str, why: str) -> None:
    await ws.ws.send_str(text)
    assert await ws.receive() == invalid_frame(why)
    assert await ws.request("list") == ok([], "list")


async def test_binary_frames_are_refused(ws: Socket) -> None:
    await ws.ws.send_bytes(b'{"stream": "patients", "payload": {"action": "list"}}')
    assert await ws.receive() == invalid_frame("binary frames are not supported; send JSON text.")
    assert await ws.request("list") == ok([], "list")


async def test_an_oversized_frame_closes_1009_unparsed(client, token: str) -> None:
    async with client.ws_connect(f"/ws/?token={token}") as ws:
        frame = '{"stream": "patients", "payload": {"action": "create", "data": {"first_name": "' + "x" * 300_000
        await ws.send_str(frame + '"}}}')
        message = await ws.receive(timeout=10)
        assert message.type == WSMsgType.CLOSE and ws.close_code == 1009


async def test_permission_is_checked_before_the_action_is(client, token_for) -> None:
    token = await token_for(client, "visitor", role="viewer")
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        ws = Socket(connection)
        denied = ["You do not have permission to perform this action."]
        assert await ws.request("create", request_id=60, data=ADA) == error(denied, "create", 403, 60)
        assert await ws.request("explode", request_id=61) == error(denied, "explode", 403, 61)
        assert await ws.request("list", request_id=62) == ok([], "list", request_id=62)
        missing = await ws.call({"stream": "patients", "payload": {"request_id": 63}})
        assert missing["payload"] == error(["Unable to find action in message body."], None, 405, 63)


async def test_database_outage_gives_503_then_recovers(ws: Socket, pg_server: str, database_url: str) -> None:
    created = await create(ws)
    name = database_name(database_url)
    admin(pg_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin(pg_server, f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '{name}'")  # until gone: their goodbye sent
    unavailable = ["Service unavailable, try again."]
    try:
        for _ in range(3):  # a dead pooled connection, then refused new ones
            assert await ws.request("create", data=ADA) == error(unavailable, "create", 503)
            assert await ws.request("retrieve", pk=created["id"]) == error(unavailable, "retrieve", 503)
    finally:
        admin(pg_server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    # Back by itself, and nothing from the outage was half-written.
    assert await ws.request("list") == ok([created], "list")


async def test_unexpected_fault_is_a_500_logged_with_traceback(ws: Socket, database_url: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    admin(database_url, "ALTER TABLE patients RENAME COLUMN last_name TO surname")
    with caplog.at_level(logging.ERROR, logger="server.resources.dispatch"):
        assert await ws.request("list", request_id=3) == error(["Internal server error"], "list", 500, 3)
    assert "Traceback" in caplog.text and "UndefinedColumn" in caplog.text
    assert await ws.request("explode") == error(['Method "explode" not allowed.'], "explode", 405)


async def test_expected_errors_are_not_logged_as_tracebacks(ws: Socket, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await ws.request("retrieve", pk=404404)
        await ws.request("create", data={})
        await ws.request("explode")
    assert "Traceback" not in caplog.text
