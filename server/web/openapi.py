"""/api/openapi.json: OpenAPI 3 built from the resource declarations and marshmallow schemas (apispec)."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from schemas.auth import CredentialsSchema, MeSchema, TokenSchema
from schemas.fields import MAX_BIGINT, Choice, DateTime, Float, Related, Text
from server import __version__
from server.accounts.sessions import COOKIE_NAME
from server.resources.declaration import Resource
from server.resources.listing import operators
from server.web.http import json_response
from server.web.keys import OPENAPI
from server.web.rest import resource_routes

DETAIL = {"$ref": "#/components/schemas/Detail"}
PUBLIC: list[dict[str, list[str]]] = []  # `security: []`: no credentials needed


def _field_details(self: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """What the plugin cannot know about our own fields: lengths, choices, the resource an id names."""
    if isinstance(field, Text):
        return {"maxLength": field.max_length, **_text_rules(field)}
    if isinstance(field, Choice):
        return {"enum": list(field.choices)}
    if isinstance(field, Related):
        return {"description": f"the id of an object of /api/{field.to}/"}
    return {}


NO_NUL = r"^[^\u0000]*$"  # PostgreSQL text cannot hold NUL: the server answers 400


def _text_rules(field: Any) -> dict[str, Any]:
    """No NUL, and (unless blank is allowed) a character that is not trimmed away."""
    if field.allow_blank:
        return {"pattern": NO_NUL}
    some = r"[^\s\u0000]" if field.trim_whitespace else r"[^\u0000]"
    return {"minLength": 1, "pattern": rf"^[^\u0000]*{some}[^\u0000]*$"}


def _filter_schema(field: Any) -> dict[str, Any]:
    """The type of a filter value, as a query parameter."""
    if isinstance(field, DateTime):
        return {"type": "string", "format": "date-time"}
    if isinstance(field, Choice):
        return {"type": "string", "enum": list(field.choices)}
    if isinstance(field, Float):
        return {"type": "number"}
    if isinstance(field, Text):
        return {"type": "string", "pattern": NO_NUL}
    return {"type": "integer", "minimum": -MAX_BIGINT, "maximum": MAX_BIGINT}  # listing.py's bounds


def _new_spec() -> tuple[APISpec, MarshmallowPlugin]:
    plugin = MarshmallowPlugin()
    spec = APISpec(title="dashboard-server", version=__version__, openapi_version="3.0.3", plugins=[plugin],
                   info={"description": "REST mirror of the /ws/ resource streams (docs/rest.md)."})
    plugin.map_to_openapi_type(Text, "string", None)
    plugin.map_to_openapi_type(DateTime, "string", "date-time")
    plugin.map_to_openapi_type(Choice, "string", None)
    plugin.map_to_openapi_type(Float, "number", "double")
    plugin.map_to_openapi_type(Related, "integer", None)
    plugin.converter.add_attribute_function(_field_details)
    spec.components.security_scheme("tokenAuth", {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": "`Token <key>` or `Bearer <key>` (POST /api/auth/token/ gives the key)"})
    spec.components.security_scheme("cookieAuth", {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME})
    spec.components.schema("Detail", {"type": "object", "required": ["detail"],
                                      "properties": {"detail": {"type": "string"}}})
    spec.components.schema("ValidationErrors", {
        "type": "object", "description": "field name (or non_field_errors) -> messages",
        "additionalProperties": {"type": "array", "items": {"type": "string"}}})
    spec.components.schema("Credentials", schema=CredentialsSchema)
    spec.components.schema("Token", schema=TokenSchema)
    spec.components.schema("Me", schema=MeSchema)
    return spec, plugin


def _responses(*statuses: int, **success: Any) -> dict[str, Any]:
    """Error responses by status, plus the success ones given as status_<code>=<response>."""
    # A body that cannot even be parsed (bad JSON, a broken form) is DRF's {"detail": ...} 400.
    invalid = {"oneOf": [{"$ref": "#/components/schemas/ValidationErrors"}, DETAIL]}
    texts = {400: ("Invalid input", invalid),
             401: ("No or bad credentials", DETAIL), 403: ("Not allowed for this role", DETAIL),
             404: ("No such object", DETAIL), 429: ("Throttled", DETAIL),
             422: ("Idempotency-Key already used with other data", DETAIL),
             504: ("Outcome unknown: the write was sent, the database did not confirm it in time", DETAIL)}
    responses = {str(status): {"description": texts[status][0],
                               "content": {"application/json": {"schema": texts[status][1]}}} for status in statuses}
    responses.update({key.removeprefix("status_"): value for key, value in success.items()})
    return responses


def _json(description: str, schema: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ordering_pattern(resource: Resource) -> str:
    """Exactly what listing.py accepts: the ordering fields, `-` for descending, comma-separated."""
    term = rf"\s*-?({'|'.join(resource.ordering_fields)})\s*"
    return rf"^({term}(,{term})*)?$"


def _list_parameters(resource: Resource) -> list[dict[str, Any]]:
    schema = resource.schema_instance
    parameters: list[dict[str, Any]] = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1},
         "description": "page size; the answer is then {count, next, previous, results}"},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_BIGINT}},
        {"name": "ordering", "in": "query", "schema": {"type": "string", "pattern": _ordering_pattern(resource)},
         "description": f"comma-separated, `-` for descending: {', '.join(resource.ordering_fields)}"}]
    for name in resource.filter_fields:
        field = schema.fields[name]
        for op in operators(field):
            kind = {"isnull": {"type": "boolean"}, "icontains": {"type": "string", "pattern": NO_NUL}}.get(
                op, _filter_schema(field))
            parameters.append({"name": f"{name}__{op}" if op else name, "in": "query", "schema": kind})
    return parameters


def _operation(resource: Resource, action: str) -> dict[str, Any]:
    """One REST operation of a resource action, described from its declaration."""
    item = {"$ref": f"#/components/schemas/{resource.verbose_name}"}
    roles = " or ".join(sorted(resource.permissions.get(action, ())))
    operation: dict[str, Any] = {"operationId": f"{resource.name}_{action}", "tags": [resource.name],
                                 "summary": f"{action} ({roles})"}
    if action == "list":
        page = {"type": "object", "required": ["count", "next", "previous", "results"], "properties": {
            "count": {"type": "integer"}, "next": {"type": "string", "nullable": True},
            "previous": {"type": "string", "nullable": True}, "results": {"type": "array", "items": item}}}
        operation["parameters"] = _list_parameters(resource)
        operation["responses"] = _responses(400, 401, 403, status_200=_json(
            "all matching objects; a page of them with ?limit=", {"oneOf": [{"type": "array", "items": item}, page]}))
    elif action == "delete":
        operation["responses"] = _responses(401, 403, 404, 504, status_204={"description": "deleted"})
    else:
        status = "201" if action == "create" else "200"
        errors = (400, 401, 403, 422, 504) if action == "create" else (401, 403, 404) if action == "retrieve" \
            else (400, 401, 403, 404, 504)
        operation["responses"] = _responses(*errors, **{f"status_{status}": _json(action, item)})
    if action == "create":
        operation["parameters"] = [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                                    "description": "sent again with the same key and data, the create makes nothing "
                                                   "new and answers with the first one's object"}]
    if action in ("create", "update", "patch"):
        body = {"$ref": f"#/components/schemas/Patched{resource.verbose_name}"} if action == "patch" else item
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": body}, "application/x-www-form-urlencoded": {"schema": body}}}
    return operation


def _add_auth_paths(spec: APISpec) -> None:
    credentials = {"required": True, "content": {
        media: {"schema": {"$ref": "#/components/schemas/Credentials"}}
        for media in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")}}
    me = _json("the user", {"$ref": "#/components/schemas/Me"})
    spec.path("/api/auth/token/", operations={"post": {
        "operationId": "auth_token", "tags": ["auth"], "security": PUBLIC, "requestBody": credentials,
        "responses": _responses(400, 429, status_200=_json("the user's token", {"$ref": "#/components/schemas/Token"}))}})
    spec.path("/api/auth/login/", operations={"post": {
        "operationId": "auth_login", "tags": ["auth"], "security": PUBLIC, "requestBody": credentials,
        "responses": _responses(400, 403, 429, status_200=me)}})
    spec.path("/api/auth/logout/", operations={"post": {
        "operationId": "auth_logout", "tags": ["auth"], "security": PUBLIC,
        "responses": _responses(403, status_204={"description": "logged out"})}})
    spec.path("/api/auth/me/", operations={"get": {
        "operationId": "auth_me", "tags": ["auth"], "responses": _responses(401, status_200=me)}})
    spec.path("/api/openapi.json", operations={"get": {
        "operationId": "openapi", "tags": ["meta"], "security": PUBLIC,
        "responses": {"200": _json("this document", {"type": "object"})}}})
    spec.path("/api/asyncapi.json", operations={"get": {
        "operationId": "asyncapi", "tags": ["meta"], "security": PUBLIC,
        "responses": {"200": _json("the AsyncAPI 3.0 document of /ws/", {"type": "object"})}}})


def build_openapi(resources: tuple[Resource, ...]) -> dict[str, Any]:
    spec, _ = _new_spec()
    for resource in resources:
        spec.components.schema(resource.verbose_name, schema=resource.schema_instance)
        # The one other instance: what a PATCH body may leave out (every field optional).
        spec.components.schema(f"Patched{resource.verbose_name}", schema=resource.schema(partial=True))
        for path, methods in resource_routes(resource):
            operations = {method.lower(): _operation(resource, action) for method, action in methods.items()}
            parameters = ([{"name": "pk", "in": "path", "required": True, "schema": {"type": "integer"}}]
                          if "{pk}" in path else [])
            spec.path(path, operations=operations, parameters=parameters)
    _add_auth_paths(spec)
    document = spec.to_dict()
    document["security"] = [{"tokenAuth": []}, {"cookieAuth": []}]
    return document


async def openapi_view(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])
