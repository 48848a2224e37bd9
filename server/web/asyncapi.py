"""/api/asyncapi.json: AsyncAPI 3.0 of /ws/, from the declarations and the OpenAPI document's object schemas."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from server import __version__
from server.accounts.sessions import COOKIE_NAME
from server.resources.declaration import Resource
from server.web.http import json_response
from server.web.keys import ASYNCAPI

# The success status of each generic action (protocol §3); the data of its reply, by kind.
STATUS = {"list": 200, "retrieve": 200, "create": 201, "update": 200, "patch": 200, "delete": 204,
          "subscribe_instance": 201, "unsubscribe_instance": 204, "subscribe": 201, "unsubscribe": 204}
PK = {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}],
      "description": "an id: an integer or a string of digits; anything else is 404"}
ANY = {"description": "any JSON value, echoed in the reply"}
SECURITY = [{"$ref": f"#/components/securitySchemes/{name}"} for name in ("queryToken", "headerToken", "sessionCookie")]


def json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema (AsyncAPI's default format): `nullable` is a null type."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in schema:
        converted["type"] = [schema["type"], "null"]
    return converted


def _item(resource: Resource, patched: bool = False) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{'Patched' if patched else ''}{resource.verbose_name}"}


def request_schema(resource: Resource, action: str) -> dict[str, Any]:
    """The payload of a request frame for one action."""
    properties: dict[str, Any] = {"action": {"const": action}, "request_id": ANY}
    required = ["action"]
    if action in ("retrieve", "update", "patch", "delete", "subscribe_instance", "unsubscribe_instance"):
        properties["pk"] = PK
        required.append("pk")
    if action in ("create", "update", "patch"):
        properties["data"] = _item(resource, patched=action == "patch")
        required.append("data")
    if action == "create":
        properties["idempotency_key"] = {"type": "string", "minLength": 1, "maxLength": 255,
                                         "description": "sent again with the same key, creates nothing new"}
    if action == "list":
        properties.update(limit={"type": "integer", "minimum": 1}, offset={"type": "integer", "minimum": 0},
                          ordering={"type": "string", "description": ", ".join(resource.ordering_fields)})
    if action in ("list", "subscribe"):
        properties["filters"] = {"type": "object", "description": "field or field__op -> value, ANDed: "
                                 + ", ".join(resource.filter_fields)}
    if action == "subscribe":
        properties["since"] = {"type": "string", "description": "a cursor: replay what came after it"}
    if action.startswith(("subscribe", "unsubscribe")):
        required.append("request_id")
    return {"type": "object", "required": required, "properties": properties}


def reply_data(resource: Resource, action: str) -> dict[str, Any]:
    if action == "list":
        page = {"type": "object", "required": ["count", "results", "limit", "offset"], "properties": {
            "count": {"type": "integer"}, "results": {"type": "array", "items": _item(resource)},
            "limit": {"type": "integer"}, "offset": {"type": "integer"}}}
        return {"oneOf": [{"type": "array", "items": _item(resource)}, page]}
    if action in ("retrieve", "create", "update", "patch"):
        return _item(resource)
    if action == "subscribe":
        return {"type": "object", "required": ["cursor"], "properties": {"cursor": {"type": "string"}}}
    return {"type": "null"}


def envelope(action: Any, status: Any, data: Any, errors: Any, cursor: bool = False) -> dict[str, Any]:
    """The five keys of every reply and push (a push may add `cursor`), in the protocol's order."""
    properties = {"errors": errors, "data": data, "action": action, "response_status": status, "request_id": ANY}
    if cursor:
        properties["cursor"] = {"type": "string"}
    return {"type": "object", "required": ["errors", "data", "action", "response_status", "request_id"],
            "properties": properties}


def frame(resource: Resource, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["stream", "payload"],
            "properties": {"stream": {"const": resource.name}, "payload": payload}}


def message(name: str, title: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "title": title, "contentType": "application/json", "payload": payload}


def stream_messages(resource: Resource) -> dict[str, Any]:
    """A stream's messages: each action's request and reply, the error reply, the pushes."""
    messages: dict[str, Any] = {}
    no_errors = {"type": "array", "maxItems": 0}
    for action in (action for action in resource.actions if action in STATUS):
        messages[f"{action}Request"] = message(f"{action}Request", f"{action} request",
                                               frame(resource, request_schema(resource, action)))
        messages[f"{action}Reply"] = message(f"{action}Reply", f"{action} reply", frame(resource, envelope(
            {"const": action}, {"const": STATUS[action]}, reply_data(resource, action), no_errors)))
    messages["error"] = message("error", "an error reply (protocol §4)", frame(resource, envelope(
        {"type": ["string", "null"]}, {"type": "integer", "minimum": 400}, {"type": "null"},
        {"type": "array", "minItems": 1, "items": {"type": ["string", "object"]}})))
    if "subscribe" in resource.actions or "subscribe_instance" in resource.actions:
        deleted = {"type": "object", "required": ["pk"], "properties": {"pk": {"type": "integer"}}}
        for event, status, data in (("create", 200, _item(resource)), ("update", 200, _item(resource)),
                                    ("delete", 204, deleted)):
            messages[f"{event}Push"] = message(f"{event}Push", f"a pushed {event}", frame(resource, envelope(
                {"const": event}, {"const": status}, data, no_errors, cursor=True)))
    return messages


def stream_operations(resource: Resource, messages: dict[str, Any]) -> dict[str, Any]:
    """One send operation per action, with its reply; one receive operation for the pushes."""
    channel = {"$ref": f"#/channels/{resource.name}"}

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/channels/{resource.name}/messages/{name}"}

    operations: dict[str, Any] = {}
    for action in (action for action in resource.actions if action in STATUS):
        operations[f"{resource.name}_{action}"] = {
            "action": "send", "channel": channel, "title": action, "messages": [ref(f"{action}Request")],
            "reply": {"channel": channel, "messages": [ref(f"{action}Reply"), ref("error")]}}
    pushes = [ref(name) for name in messages if name.endswith("Push")]
    if pushes:
        operations[f"{resource.name}_changes"] = {
            "action": "receive", "channel": channel, "title": "live changes",
            "summary": "after subscribe or subscribe_instance, tagged with its request_id", "messages": pushes}
    return operations


def build_asyncapi(resources: tuple[Resource, ...], openapi: dict[str, Any]) -> dict[str, Any]:
    """The document: one channel per stream (all on /ws/), its operations, the object schemas."""
    channels, operations = {}, {}
    for resource in resources:
        messages = stream_messages(resource)
        channels[resource.name] = {
            "address": "/ws/", "title": resource.name, "messages": messages,
            "description": f'Frames with "stream": "{resource.name}" on the one multiplexed socket.'}
        operations.update(stream_operations(resource, messages))
    names = [name for resource in resources for name in (resource.verbose_name, f"Patched{resource.verbose_name}")]
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "dashboard-server /ws/", "version": __version__,
                 "description": "The multiplexed WebSocket (docs/protocol.md); REST: /api/openapi.json."},
        "defaultContentType": "application/json",
        "servers": {"dashboard": {"host": "{host}", "protocol": "ws", "pathname": "/ws/", "security": SECURITY,
                                  "variables": {"host": {"default": "127.0.0.1:8080"}}}},
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {name: json_schema(openapi["components"]["schemas"][name]) for name in names},
            "securitySchemes": {
                "queryToken": {"type": "httpApiKey", "in": "query", "name": "token"},
                "headerToken": {"type": "httpApiKey", "in": "header", "name": "Authorization",
                                "description": "`Token <key>` or `Bearer <key>`"},
                "sessionCookie": {"type": "httpApiKey", "in": "cookie", "name": COOKIE_NAME}}},
    }


async def asyncapi_view(request: web.Request) -> web.Response:
    return json_response(request.app[ASYNCAPI])
