"""The REST mirror, /api/<resource>/[<pk>/]: DRF-shaped HTTP over the same resource actions as /ws/."""
from __future__ import annotations

import sys
import time
from typing import Any, Mapping

from aiohttp import web
from marshmallow import Schema

from schemas.fields import DateTime, Text, parse_integer
from server.errors import MethodNotAllowed, PathNotFound
from server.resources.declaration import Call, Resource
from server.resources.dispatch import run_action
from server.web.authenticate import Principal, authenticate
from server.web.http import VIEW, Handler, error_response, json_response, negotiate, read_body
from server.web.keys import CONFIG, DB, METRICS, RESOURCES
from server.web.metadata import metadata, root_metadata

# HTTP method -> action, on the collection and on one object (DRF's ModelViewSet routes).
COLLECTION = {"GET": "list", "POST": "create"}
ITEM = {"GET": "retrieve", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LIST_OPTIONS = ("limit", "offset", "ordering")
# DRF's router: an id has no dot or slash, and every path may end in .<format> (with or without /).
PK = "{pk:[^/.]+}"
FORMAT = ".{format:[a-z0-9]+}"
INT_DIGITS = sys.get_int_max_str_digits() or 4300  # how long a number Django's int() reads


def resource_routes(resource: Resource) -> list[tuple[str, dict[str, str]]]:
    """(path, {method: action}) for the actions the resource has; the OpenAPI document reads this too."""
    routes = []
    for path, methods in ((f"/api/{resource.name}/", COLLECTION), (f"/api/{resource.name}/{{pk}}/", ITEM)):
        served = {method: action for method, action in methods.items() if action in resource.actions}
        if served:
            routes.append((path, served))
    return routes


def allow_header(methods: Mapping[str, str] | tuple[str, ...]) -> str:
    """DRF's Allow header, on every answer of the path."""
    return ", ".join([*methods, *(["HEAD"] if "GET" in methods else []), "OPTIONS"])


def query_value(field: Any, lookup: str, text: str) -> Any:
    """A query-string value as the filter grammar of /ws/ expects it (true/false, integers)."""
    if lookup.endswith("__isnull"):
        return {"true": True, "1": True, "false": False, "0": False}.get(text.lower(), text)
    number = None if isinstance(field, (Text, DateTime)) else parse_integer(text)
    return text if number is None else number


def list_payload(request: web.Request, resource: Resource) -> dict[str, Any]:
    """?limit=&offset=&ordering= and the parameters on filter fields (the last of repeats).
    Any other parameter is ignored, as DRF ignores them (?_=123 cache busters, ?page=, ?search=)."""
    payload: dict[str, Any] = {}
    filters: dict[str, Any] = {}
    for key in request.query:
        text = request.query.getall(key)[-1]
        if key in LIST_OPTIONS:
            payload[key] = text
        elif (name := key.partition("__")[0]) in resource.filter_fields:
            filters[key] = query_value(resource.schema_instance.fields[name], key, text)
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
    if action == "list":
        return list_payload(request, resource)
    payload: dict[str, Any] = {}
    if "pk" in request.match_info:
        payload["pk"] = path_pk(request)
    if action in ("create", "update", "patch"):
        data = await read_body(request)
        payload["data"] = data if request.content_type.endswith("json") else form_nulls(data, resource.schema_instance)
    if action == "create" and "Idempotency-Key" in request.headers:
        payload["idempotency_key"] = request.headers["Idempotency-Key"]  # as /ws/ carries it
    return payload


def path_pk(request: web.Request) -> int:
    """The id in the path; one that is no integer at all is DRF's generic 404 ("Not found."), a
    number that names no row the resource's own. Digits as on /ws/, as many as int() reads."""
    pk = parse_integer(request.match_info["pk"], digits=INT_DIGITS)
    if pk is None:
        raise PathNotFound()
    return pk


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


async def view_principal(request: web.Request, allow: str) -> Principal:
    """What every DRF view does first: negotiate the answer's format (406), then authenticate (401).
    A cookie may only write from a trusted page (or none): CSRF guard; tokens are not cookies."""
    negotiate(request, allow)
    safe = request.method in SAFE_METHODS
    return await authenticate(request, request.app[DB], origins=None if safe else request.app[CONFIG].allowed_origins)


async def serve_action(request: web.Request, resource: Resource, methods: Mapping[str, str]) -> web.Response:
    """Authenticate, check the role, run the resource's action, shape the answer (DRF's order:
    406, 401, 403, 405, then the object, then the body is read)."""
    app, started = request.app, time.perf_counter()
    principal = await view_principal(request, allow_header(methods))
    call = Call(app[DB], principal.user, resource, app[CONFIG].max_page_size)
    indent = request[VIEW].indent
    if request.method == "OPTIONS":
        return json_response(await options_body(request, call, methods), indent=indent)
    action = methods.get("GET" if request.method == "HEAD" else request.method)

    async def payload() -> dict[str, Any]:
        return await build_payload(request, resource, action or "")

    outcome = await run_action(call, action, payload, asked=None if action else request.method)
    app[METRICS].request_answered(resource.name, action or "(unknown action)", outcome.status,
                                  time.perf_counter() - started, "rest")
    if outcome.error is not None:
        return error_response(outcome.error, resource.verbose_name, indent)
    if action == "list" and isinstance(outcome.data, dict):
        return json_response(page(request, outcome.data), outcome.status, indent=indent)
    return json_response(outcome.data, outcome.status, indent=indent)


async def options_body(request: web.Request, call: Call, methods: Mapping[str, str]) -> dict[str, Any]:
    """DRF's metadata: POST (on the list) or PUT (on an object that exists) when this user may."""
    writes = []
    for method in ("POST", "PUT"):
        action = methods.get(method)
        if action is None or not call.resource.allows(call.user, action):
            continue
        if "pk" in request.match_info:  # DRF describes PUT only for an object it can fetch
            try:
                exists = await run_action(call, "retrieve", {"pk": path_pk(request)})
            except PathNotFound:
                continue
            if exists.error is not None:
                continue
        writes.append(method)
    return metadata(call.resource, "pk" in request.match_info, writes)


async def api_root(request: web.Request) -> web.Response:
    """DRF's DefaultRouter root: each resource's absolute URL (with the .json suffix if asked so)."""
    await view_principal(request, allow_header(("GET",)))
    indent = request[VIEW].indent
    if request.method == "OPTIONS":
        return json_response(root_metadata(), indent=indent)
    if request.method not in ("GET", "HEAD"):
        return error_response(MethodNotAllowed([f'Method "{request.method}" not allowed.']), indent=indent)
    suffix = ".json" if "format" in request.match_info else "/"
    return json_response({name: str(request.url.with_path(f"/api/{name}{suffix}").with_query(None))
                          for name in request.app[RESOURCES]}, indent=indent)


def action_handler(resource: Resource, methods: Mapping[str, str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve_action(request, resource, methods)
    return handler


def add_resource_routes(app: web.Application) -> None:
    """Each method a resource serves gets its own route (so the router and OpenAPI list them); a
    catch-all route per path answers the rest after authentication, as DRF does: 401/403 before
    405. The .json forms of each path and the API root are catch-alls too."""
    for resource in app[RESOURCES].values():
        for path, methods in resource_routes(resource):
            handler = action_handler(resource, methods)
            route = path.replace("{pk}", PK)
            for method in methods:
                app.router.add_route(method, route, handler)
            app.router.add_route("*", route, handler)
            suffixed = route.removesuffix("/") + FORMAT
            app.router.add_route("*", suffixed, handler)
            app.router.add_route("*", suffixed + "/", handler)
    for path in ("/api/", "/api/" + FORMAT, "/api/" + FORMAT + "/"):
        app.router.add_route("*", path, api_root)
