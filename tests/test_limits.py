"""Limits: socket caps before the upgrade, the per-socket request bucket, handshake and heartbeat timeouts."""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from server.app import AccessLogger, create_app
from server.config import Config, load_config
from tests.conftest import Pattern, Socket, create, error, ok, sockets_open


async def limited_client(aiohttp_client: Any, config: Config, database_url: str, **changes: Any) -> TestClient:
    limited = dataclasses.replace(config, **changes)
    server = TestServer(create_app(dataclasses.replace(limited, database_url=database_url)))
    # As serve runs it (server/ops/serving.py): a connection that sends no handshake in time is dropped.
    await server.start_server(access_log_class=AccessLogger, keepalive_timeout=limited.handshake_timeout_seconds)
    return await aiohttp_client(server)


def throttled(waits: range, action: Any = "list", request_id: Any = 1) -> dict[str, Any]:
    """The 429 envelope, its wait any of `waits` (whole seconds: which one depends on how long the test took)."""
    texts = (f"{seconds} second" if seconds == 1 else f"{seconds} seconds" for seconds in waits)
    message = Pattern(rf"Request was throttled\. Expected available in (?:{'|'.join(texts)})\.")
    return error([message], action, 429, request_id)


def test_limits_have_generous_defaults_and_read_the_environment() -> None:
    config = load_config(environ={"DASHBOARD_MAX_SOCKETS_PER_USER": "3", "DASHBOARD_REQUESTS_PER_SECOND": "0.5"})
    assert (config.max_sockets, config.max_sockets_per_user) == (10000, 3)
    assert (config.requests_per_second, config.request_burst, config.throttle_close_after) == (0.5, 10000, 1000)
    assert config.handshake_timeout_seconds == 30.0 and config.heartbeat_seconds == 30.0


async def test_sockets_per_user_over_the_cap_get_429_before_the_upgrade(aiohttp_client, config, database_url,
                                                                         token_for) -> None:
    client = await limited_client(aiohttp_client, config, database_url, max_sockets_per_user=2)
    nurse, doctor = await token_for(client, "nurse"), await token_for(client, "doctor")
    first, second = [await client.ws_connect(f"/ws/?token={nurse}") for _ in range(2)]
    refused = await client.get(f"/ws/?token={nurse}", headers=upgrade_headers())
    assert (refused.status, await refused.json()) == (429, {"detail": "Too many connections for this user."})
    async with client.ws_connect(f"/ws/?token={doctor}") as other:  # another user is not affected
        assert await Socket(other).request("list") == ok([], "list")
    await first.close()
    async with client.ws_connect(f"/ws/?token={nurse}") as again:  # a slot given back is free again
        assert await Socket(again).request("list") == ok([], "list")
    await second.close()
    assert await sockets_open(client) == 0
    both = [await client.ws_connect(f"/ws/?token={nurse}") for _ in range(2)]  # every slot was given back
    await asyncio.gather(*(socket.close() for socket in both))


async def test_sockets_over_the_total_cap_get_503_before_the_upgrade(aiohttp_client, config, database_url,
                                                                      token_for) -> None:
    client = await limited_client(aiohttp_client, config, database_url, max_sockets=2)
    nurse, doctor = await token_for(client, "nurse"), await token_for(client, "doctor")
    sockets = [await client.ws_connect(f"/ws/?token={nurse}"), await client.ws_connect(f"/ws/?token={doctor}")]
    refused = await client.get(f"/ws/?token={doctor}", headers=upgrade_headers())
    assert (refused.status, await refused.json()) == (503, {"detail": "Too many connections, try again later."})
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await client.ws_connect(f"/ws/?token={nurse}")
    assert raised.value.status == 503
    for ws in sockets:
        await ws.close()


def upgrade_headers() -> dict[str, str]:
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def test_over_the_request_rate_a_429_envelope_then_service_again(aiohttp_client, config, database_url,
                                                                     token_for) -> None:
    client = await limited_client(aiohttp_client, config, database_url, requests_per_second=0.05, request_burst=3)
    token = await token_for(client)
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        ws = Socket(connection)
        for request_id in range(3):
            assert await ws.request("list", request_id=request_id) == ok([], "list", request_id=request_id)
        # The bucket is empty: its next token comes 1 / rate = 20 s after the burst began. The wait is what
        # is left of that, rounded up to whole seconds: 20 on a fast run, less on a slower one.
        waits = range(1, 21)
        assert await ws.request("retrieve", request_id=7, pk=1) == throttled(waits, "retrieve", 7)
        reply = await ws.call({"stream": "vitals", "payload": {"action": "nope", "request_id": "x"}})
        assert reply == {"stream": "vitals", "payload": throttled(waits, "nope", "x")}
        await connection.send_str("not json")  # a frame that is not even JSON is counted, and answered
        assert await ws.receive() == {"stream": None, "payload": throttled(waits, None, None)}
        assert not connection.closed


async def test_sustained_abuse_closes_1008(aiohttp_client, config, database_url, token_for) -> None:
    client = await limited_client(aiohttp_client, config, database_url, requests_per_second=0.001,
                                  request_burst=1, throttle_close_after=5)
    token = await token_for(client)
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        ws = Socket(connection)
        assert await ws.request("list") == ok([], "list")
        for _ in range(4):
            assert (await ws.request("list"))["response_status"] == 429
        await ws.send({"stream": "patients", "payload": {"action": "list", "request_id": 1}})
        closing = await connection.receive(timeout=10)
        assert closing.type == WSMsgType.CLOSE and connection.close_code == 1008
    async with client.ws_connect(f"/ws/?token={token}") as fresh:  # the server itself is fine
        assert await Socket(fresh).request("list") == ok([], "list")


async def test_the_default_rate_lets_a_fast_client_through(ws: Socket) -> None:
    """A few thousand requests in a row, pipelined, meet no limit at the defaults."""
    frames = [{"stream": "patients", "payload": {"action": "list", "request_id": n, "limit": 1}} for n in range(2000)]
    for frame in frames:
        await ws.send(frame)
    statuses = {(await ws.receive())["payload"]["response_status"] for _ in frames}
    assert statuses == {200}


async def test_a_connection_that_never_finishes_its_handshake_is_dropped(aiohttp_client, config,
                                                                        database_url) -> None:
    client = await limited_client(aiohttp_client, config, database_url, handshake_timeout_seconds=0.5)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /ws/ HTTP/1.1\r\nHost: x\r\n")  # and then nothing: a slow-loris
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the server hung up
    writer.close()


async def test_a_peer_that_stops_answering_pings_is_dropped(aiohttp_client, config, database_url,
                                                           token_for) -> None:
    client = await limited_client(aiohttp_client, config, database_url, heartbeat_seconds=0.3)
    token = await token_for(client)
    async with client.ws_connect(f"/ws/?token={token}", autoping=False) as silent:
        assert (await silent.receive(timeout=10)).type == WSMsgType.PING  # not answered
        message = await silent.receive(timeout=10)
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)
    assert await sockets_open(client) == 0  # the server forgets it (its handler finishes on its own)


async def test_an_idle_dashboard_that_answers_pings_stays(aiohttp_client, config, database_url,
                                                         token_for) -> None:
    # heartbeat 1 s: a pong has half of it to arrive, room enough on a busy machine
    client = await limited_client(aiohttp_client, config, database_url, heartbeat_seconds=1.0)
    token = await token_for(client)
    async with client.ws_connect(f"/ws/?token={token}", autoping=False) as idle:
        for _ in range(4):  # idle through four heartbeats, answering each ping as a browser does
            ping = await idle.receive(timeout=10)
            assert ping.type == WSMsgType.PING
            await idle.pong(ping.data)
        await Socket(idle).send({"stream": "patients", "payload": {"action": "list", "request_id": 1}})
        reply = await idle.receive(timeout=10)
        while reply.type == WSMsgType.PING:  # a heartbeat may come first
            await idle.pong(reply.data)
            reply = await idle.receive(timeout=10)
        assert reply.json() == {"stream": "patients", "payload": ok([], "list")}


async def test_the_frame_size_limit_is_exact(aiohttp_client, config, database_url, token_for) -> None:
    client = await limited_client(aiohttp_client, config, database_url, max_frame_bytes=100)
    token = await token_for(client)
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        frame = '{"stream": "patients", "payload": {"action": "list", "request_id": "'
        at_limit = frame + "x" * (100 - len(frame) - 3) + '"}}'
        assert len(at_limit) == 100
        await connection.send_str(at_limit)
        assert (await connection.receive(timeout=10)).json()["payload"]["response_status"] == 200
        await connection.send_str(at_limit[:-3] + 'x"}}')  # one byte over
        closing = await connection.receive(timeout=10)
        assert closing.type == WSMsgType.CLOSE and connection.close_code == 1009


async def test_subscriptions_per_socket_and_per_process_are_capped(aiohttp_client, config, database_url,
                                                                   token_for) -> None:
    client = await limited_client(aiohttp_client, config, database_url, max_subscriptions_per_socket=3,
                                  max_subscriptions=4)
    token = await token_for(client)
    async with client.ws_connect(f"/ws/?token={token}") as first, client.ws_connect(f"/ws/?token={token}") as second:
        ws, other = Socket(first), Socket(second)
        patient = await create(ws)
        for request_id in ("a", "b"):
            assert (await ws.request("subscribe", request_id=request_id))["response_status"] == 201
        assert await ws.request("subscribe_instance", request_id="c", pk=patient["id"]) == ok(
            None, "subscribe_instance", 201, request_id="c")
        assert await ws.request("subscribe", request_id="d") == error(
            ["Too many subscriptions on this socket: at most 3."], "subscribe", 429, request_id="d")
        assert await ws.request("subscribe_instance", request_id="d", pk=patient["id"]) == error(
            ["Too many subscriptions on this socket: at most 3."], "subscribe_instance", 429, request_id="d")
        # Subscribing a request_id again replaces it: no new subscription, no refusal.
        assert (await ws.request("subscribe", request_id="a", filters={"last_name": "X"}))["response_status"] == 201
        assert await ws.request("unsubscribe", request_id="b") == ok(None, "unsubscribe", 204, request_id="b")
        assert (await ws.request("subscribe", request_id="d"))["response_status"] == 201
        # The process holds 3; one more anywhere, then none.
        assert (await other.request("subscribe", request_id="e"))["response_status"] == 201
        assert await other.request("subscribe", request_id="f") == error(
            ["Too many subscriptions on this server, try again later."], "subscribe", 503, request_id="f")
        await ws.ws.close()
        assert await sockets_open(client) == 1  # its subscriptions went with it
        assert (await other.request("subscribe", request_id="f"))["response_status"] == 201


async def test_an_oversized_or_too_deep_request_id_is_a_400_not_echoed(ws: Socket) -> None:
    long_id = "x" * 300
    assert await ws.request("list", request_id=long_id) == error(
        ['"request_id" is too long: at most 256 bytes of JSON.'], "list", 400, request_id=None)
    assert await ws.request("list", request_id=["y"] * 100) == error(
        ['"request_id" is too long: at most 256 bytes of JSON.'], "list", 400, request_id=None)
    # 977 deep was once a 500 (json.dumps of the reply ran out of stack); 32 lists in the frame's two objects: 34.
    for depth in (977, 32):
        request_id = "[" * depth + "1" + "]" * depth
        await ws.ws.send_str('{"stream": "patients", "payload": {"action": "list", "request_id": %s}}' % request_id)
        assert await ws.receive() == {"stream": None, "payload": error(
            ["Invalid frame: nested too deeply (at most 32 levels)."], None, 400, None)}
    assert await ws.request("list", request_id="x" * 40) == ok([], "list", request_id="x" * 40)  # the socket stays
