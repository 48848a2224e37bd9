"""The REST mirror, /api/<resource>/[<pk>/]: DRF-shaped HTTP over the same resource actions as /ws/."""
from __future__ import annotations

import time
from typing import Any, Mapping

from aiohttp import web
from marshmallow import Schema

from schemas.fields import DateTime, Text, parse_integer
from server.resources.declaration import Call, Resource
from server.resources.dispatch import run_action
from server.web.authenticate import authenticate
from server.web.http import Handler, error_response, json_response, read_body
from server.web.keys import CONFIG, DB, METRICS, RESOURCES

# HTTP method -> action, on the collection and on one object (DRF's ModelViewSet routes).
COLLECTION = {"GET": "list", "POST": "create"}
ITEM = {"GET": "retrieve", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LIST_OPTIONS = ("limit", "offset", "ordering")
IGNORED_PARAMETERS = ("format",)  # DRF's ?format=json: we only speak JSON anyway


def resource_routes(resource: Resource) -> list[tuple[str, dict[str, str]]]:
    """(path, {method: action}) for the actions the resource has; the OpenAPI document reads this too."""
    routes = []
    for path, methods in ((f"/api/{resource.name}/", COLLECTION), (f"/api/{resource.name}/{{pk}}/", ITEM)):
        served = {method: action for method, action in methods.items() if action in resource.actions}
        if served:
            routes.append((path, served))
    return routes


def allow_header(methods: Mapping[str, str]) -> str:
    return ", ".join([*methods, *(["HEAD"] if "GET" in methods else [])])


def query_value(field: Any, lookup: str, text: str) -> Any:
    """A query-string value as the filter grammar of /ws/ expects it (true/false, integers)."""
    if lookup.endswith("__isnull"):
        return {"true": True, "1": True, "false": False, "0": False}.get(text.lower(), text)
    number = None if isinstance(field, (Text, DateTime)) else parse_integer(text)
    return text if number is None else number


def list_payload(request: web.Request, schema: Schema) -> dict[str, Any]:
    """?limit=&offset=&ordering= and every other parameter as a filter (the last of repeats)."""
    payload: dict[str, Any] = {}
    filters: dict[str, Any] = {}
    for key in request.query:
        text = request.query.getall(key)[-1]
        if key in LIST_OPTIONS:
            payload[key] = text
        elif key not in IGNORED_PARAMETERS:
            filters[key] = query_value(schema.fields.get(key.partition("__")[0]), key, text)
    if filters:
        payload["filters"] = filters
    return payload


def form_nulls(data: Any, schema: Schema) -> Any:
    """In a form, an empty nullable field means null (DRF's rule for HTML input)."""
    if not isinstance(data, dict):
        return data
    return {key: None if value == "" and getattr(schema.fields.get(key), "allow_none", False) else value
            for key, value in data.items()}


async def build_payload(request: web.Request, resource: Resource, action: str) -> dict[str, Any]:
    """The same payload a /ws/ frame would carry for this action."""
    schema = resource.schema_instance
    if action == "list":
        return list_payload(request, schema)
    payload: dict[str, Any] = {}
    if "pk" in request.match_info:
        payload["pk"] = request.match_info["pk"]
    if action in ("create", "update", "patch"):
        data = await read_body(request)
        payload["data"] = data if request.content_type.endswith("json") else form_nulls(data, schema)
    return payload


def page(request: web.Request, data: dict[str, Any]) -> dict[str, Any]:
    """DRF's LimitOffsetPagination body, with absolute next/previous links (query keys sorted, as DRF)."""
    count, limit, offset = data["count"], data["limit"], data["offset"]

    def link(new_offset: int | None) -> str:
        query = {key: request.query.getall(key)[-1] for key in request.query}
        query["limit"] = str(limit)
        query.pop("offset", None)
        if new_offset:
            query["offset"] = str(new_offset)
        return str(request.url.with_query(sorted(query.items())))

    return {"count": count,
            "next": link(offset + limit) if offset + limit < count else None,
            "previous": link(max(offset - limit, 0)) if offset > 0 else None,
            "results": data["results"]}


async def serve_action(request: web.Request, resource: Resource, methods: Mapping[str, str]) -> web.Response:
    """Authenticate, check the role, run the resource's action, shape the answer (DRF's order:
    401, 403, 405, then the body is read)."""
    app, started = request.app, time.perf_counter()
    method = "GET" if request.method == "HEAD" else request.method
    action = methods.get(method)
    # A cookie may only write from a trusted page (or none): CSRF guard; tokens are not cookies.
    safe = request.method in SAFE_METHODS
    principal = await authenticate(request, app[DB], origins=None if safe else app[CONFIG].allowed_origins)
    call = Call(app[DB], principal.user, resource, app[CONFIG].max_page_size)

    async def payload() -> dict[str, Any]:
        return await build_payload(request, resource, action or "")

    outcome = await run_action(call, action, payload, asked=None if action else request.method)
    app[METRICS].request_answered(resource.name, action or "(unknown action)", outcome.status,
                                  time.perf_counter() - started, "rest")
    if outcome.error is not None:
        allow = {"Allow": allow_header(methods)} if outcome.status == 405 else None
        return error_response(outcome.error, resource.verbose_name, allow)
    if action == "list" and isinstance(outcome.data, dict):
        return json_response(page(request, outcome.data), outcome.status)
    return json_response(outcome.data, outcome.status)


def action_handler(resource: Resource, methods: Mapping[str, str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve_action(request, resource, methods)
    return handler


def add_resource_routes(app: web.Application) -> None:
    """Each method a resource serves gets its own route (so the router lists them); a catch-all
    route per path answers the rest after authentication, as DRF does: 401/403 before 405."""
    for resource in app[RESOURCES].values():
        for path, methods in resource_routes(resource):
            handler = action_handler(resource, methods)
            for method in methods:
                app.router.add_route(method, path, handler)
            app.router.add_route("*", path, handler)
