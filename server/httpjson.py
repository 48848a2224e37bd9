"""JSON over HTTP as Django REST framework renders it: compact, UTF-8, {"detail": ...} errors."""
from __future__ import annotations

import json
from typing import Any, Mapping

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError


def render(data: Any) -> str:
    """DRF's JSONRenderer: no spaces after separators, non-ASCII left as is."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(text=render(data), status=status, content_type="application/json", headers=headers)


def json_error(status: type[web.HTTPException], body: Any,
               headers: Mapping[str, str] | None = None) -> web.HTTPException:
    """An HTTP error to raise, with a JSON body (401s name the Token scheme, as DRF's do)."""
    extra = dict(headers or {})
    if status is web.HTTPUnauthorized:
        extra.setdefault("WWW-Authenticate", "Token")
    return status(text=render(body), content_type="application/json", headers=extra or None)


def method_not_allowed(method: str, allow: str) -> web.HTTPException:
    """405 with DRF's text; `allow` is the Allow header, in the order we list the methods."""
    exc = web.HTTPMethodNotAllowed(method, (), text=render({"detail": f'Method "{method}" not allowed.'}),
                                   content_type="application/json")
    exc.headers["Allow"] = allow
    return exc


def detail_error(status: type[web.HTTPException], detail: str,
                 headers: Mapping[str, str] | None = None) -> web.HTTPException:
    """DRF's {"detail": "..."} error."""
    return json_error(status, {"detail": detail}, headers)


def _strict_constant(name: str) -> Any:
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


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
            return json.loads(raw.decode(request.charset or "utf-8"), parse_constant=_strict_constant)
        except (ValueError, LookupError) as exc:
            raise detail_error(web.HTTPBadRequest, f"JSON parse error - {exc}") from None
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except (HttpProcessingError, ValueError) as exc:  # a malformed multipart part is the client's fault
            kind = "Multipart form" if media_type == "multipart/form-data" else "Form"
            raise detail_error(web.HTTPBadRequest, f"{kind} parse error - {type(exc).__name__}") from None
        # The last value of a repeated key, as Django's QueryDict.get gives; files are ignored.
        return {key: values[-1] for key in form
                if (values := [value for value in form.getall(key) if isinstance(value, str)])}
    header = request.headers.get("Content-Type", "")
    raise detail_error(web.HTTPUnsupportedMediaType, f'Unsupported media type "{header}" in request.')
