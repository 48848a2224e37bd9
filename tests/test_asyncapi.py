"""/api/asyncapi.json: a valid AsyncAPI 3.0 document of /ws/ whose messages describe the frames the server really sends."""
from __future__ import annotations

import gzip
import json
import pathlib
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from server.resources import RESOURCES
from tests.conftest import ADA, Socket
from tests.test_rest import call

# The official AsyncAPI 3.0.0 JSON Schema (draft 7), from the npm package @asyncapi/specs 6.11.1
# (schemas/3.0.0.json, Apache-2.0), the schema AsyncAPI's own parser validates with. No Python
# validator of AsyncAPI 3 is maintained, so jsonschema checks the document against it.
ASYNCAPI_SCHEMA = json.loads(gzip.decompress(
    (pathlib.Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json.gz").read_bytes()))


def validate_asyncapi(document: dict[str, Any]) -> list[str]:
    return [error.message for error in jsonschema.Draft7Validator(ASYNCAPI_SCHEMA).iter_errors(document)]


def frame_checker(document: dict[str, Any]) -> Any:
    """check(stream, message name, frame): validates a frame against the document's message."""
    registry = Registry().with_resource("urn:asyncapi", Resource.from_contents(document, default_specification=DRAFT7))

    def check(stream: str, name: str, frame: Any) -> None:
        schema = {"$ref": f"urn:asyncapi#/channels/{stream}/messages/{name}/payload"}
        jsonschema.Draft7Validator(schema, registry=registry).validate(frame)
    return check


async def test_the_document_is_valid_asyncapi_3(client) -> None:
    status, document = await call(client, "GET", "/api/asyncapi.json")  # public, like openapi.json
    assert status == 200 and document["asyncapi"] == "3.0.0"
    assert validate_asyncapi(document) == []
    broken = {**document, "operations": {**document["operations"], "patients_list": {
        **document["operations"]["patients_list"], "action": "publish"}}}
    assert validate_asyncapi(broken) != []  # the schema does check what it is given


async def test_every_stream_and_action_is_described_from_its_declaration(client) -> None:
    document = (await call(client, "GET", "/api/asyncapi.json"))[1]
    assert list(document["channels"]) == [resource.name for resource in RESOURCES]
    for resource in RESOURCES:
        assert document["channels"][resource.name]["address"] == "/ws/"
        sends = {name.removeprefix(f"{resource.name}_") for name, operation in document["operations"].items()
                 if operation["channel"] == {"$ref": f"#/channels/{resource.name}"} and operation["action"] == "send"}
        assert sends == set(resource.actions)
        assert document["operations"][f"{resource.name}_changes"]["action"] == "receive"
    openapi = (await call(client, "GET", "/api/openapi.json"))[1]
    assert set(document["components"]["schemas"]) == {
        name for name in openapi["components"]["schemas"] if name.removeprefix("Patched") in ("Patient", "Vital")}
    assert document["components"]["schemas"]["Patient"]["properties"]["dismissal_date"] == {
        "type": ["string", "null"], "format": "date-time"}


async def test_real_frames_match_their_messages(client, ws: Socket) -> None:
    check = frame_checker((await call(client, "GET", "/api/asyncapi.json"))[1])
    exchanges = [
        ("create", {"data": ADA}), ("retrieve", {"pk": 1}), ("retrieve", {"pk": "1"}), ("list", {}),
        ("list", {"limit": 1, "offset": 0, "ordering": "-id", "filters": {"last_name__icontains": "love"}}),
        ("patch", {"pk": 1, "data": {"last_name": "King"}}), ("update", {"pk": 1, "data": ADA}),
        ("subscribe", {"filters": {"dismissal_date__isnull": True}}), ("subscribe_instance", {"pk": 1}),
        ("unsubscribe_instance", {"pk": 1}),
    ]
    for action, keys in exchanges:
        request = {"stream": "patients", "payload": {"action": action, "request_id": action, **keys}}
        check("patients", f"{action}Request", request)
        reply = await ws.call(request)
        check("patients", f"{action}Reply", reply)
    await ws.send({"stream": "patients", "payload": {"action": "create", "request_id": "c", "data": ADA}})
    frames = {(frame := await ws.receive())["payload"]["request_id"]: frame for _ in range(2)}
    check("patients", "createReply", frames["c"])
    check("patients", "createPush", frames["subscribe"])
    # The delete's reply, and its pushes to the two subscriptions (subscribe_instance's is still on:
    # unsubscribe_instance stopped only its own request_id).
    await ws.send({"stream": "patients", "payload": {"action": "delete", "request_id": "d", "pk": 1}})
    frames = {(frame := await ws.receive())["payload"]["request_id"]: frame for _ in range(3)}
    assert set(frames) == {"d", "subscribe", "subscribe_instance"}
    check("patients", "deleteReply", frames.pop("d"))
    for pushed in frames.values():
        check("patients", "deletePush", pushed)
    for keys in ({"action": "retrieve", "pk": 1}, {"action": "create", "data": {}}, {"action": "nope"}, {}):
        error = await ws.call({"stream": "patients", "payload": {"request_id": 9, **keys}})
        check("patients", "error", error)
        with pytest.raises(jsonschema.ValidationError):
            check("patients", "retrieveReply", error)
