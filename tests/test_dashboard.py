"""The dashboard page's files and headers (the page itself runs in tests/test_dashboard_e2e.py)."""
from __future__ import annotations

import pytest

from server.web.page import STATIC_DIR

PAGE_FILES = ("app.js", "socket.js", "ward.js", "news2.js", "style.css")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


async def test_the_page_is_served_at_the_root_with_strict_headers(client) -> None:
    async with client.get("/") as response:
        body = await response.text()
        headers = response.headers
    assert response.status == 200 and headers["Content-Type"].startswith("text/html")
    assert body == (STATIC_DIR / "index.html").read_text()
    assert headers["Content-Security-Policy"] == CSP  # a constant: 'self' covers the same origin's ws:/wss:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-cache"
    assert "ETag" in headers or "Last-Modified" in headers  # so a reload revalidates cheaply


@pytest.mark.parametrize("name", PAGE_FILES)
async def test_static_files_with_types_and_headers(client, name: str) -> None:
    async with client.get(f"/static/{name}") as response:
        body = await response.read()
    assert response.status == 200 and body == (STATIC_DIR / name).read_bytes()
    kind = "text/css" if name.endswith(".css") else ("text/javascript", "application/javascript")
    assert response.headers["Content-Type"].split(";")[0] in kind
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_the_page_needs_nothing_from_elsewhere() -> None:
    """Closed hospital networks: no CDN, no external font, no inline script or style (the CSP forbids them)."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name
    index = (STATIC_DIR / "index.html").read_text()
    assert "<script>" not in index and "<style" not in index and " style=" not in index and " on" + "click=" not in index


async def test_unknown_static_files_are_404_and_no_listing(client) -> None:
    for path in ("/static/missing.js", "/static/", "/static/../server/web/authenticate.py"):
        async with client.get(path) as response:
            assert response.status in (403, 404), path
