"""Hostile input, generated: whatever a client sends, it gets a well-formed envelope or a policy close.

Runs HYPOTHESIS_PROFILE's example count (tests/README.md: a bounded CI run, or a long campaign)."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import psycopg2
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from server.app import create_app
from server.config import Config
from tests.conftest import ADA, Socket

MAX_FRAME = 4096  # small, so that oversized frames are cheap to make
STREAMS = ["patients", "vitals"]
ACTIONS = ["list", "retrieve", "create", "update", "patch", "delete", "subscribe_instance"]
WRITES = {"create", "update", "patch", "delete"}
STATUSES = {200, 201, 204, 400, 403, 404, 405, 409}
FIELDS = ["id", "first_name", "last_name", "admission_date", "dismissal_date", "patient", "kind", "value",
          "recorded_at", "unit", "created_at"]
# Policy closes: over the size limit 1009 (checked first, unread); invalid UTF-8 in a text frame 1007,
# as RFC 6455 §8.1 requires. Every other frame gets an envelope.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([2**63, -2**63 - 1, 10**100, 0, -1, 1])
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50)
    | st.sampled_from(["", " ", "2026-11-01T08:30:00Z", "2026-13-45", "null", "\x00", "\ud800x", "1" * 300]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
field_data = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
payloads = st.fixed_dictionaries({}, optional={
    "action": st.sampled_from(ACTIONS) | json_values,
    "request_id": json_values,
    "pk": st.sampled_from([1, 2, 0, -1, 2**70, "1", None]) | json_values,
    "data": field_data | json_values,
    "filters": st.dictionaries(st.sampled_from([f"{f}__{op}" for f in FIELDS for op in ("gte", "in", "isnull")]
                                               + FIELDS), json_values, max_size=3) | json_values,
    "limit": json_values, "offset": json_values, "ordering": json_values,
})
MAX_DEPTH, MAX_REQUEST_ID = 32, 256  # docs/protocol.md, limits table
structured = st.builds(lambda stream, payload: ("text", json.dumps({"stream": stream, "payload": payload})),
                       st.sampled_from(STREAMS) | json_values, payloads)
frames = st.one_of(
    structured, structured, structured,
    st.builds(lambda text: ("text", text), st.text(max_size=200)),
    st.builds(lambda value: ("text", json.dumps(value)), json_values),
    st.builds(lambda depth: ("text", "[" * depth + "]" * depth), st.integers(1, 2000)),
    st.builds(lambda depth: ("text", '{"stream": "patients", "payload": ' + '{"a":' * depth + "1" + "}" * depth + "}"),
              st.integers(1, 1500)),
    st.builds(lambda data: ("binary", data), st.binary(max_size=200)),
    st.builds(lambda data: ("invalid_utf8", data + b"\xff\xfe" + data), st.binary(max_size=20)),
    st.builds(lambda n: ("oversized", '{"stream": "patients", "payload": {"a": "' + "x" * n + '"}}'),
              st.integers(MAX_FRAME + 1, 3 * MAX_FRAME)),
)


def snapshot(url: str) -> list[Any]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT p, (SELECT array_agg(v ORDER BY v.id) FROM vitals v) FROM patients p ORDER BY id")
            return cursor.fetchall()
    finally:
        connection.close()


def assert_envelope(reply: Any, sent: str) -> dict[str, Any]:
    assert isinstance(reply, dict) and list(reply) == ["stream", "payload"], reply
    payload = reply["payload"]
    assert list(payload) == ["errors", "data", "action", "response_status", "request_id"], reply
    assert payload["response_status"] in STATUSES, reply  # never a 500, never a 503 with the database up
    assert isinstance(payload["errors"], list)
    assert (payload["errors"] == []) == (payload["response_status"] < 300), reply
    try:
        frame = json.loads(sent)
    except (ValueError, RecursionError):
        frame = None
    routable = isinstance(frame, dict) and isinstance(frame.get("payload"), dict) and isinstance(frame.get("stream"), str)
    if routable and depth(frame) <= MAX_DEPTH:
        assert reply["stream"] == frame["stream"]
        request_id = frame["payload"].get("request_id")
        if len(json.dumps(request_id)) > MAX_REQUEST_ID:  # refused, and not echoed
            assert (payload["response_status"], payload["request_id"]) == (400, None), reply
        else:
            assert payload["request_id"] == request_id
    else:
        assert reply["stream"] is None and payload["response_status"] == 400
    return payload


def depth(value: Any) -> int:
    """How deep arrays and objects nest in a value (1 for a flat object)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class Fuzzer:
    """A socket under attack, a bystander socket, and the database they share."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.token = client, token
        self.url = client.app_database_url
        self.victim: Any = None

    async def connect(self) -> None:
        self.victim = await self.client.ws_connect(f"/ws/?token={self.token}")

    async def send(self, kind: str, frame: Any) -> Any:
        """Send one frame; return its reply, or None after an expected policy close."""
        if kind == "binary":
            await self.victim.send_bytes(frame)
        elif kind == "invalid_utf8":
            await self.victim.send_frame(frame, WSMsgType.TEXT)
        else:
            await self.victim.send_str(frame)
        message = await self.victim.receive(timeout=10)
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode("utf-8", "surrogatepass"))
        expected_close = 1009 if size > MAX_FRAME else 1007 if kind == "invalid_utf8" else None
        if expected_close:
            assert message.type == WSMsgType.CLOSE and self.victim.close_code == expected_close, message
            await self.victim.close()
            await self.connect()
            return None
        assert message.type == WSMsgType.TEXT, message
        return message.data


@pytest.fixture
async def fuzzer(aiohttp_client: Any, config: Config, database_url: str, token_for: Any) -> Fuzzer:
    limited = dataclasses.replace(config, max_frame_bytes=MAX_FRAME, database_url=database_url)
    client = await aiohttp_client(create_app(limited))
    client.app_database_url = database_url
    fuzzer = Fuzzer(client, await token_for(client))
    await fuzzer.connect()
    seed = await Socket(fuzzer.victim).request("create", data=ADA)
    assert seed["response_status"] == 201
    fuzzer.bystander = Socket(await client.ws_connect(f"/ws/?token={fuzzer.token}"))
    return fuzzer


@given(batch=st.lists(frames, min_size=1, max_size=4))
async def test_arbitrary_frames_get_envelopes_or_policy_closes(fuzzer: Fuzzer, batch: list[tuple[str, Any]]) -> None:
    for kind, frame in batch:
        before = snapshot(fuzzer.url)
        text = await fuzzer.send(kind, frame)
        if text is None:
            assert snapshot(fuzzer.url) == before  # a frame refused unread changes nothing
            continue
        payload = assert_envelope(json.loads(text), frame if kind == "text" else "")
        if not (str(payload["action"]) in WRITES and payload["response_status"] < 300):
            assert snapshot(fuzzer.url) == before, (frame, payload)  # rejected writes leave no trace
    reply = await fuzzer.bystander.request("retrieve", pk=1)  # the bystander is served throughout
    assert reply["response_status"] in (200, 404) and reply["errors"] in ([], ["Not found"])
