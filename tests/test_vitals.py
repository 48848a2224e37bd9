"""The vitals stream over a real /ws/ socket (and /api/vitals/): every action and error, whole envelopes."""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADA, ANY_ID, STAMP, Socket, create, error, ok
from tests.live import push
from tests.test_rest import call

HEART_RATE = {"kind": "heart_rate", "value": 72.0, "unit": "bpm", "measured_at": "2026-11-28T08:00:00Z"}
FIELDS = ("patient", "kind", "value", "unit", "measured_at")


def vital(patient: int, **fields: Any) -> dict[str, Any]:
    """A vital as the server dumps it, with server-set fields matched by shape."""
    return {"id": ANY_ID, "patient": patient, **HEART_RATE, "created_at": STAMP, **fields}


async def request(ws: Socket, action: str, request_id: Any = 1, **keys: Any) -> dict[str, Any]:
    return await ws.request(action, request_id, stream="vitals", **keys)


async def add(ws: Socket, patient: int, **fields: Any) -> dict[str, Any]:
    reply = await request(ws, "create", data={"patient": patient, **HEART_RATE, **fields})
    assert reply["response_status"] == 201, reply
    return reply["data"]


@pytest.fixture
async def ada(ws: Socket) -> int:
    return (await create(ws))["id"]


async def test_every_action(ws: Socket, ada: int) -> None:
    reply = await request(ws, "create", request_id="c", data={"patient": ada, **HEART_RATE, "value": 72})
    assert reply == ok(vital(ada), "create", 201, request_id="c")
    assert '"value": 72.0' in ws.last_text  # a JSON number, written as DRF's FloatField writes it
    created = reply["data"]
    pk = created["id"]
    assert await request(ws, "retrieve", 7, pk=pk) == ok(created, "retrieve", request_id=7)
    assert await request(ws, "list") == ok([created], "list")
    assert await request(ws, "list", limit=5) == ok({"count": 1, "results": [created], "limit": 5, "offset": 0}, "list")
    full = {"patient": str(ada), "kind": "spo2", "value": "97", "unit": "%", "measured_at": "2026-11-28T10:15:00+01:00"}
    updated = vital(ada, id=pk, kind="spo2", value=97.0, unit="%", measured_at="2026-11-28T09:15:00Z",
                    created_at=created["created_at"])
    assert await request(ws, "update", pk=pk, data=full) == ok(updated, "update")
    assert await request(ws, "update", pk=pk, data={"value": 96}) == error([{
        "patient": ["This field is required."], "kind": ["This field is required."],
        "unit": ["This field is required."], "measured_at": ["This field is required."]}], "update", 400)
    assert await request(ws, "patch", pk=pk, data={"value": 98.5}) == ok({**updated, "value": 98.5}, "patch")
    assert await request(ws, "delete", 9, pk=pk) == ok(None, "delete", 204, request_id=9)
    for action in ("retrieve", "patch", "delete"):
        assert await request(ws, action, pk=pk, data={"value": 1}) == error(["Not found"], action, 404)


async def test_create_with_no_fields(ws: Socket) -> None:
    assert await request(ws, "create", data={}) == error(
        [{name: ["This field is required."] for name in FIELDS}], "create", 400)


async def test_every_failing_field_is_reported_in_field_order(ws: Socket, ada: int) -> None:
    data = {"measured_at": "yesterday", "unit": "beats each minute", "value": "high", "kind": "pulse", "patient": "abc"}
    assert await request(ws, "create", data=data) == error([{
        "patient": ["Incorrect type. Expected pk value, received str."],
        "kind": ['"pulse" is not a valid choice.'],
        "value": ["A valid number is required."],
        "unit": ["Ensure this field has no more than 16 characters."],
        "measured_at": ["Datetime has wrong format. Use one of these formats instead: "
                        "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."],
    }], "create", 400)
    assert await request(ws, "create", data={name: None for name in FIELDS}) == error(
        [{name: ["This field may not be null."] for name in FIELDS}], "create", 400)
    blank = await request(ws, "create", data={"patient": ada, **HEART_RATE, "unit": "  "})
    assert blank == error([{"unit": ["This field may not be blank."]}], "create", 400)
    assert await request(ws, "list") == ok([], "list")  # nothing was written


@pytest.mark.parametrize(("patient", "type_name"), [("x", "str"), (True, "bool"), ([1], "list"), (1.0, "float")])
async def test_a_patient_of_the_wrong_type(ws: Socket, patient: Any, type_name: str) -> None:
    reply = await request(ws, "create", data={**HEART_RATE, "patient": patient, "kind": 1, "value": False})
    assert reply == error([{"patient": [f"Incorrect type. Expected pk value, received {type_name}."],
                            "kind": ['"1" is not a valid choice.'],
                            "value": ["A valid number is required."]}], "create", 400)


async def test_an_unknown_patient_is_named_by_the_database(ws: Socket, ada: int) -> None:
    message = 'Invalid pk "{}" - object does not exist.'
    for patient in (99, "99", -1, "0099"):  # the message quotes the input as sent, like DRF
        reply = await request(ws, "create", data={**HEART_RATE, "patient": patient})
        assert reply == error([{"patient": [message.format(patient)]}], "create", 400)
    pk = (await add(ws, ada))["id"]
    for action in ("patch", "update"):
        reply = await request(ws, action, pk=pk, data={**HEART_RATE, "patient": ada + 1})
        assert reply == error([{"patient": [message.format(ada + 1)]}], action, 400)
        missing = await request(ws, action, pk=pk + 1, data={**HEART_RATE, "patient": ada + 1})
        assert missing == error(["Not found"], action, 404)
    assert await request(ws, "list") == ok([vital(ada, id=pk)], "list")  # nothing changed


async def test_an_unknown_patient_is_reported_with_the_other_fields(ws: Socket, client, token: str) -> None:
    # As DRF: every failing field at once, the missing related object among them, in field order.
    both = {"patient": ['Invalid pk "99" - object does not exist.'], "kind": ['"pulse" is not a valid choice.']}
    reply = await request(ws, "create", data={**HEART_RATE, "patient": 99, "kind": "pulse"})
    assert reply == error([both], "create", 400)
    assert await call(client, "POST", "/api/vitals/", token, json={**HEART_RATE, "patient": "99", "kind": "pulse"}) == (
        400, both)
    # An id past bigint's range names no row: that needs no database, so it comes with the rest.
    reply = await request(ws, "create", data={**HEART_RATE, "patient": 2**63, "kind": "pulse"})
    assert reply == error([{"patient": [f'Invalid pk "{2**63}" - object does not exist.'],
                            "kind": ['"pulse" is not a valid choice.']}], "create", 400)
    # An existing patient adds nothing; update and patch report the same way (404 first).
    ada = (await create(ws))["id"]
    reply = await request(ws, "create", data={**HEART_RATE, "patient": ada, "kind": "pulse"})
    assert reply == error([{"kind": ['"pulse" is not a valid choice.']}], "create", 400)
    pk = (await add(ws, ada))["id"]
    for action in ("update", "patch"):
        reply = await request(ws, action, pk=pk, data={**HEART_RATE, "patient": 99, "unit": ""})
        assert reply == error([{"patient": both["patient"], "unit": ["This field may not be blank."]}], action, 400)
        reply = await request(ws, action, pk=pk + 1, data={**HEART_RATE, "patient": 99, "unit": ""})
        assert reply == error(["Not found"], action, 404)


async def test_deleting_a_patient_deletes_its_vitals(ws: Socket, ada: int) -> None:
    grace = (await create(ws, first_name="Grace", last_name="Hopper"))["id"]
    gone = [await add(ws, ada), await add(ws, ada, kind="spo2", value=97, unit="%")]
    kept = await add(ws, grace)
    assert await ws.request("delete", pk=ada) == ok(None, "delete", 204)
    assert await request(ws, "list") == ok([kept], "list")
    assert await request(ws, "retrieve", pk=gone[0]["id"]) == error(["Not found"], "retrieve", 404)


async def test_filters_and_ordering(ws: Socket, ada: int) -> None:
    grace = (await create(ws, first_name="Grace", last_name="Hopper"))["id"]
    a1 = await add(ws, ada, measured_at="2026-11-28T08:00:00Z")
    a2 = await add(ws, ada, kind="spo2", value=95, unit="%", measured_at="2026-11-28T06:00:00Z")
    a3 = await add(ws, ada, kind="temperature", value=38.2, unit="°C", measured_at="2026-11-28T07:00:00Z")
    g1 = await add(ws, grace, kind="spo2", value=99, unit="%", measured_at="2026-11-28T07:30:00Z")

    async def listed(**options: Any) -> list[dict[str, Any]]:
        reply = await request(ws, "list", **options)
        assert reply["response_status"] == 200, reply
        return reply["data"]

    assert await listed(filters={"patient": ada}) == [a1, a2, a3]
    assert await listed(filters={"patient": str(grace)}) == [g1]
    assert await listed(filters={"kind": "spo2"}) == [a2, g1]
    assert await listed(filters={"kind": "spo2", "patient": ada}) == [a2]
    assert await listed(filters={"measured_at__gte": "2026-11-28T07:00:00Z", "measured_at__lt": "2026-11-28T08:00:00Z"}) == [a3, g1]
    assert await listed(filters={"patient": ada}, ordering="-measured_at") == [a1, a3, a2]
    assert await listed(ordering="measured_at", limit=2, offset=1) == {"count": 4, "results": [a3, g1], "limit": 2, "offset": 1}
    reply = await request(ws, "list", filters={"kind": "pulse", "kind__gt": "a", "unit": "%", "patient": "Ada"},
                          ordering="value")
    assert reply == error([{
        "ordering": ['Cannot order by "value"; use one of: id, measured_at.'],
        "filters": ['Invalid value for "kind": "pulse" is not a valid choice.',
                    '"gt" does not work on "kind"; use: kind, kind__isnull.',
                    'Cannot filter on "unit"; use one of: id, patient, kind, measured_at.',
                    'Invalid value for "patient": A valid integer is required.'],
    }], "list", 400)


async def test_the_rest_mirror(client, token: str, token_for: Any) -> None:
    status, patient = await call(client, "POST", "/api/patients/", token, json=ADA)
    pk = patient["id"]
    status, created = await call(client, "POST", "/api/vitals/", token, json={"patient": pk, **HEART_RATE})
    assert (status, created) == (201, vital(pk))
    spo2 = {"patient": str(pk), "kind": "spo2", "value": "97", "unit": "%", "measured_at": "2026-11-28T09:00:00Z"}
    status, form_posted = await call(client, "POST", "/api/vitals/", token, data=spo2)  # an HTML form
    assert (status, form_posted) == (201, vital(pk, kind="spo2", value=97.0, unit="%", measured_at="2026-11-28T09:00:00Z"))
    assert await call(client, "GET", f"/api/vitals/?patient={pk}&ordering=-measured_at", token) == (
        200, [form_posted, created])
    assert await call(client, "GET", "/api/vitals/?kind=spo2&measured_at__lt=2026-11-28T09:00:00Z", token) == (200, [])
    assert await call(client, "POST", "/api/vitals/", token, json={**HEART_RATE, "patient": pk + 1}) == (
        400, {"patient": [f'Invalid pk "{pk + 1}" - object does not exist.']})
    assert await call(client, "PATCH", f"/api/vitals/{created['id']}/", token, json={"kind": "x"}) == (
        400, {"kind": ['"x" is not a valid choice.']})
    assert await call(client, "GET", "/api/vitals/987654/", token) == (404, {"detail": "No Vital matches the given query."})
    viewer = await token_for(client, "student", role="viewer")
    assert await call(client, "DELETE", f"/api/vitals/{created['id']}/", viewer) == (
        403, {"detail": "You do not have permission to perform this action."})
    assert await call(client, "DELETE", f"/api/vitals/{created['id']}/", token) == (204, None)


async def test_subscriptions_come_with_the_machinery(ws: Socket, ada: int) -> None:
    """A second resource gets live changes from its trigger line alone; pushes dump like replies."""
    subscribed = await ws.request("subscribe", request_id="v", stream="vitals", filters={"kind": "spo2"})
    assert subscribed["response_status"] == 201
    measured = {"patient": ada, "unit": "%", "measured_at": "2026-11-28T08:00:00Z"}
    # The heart rate commits first: were it pushed (it must not be: the filter), it would come first.
    for request_id, kind, value in (("hr", "heart_rate", 72), ("spo2", "spo2", 97)):
        await ws.send({"stream": "vitals", "payload": {"action": "create", "request_id": request_id,
                                                       "data": {**measured, "kind": kind, "value": value}}})
    texts = [(await ws.ws.receive(timeout=10)).data for _ in range(3)]  # two replies and one push, in any order
    frames = [json.loads(text) for text in texts]
    replies = {frame["payload"]["request_id"]: frame["payload"] for frame in frames if "cursor" not in frame["payload"]}
    pushed = [frame for frame in frames if "cursor" in frame["payload"]]
    assert sorted(replies) == ["hr", "spo2"] and replies["spo2"]["data"]["value"] == 97.0
    assert pushed == [{"stream": "vitals", "payload": push(replies["spo2"]["data"], "create", 200, "v")}]
    assert sum('"value": 97.0' in text for text in texts) == 2  # a float on the wire, in the push as in the reply
