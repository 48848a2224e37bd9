"""HTTP as Django REST framework answers it: JSON bodies, request bodies parsed, every error mapped in one place."""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from server.errors import ApiError, BadRequest, InternalError, MethodNotAllowed, NotFound, UnsupportedMediaType
from server.web.codec import decode, render

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(text=render(data), status=status, content_type="application/json", headers=headers)


def error_body(exc: ApiError, verbose_name: str | None = None) -> Any:
    """The one mapping of the server's errors to DRF's HTTP bodies; a resource's 404 names it."""
    if isinstance(exc, NotFound) and verbose_name is not None:
        return {"detail": f"No {verbose_name} matches the given query."}
    return exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}


def error_response(exc: ApiError, verbose_name: str | None = None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response(error_body(exc, verbose_name), exc.status, {**exc.headers, **(headers or {})})


async def read_body(request: web.Request) -> Any:
    """The body as DRF's parsers see it: JSON, a form (urlencoded or multipart), or {} when empty."""
    if not request.body_exists:
        return {}
    media_type = request.content_type
    if media_type == "application/json" or media_type.endswith("+json"):
        raw = await request.read()
        if not raw:
            return {}
        try:
            return decode(raw.decode(request.charset or "utf-8"))
        except (ValueError, LookupError) as exc:
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


@web.middleware
async def http_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every HTTP answer's errors: the server's own (from authentication, limits, the auth
    endpoints) as DRF JSON anywhere; under /api/ also the router's 404/405/413, and an unexpected
    fault as a logged 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allow = ", ".join(sorted(exc.allowed_methods))
            return error_response(MethodNotAllowed([f'Method "{request.method}" not allowed.'], allow))
        return json_response({"detail": "Not found." if exc.status == 404 else exc.reason}, exc.status)
    except Exception:
        if not request.path.startswith("/api/"):
            raise
        log.exception("request failed: %s %s", request.method, request.path)
        return error_response(InternalError())
