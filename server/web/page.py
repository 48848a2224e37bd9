"""The ward dashboard page: `/` and `/static/` from files inside the package, with strict headers."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page talks only to its own origin; nothing inline, nothing from elsewhere, never framed. A
# constant, never built from the request: connect-src 'self' covers the same origin's ws:/wss:.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def page_headers(request: web.Request) -> dict[str, str]:
    """Security headers for the page and its files."""
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        # No build step, so no hashed file names: let browsers keep copies but revalidate them
        # (ETag / Last-Modified make that a 304), so an upgrade is seen on the next load.
        "Cache-Control": "no-cache",
    }


async def index_view(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers=page_headers(request))


async def _add_page_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/static/"):
        response.headers.update(page_headers(request))


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/", index_view)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.on_response_prepare.append(_add_page_headers)
