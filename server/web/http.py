"""HTTP as Django REST framework answers it: JSON bodies, request bodies parsed, every error mapped in one place."""
from __future__ import annotations

import codecs
import dataclasses
import logging
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from server.errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PathNotFound,
    UnsupportedMediaType,
)
from server.web.codec import decode, render

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass
class View:
    """What a DRF view puts on every answer of its own, errors included."""

    allow: str                  # the Allow header: the methods of the path
    indent: int | None = None   # from `Accept: application/json; indent=4`


VIEW = web.RequestKey("view", View)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                  indent: int | None = None) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(text=render(data, indent), status=status, content_type="application/json", headers=headers)


def error_body(exc: ApiError, verbose_name: str | None = None) -> Any:
    """The one mapping of the server's errors to DRF's HTTP bodies; a resource's 404 names it."""
    if type(exc) is NotFound and verbose_name is not None:
        return {"detail": f"No {verbose_name} matches the given query."}
    return exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}


def error_response(exc: ApiError, verbose_name: str | None = None, indent: int | None = None) -> web.Response:
    return json_response(error_body(exc, verbose_name), exc.status, exc.headers, indent)


def _accepted(item: str) -> tuple[int, int | None] | None:
    """(precedence, indent) of one Accept item that JSON satisfies, as DRF ranks it; else None."""
    media_type, *parameters = (part.strip() for part in item.split(";"))
    main, _, sub = media_type.lower().partition("/")
    if main not in ("*", "application") or sub not in ("*", "json"):
        return None
    params = dict(parameter.partition("=")[::2] for parameter in parameters)
    # DRF ranks by specificity only (q is ignored): */*, then type/*, then a full type, then with parameters.
    precedence = 0 if main == "*" else 1 if sub == "*" else 2 if set(params) <= {"q"} else 3
    try:
        indent = max(min(int(params["indent"]), 8), 0) or None  # DRF: indent=0 means none
    except (KeyError, ValueError):
        indent = None
    return precedence, indent


def negotiate(request: web.Request, allow: str) -> None:
    """DRF's content negotiation, before authentication as there: only JSON is spoken, so a
    format (?format=, a .json suffix) must be json (else 404) and Accept must admit it (else 406)."""
    view = request[VIEW] = View(allow)
    requested = request.match_info.get("format") or request.query.get("format")
    if requested and requested != "json":
        raise PathNotFound()
    accepted = [found for item in request.headers.get("Accept", "*/*").split(",") if (found := _accepted(item))]
    if not accepted:
        raise NotAcceptable()
    view.indent = max(accepted, key=lambda found: found[0])[1]  # the first of the most specific


async def read_body(request: web.Request) -> Any:
    """The body as DRF's parsers see it: JSON, a form (urlencoded or multipart), or {} when empty."""
    if not request.body_exists:
        return {}
    media_type = request.content_type
    if media_type == "application/json":  # DRF's parser takes no other (application/vnd.api+json: 415)
        raw = await request.read()
        if not raw:
            return {}
        try:
            return decode(raw.decode(_charset(request)))
        except ValueError as exc:
            raise BadRequest([f"JSON parse error - {exc}"]) from None
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except (HttpProcessingError, ValueError) as exc:  # a malformed multipart part is the client's fault
            kind = "Multipart form" if media_type == "multipart/form-data" else "Form"
            raise BadRequest([f"{kind} parse error - {type(exc).__name__}"]) from None
        # The last value of a repeated key, as Django's QueryDict.get gives; files are ignored.
        return {key: values[-1] for key in form
                if (values := [value for value in form.getall(key) if isinstance(value, str)])}
    header = request.headers.get("Content-Type", "")
    raise UnsupportedMediaType([f'Unsupported media type "{header}" in request.'])


def _charset(request: web.Request) -> str:
    """The body's charset; one Python does not know is ignored, as Django does (utf-8)."""
    try:
        return codecs.lookup(request.charset or "utf-8").name
    except LookupError:
        return "utf-8"


async def _slash_redirect(request: web.Request) -> web.Response | None:
    """Django's APPEND_SLASH: a path that exists with a slash added is a 301 there, query kept."""
    path, mark, query = request.raw_path.partition("?")
    if path.endswith("/"):
        return None
    location = f"{path}/{mark}{query}"
    found = await request.app.router.resolve(request.clone(rel_url=location))
    if found.http_exception is not None and found.http_exception.status != 405:
        return None
    return web.Response(status=301, headers={"Location": location}, content_type="text/html", charset="utf-8")


@web.middleware
async def http_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every HTTP answer's errors: the server's own (from authentication, limits, the auth
    endpoints) as DRF JSON anywhere; under /api/ also the router's 404/405/413, and an unexpected
    fault as a logged 500. A DRF-like view's answers all carry its Allow header."""
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc, indent=view.indent if (view := request.get(VIEW)) else None)
    except web.HTTPException as exc:
        if not (request.path == "/api" or request.path.startswith("/api/")) or exc.status < 400:
            raise
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allow = ", ".join(sorted(exc.allowed_methods))
            return error_response(MethodNotAllowed([f'Method "{request.method}" not allowed.'], allow))
        if exc.status == 404:
            return await _slash_redirect(request) or error_response(PathNotFound())
        return json_response({"detail": exc.reason}, exc.status)
    except Exception:
        if not request.path.startswith("/api/"):
            raise
        log.exception("request failed: %s %s", request.method, request.path)
        return error_response(InternalError())
    if (view := request.get(VIEW)) is not None:
        response.headers.setdefault("Allow", view.allow)
    return response
