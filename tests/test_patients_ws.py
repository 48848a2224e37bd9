"""The patients stream over a real /ws/ socket: every action, whole envelopes."""
from __future__ import annotations

import json

from tests.conftest import ADA, Socket, create, error, ok, patient


async def test_create_returns_the_object_with_server_fields(ws: Socket) -> None:
    reply = await ws.request("create", request_id="c", data=ADA)
    assert reply == ok(patient(), "create", 201, request_id="c")
    assert reply["data"]["updated_at"] == reply["data"]["created_at"]


async def test_retrieve(ws: Socket) -> None:
    created = await create(ws)
    assert await ws.request("retrieve", request_id=7, pk=created["id"]) == ok(created, "retrieve", request_id=7)


async def test_list_without_limit_is_the_plain_list_in_id_order(ws: Socket) -> None:
    assert await ws.request("list") == ok([], "list")
    first, second = await create(ws), await create(ws, first_name="Grace", last_name="Hopper")
    assert await ws.request("list") == ok([first, second], "list")


async def test_list_with_limit_is_paginated(ws: Socket) -> None:
    rows = [await create(ws, first_name=f"P{i}") for i in range(5)]
    reply = await ws.request("list", limit=2, offset=1)
    assert reply == ok({"count": 5, "results": rows[1:3], "limit": 2, "offset": 1}, "list")
    past_the_end = await ws.request("list", limit=2, offset=100)
    assert past_the_end == ok({"count": 5, "results": [], "limit": 2, "offset": 100}, "list")
    assert (await ws.request("list", limit="2"))["data"]["results"] == rows[:2]


async def test_limit_is_capped_by_the_max_page_size(ws: Socket) -> None:
    await create(ws)
    for limit in (1001, 10**6, 10**30):
        reply = await ws.request("list", limit=limit)
        assert reply["data"]["limit"] == 1000 and reply["data"]["count"] == 1


async def test_update_sets_every_required_field(ws: Socket) -> None:
    created = await create(ws, dismissal_date="2026-11-20T10:00:00Z")
    data = {"first_name": "Augusta", "last_name": "King", "admission_date": "2026-11-02T09:00:00Z"}
    reply = await ws.request("update", request_id=5, pk=created["id"], data=data)
    # An optional field left out keeps its stored value, as DRF's update does.
    assert reply == ok(patient(id=created["id"], **data, dismissal_date="2026-11-20T10:00:00Z",
                               created_at=created["created_at"]), "update", request_id=5)
    assert reply["data"]["updated_at"] > created["updated_at"]


async def test_update_needs_every_required_field(ws: Socket) -> None:
    created = await create(ws)
    reply = await ws.request("update", pk=created["id"], data={"last_name": "X"})
    assert reply == error([{"first_name": ["This field is required."],
                            "admission_date": ["This field is required."]}], "update", 400)


async def test_patch_changes_only_what_it_carries(ws: Socket) -> None:
    created = await create(ws)
    reply = await ws.request("patch", pk=created["id"], data={"last_name": "Byron"})
    assert reply == ok(patient(id=created["id"], last_name="Byron", created_at=created["created_at"]), "patch")
    discharged = await ws.request("patch", pk=created["id"], data={"dismissal_date": "2026-11-28T12:00:00Z"})
    assert discharged["data"]["dismissal_date"] == "2026-11-28T12:00:00Z"
    readmitted = await ws.request("patch", pk=created["id"], data={"dismissal_date": None})
    assert readmitted["data"]["dismissal_date"] is None and readmitted["data"]["last_name"] == "Byron"


async def test_empty_patch_resaves(ws: Socket) -> None:
    created = await create(ws)
    reply = await ws.request("patch", pk=created["id"], data={})
    assert reply == ok(patient(id=created["id"], created_at=created["created_at"]), "patch")
    assert reply["data"]["updated_at"] > created["updated_at"]


async def test_delete_then_it_is_gone(ws: Socket) -> None:
    created = await create(ws)
    assert await ws.request("delete", request_id=9, pk=created["id"]) == ok(None, "delete", 204, request_id=9)
    assert await ws.request("delete", pk=created["id"]) == error(["Not found"], "delete", 404)
    assert await ws.request("retrieve", pk=created["id"]) == error(["Not found"], "retrieve", 404)


async def test_read_only_and_unknown_keys_are_ignored(ws: Socket) -> None:
    data = {**ADA, "id": 999, "created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z", "bogus": 1}
    reply = await ws.request("create", data=data)
    assert reply == ok(patient(), "create", 201)
    assert reply["data"]["id"] != 999 and not reply["data"]["created_at"].startswith("2000")
    patched = await ws.request("patch", pk=reply["data"]["id"], data={"id": 5, "bogus": [1]})
    assert patched["data"]["id"] == reply["data"]["id"]


async def test_extra_payload_keys_are_ignored(ws: Socket) -> None:
    # dcrf-client sends "data": {} with retrieve, list and delete.
    created = await create(ws)
    reply = await ws.request("retrieve", pk=created["id"], data={}, extra="ignored")
    assert reply == ok(created, "retrieve")
    assert await ws.request("list", data={}) == ok([created], "list")


async def test_unicode_names_round_trip_and_are_escaped_on_the_wire(ws: Socket) -> None:
    reply = await ws.request("create", data={**ADA, "first_name": "Zoë 漢字 🙂", "last_name": "Ñúñez"})
    assert reply["data"]["first_name"] == "Zoë 漢字 🙂" and reply["data"]["last_name"] == "Ñúñez"
    # Byte-compatible with the old stack's json.dumps: ", " and ": " separators, \\u escapes.
    assert '"first_name": "Zo\\u00eb \\u6f22\\u5b57 \\ud83d\\ude42"' in ws.last_text
    assert ws.last_text == json.dumps(json.loads(ws.last_text))


async def test_request_id_of_every_json_type_is_echoed(ws: Socket) -> None:
    for request_id in (7, 4.5, "r-3", "5b8c2b1e-2f43-4c4e-9d57-3f2f0f1f0c11", [1, 2], {"a": 1}, None, True, 10**30):
        reply = await ws.request("list", request_id=request_id)
        assert reply == ok([], "list", request_id=request_id)
    reply = await ws.call({"stream": "patients", "payload": {"action": "list"}})
    assert reply["payload"] == ok([], "list", request_id=None)


async def test_pipelined_requests_are_answered_in_order(ws: Socket) -> None:
    created = await create(ws)
    frames = []
    for i in range(40):
        frames.append({"action": "patch", "request_id": 2 * i, "pk": created["id"], "data": {"last_name": f"N{i}"}})
        frames.append({"action": "retrieve", "request_id": 2 * i + 1, "pk": created["id"]})
    for payload in frames:  # all sent before the first reply is read
        await ws.send({"stream": "patients", "payload": payload})
    replies = [(await ws.receive())["payload"] for _ in frames]
    assert [reply["request_id"] for reply in replies] == list(range(80))
    # Each retrieve sees the patch sent just before it on the same socket.
    assert [reply["data"]["last_name"] for reply in replies[1::2]] == [f"N{i}" for i in range(40)]


async def test_sockets_are_independent(client, token: str, ws: Socket) -> None:
    created = await create(ws)
    async with client.ws_connect(f"/ws/?token={token}") as other:
        second = Socket(other)
        assert await second.request("retrieve", pk=created["id"]) == ok(created, "retrieve")
    assert (await ws.request("list"))["response_status"] == 200


async def test_pk_forms(ws: Socket) -> None:
    created = await create(ws)
    assert await ws.request("retrieve", pk=str(created["id"])) == ok(created, "retrieve")
    for pk in ("abc", "1.0", " 1", "-1", "", [1], {"pk": 1}, None, 1.0, True, -1, 0, 10**30, str(10**30), "١"):
        assert await ws.request("retrieve", pk=pk) == error(["Not found"], "retrieve", 404), pk
    for action in ("retrieve", "update", "patch", "delete"):
        assert await ws.request(action, data=ADA) == error(['Missing "pk".'], action, 400)


async def test_not_found_comes_before_bad_data(ws: Socket) -> None:
    for action in ("update", "patch"):
        assert await ws.request(action, pk=987654, data={"first_name": ""}) == error(["Not found"], action, 404)
        assert await ws.request(action, pk=987654, data=None) == error(["Not found"], action, 404)
        assert await ws.request(action, pk=987654, data=ADA) == error(["Not found"], action, 404)
