"""Log lines: one per connection open/close and per failed request, with the connection id; never a token."""
from __future__ import annotations

import json
import re

import aiohttp
import pytest

from server.ops.logs import redact
from tests.processes import ServerProcess, make_token, raw_request, ws_request


async def session_with_failures(server: ServerProcess, token: str) -> None:
    """Both ways of sending a token, failed requests, refused handshakes, then a clean stop."""
    async with aiohttp.ClientSession() as session:
        await server.wait_serving(session)
        async with session.ws_connect(f"{server.http}/ws/?token={token}") as ws:
            assert (await ws_request(ws, "retrieve", pk=424242))["response_status"] == 404
            await ws.send_str("not json")
            assert (await ws.receive_json())["payload"]["response_status"] == 400
        async with session.ws_connect(f"{server.http}/ws/", headers={"Authorization": f"Token {token}"}) as ws:
            assert (await ws_request(ws, "list"))["response_status"] == 200
        for headers, query in (({}, "?token=" + token[::-1]), ({"Authorization": f"Token {token} {token}"}, ""),
                               ({"Authorization": f"Bearer {token[:-1]}x"}, "")):
            async with session.get(f"{server.http}/ws/{query}", headers=headers) as refused:
                assert refused.status == 401
    assert await server.stop() == 0


@pytest.mark.parametrize("log_format", ["plain", "json"])
async def test_logs_carry_connection_ids_and_never_a_token(database_url: str, log_format: str) -> None:
    token = await make_token(database_url)
    server = await ServerProcess.start(database_url, "--workers", "1", "--log-format", log_format)
    try:
        await session_with_failures(server, token)
    finally:
        await server.kill()
    assert token not in server.log and token[::-1] not in server.log and token[:-1] not in server.log
    lines = server.lines[1:]  # after "dashboard-server: serving ws://..."
    if log_format == "json":
        records = [json.loads(line) for line in server.lines]  # every line is one JSON object, the first too
        assert records[0]["message"].startswith("dashboard-server: serving ws://127.0.0.1:")
        records = records[1:]
        assert {"time", "level", "logger", "pid", "message"} <= set(records[0])
        access = [record for record in records if record["logger"] == "aiohttp.access"]
        assert access and all(record["path"] in ("/ws/", "/readyz") and record["method"] == "GET" and
                              isinstance(record["status"], int) and isinstance(record["ms"], float)
                              for record in access), access
        assert sum(record["status"] == 401 and record["path"] == "/ws/" for record in access) == 3
        lines = [record["message"] for record in records]
        with_ids = [record for record in records if record["message"].startswith("ws ")]
        assert with_ids and all(record["connection"] == int(record["message"].split()[1]) for record in with_ids)
    messages = [re.sub(r"^.*?: (?=ws \d)", "", line) for line in lines if re.search(r"\bws \d+ ", line)]
    assert [re.sub(r"from \S+", "from <addr>", message) for message in messages] == [
        "ws 1 open: user nurse from <addr>",
        "ws 1 request failed: stream patients action retrieve status 404",
        "ws 1 request failed: stream (invalid frame) action (none) status 400",
        "ws 1 closed: code 1000",
        "ws 2 open: user nurse from <addr>",
        "ws 2 closed: code 1000",
    ]
    assert sum('"GET /ws/" 401' in line for line in lines) == 3  # the access log: path only


def test_redaction_is_a_safety_net() -> None:
    key = "0123456789abcdef0123456789abcdef01234567"
    assert redact(f"GET /ws/?token={key}&x=1 Authorization: Token {key} db password=s3cret") == \
        "GET /ws/?token=[redacted]&x=1 Authorization: Token [redacted] db password=[redacted]"
    assert redact(f"digest {key}") == "digest [redacted]"


async def test_what_a_client_sends_cannot_forge_a_log_line_or_leak_a_cookie(database_url: str) -> None:
    server = await ServerProcess.start(database_url, "--workers", "1")
    secret = "gAAAAABnSECRETCOOKIEVALUE_0123456789abcdef=="
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
        forged = "2026-12-01 21:59:59,000 WARNING [1] server.web.connection: ws 1 closed: code 1000"
        path = "/static/x%0A" + forged.replace(" ", "%20")
        assert (await raw_request(server.port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())).startswith(b"HTTP/1.1 404")
        # A header line ended by a bare LF: aiohttp refuses the request, and once logged the header whole.
        bad = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: dashboard_session={secret}\n\r\n".encode()
        assert (await raw_request(server.port, bad)).startswith(b"HTTP/1.0 400")
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert not any(line.startswith(forged[:23]) for line in server.lines), server.log  # not a line of its own
    assert any("/static/x\\x0A2026-12-01" in line for line in server.lines), server.log
    assert secret not in server.log and "Traceback" not in server.log, server.log
    assert any("bad request from a client" in line for line in server.lines), server.log
