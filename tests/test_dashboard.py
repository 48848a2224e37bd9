"""The dashboard page's files and headers, and its sliding session (the page itself runs in
tests/test_dashboard_e2e.py)."""
from __future__ import annotations

import dataclasses

import psycopg2
import pytest

from server.accounts.users import create_user
from server.config import Config
from server.web.keys import DB
from server.web.page import STATIC_DIR
from tests.conftest import ANY_ID
from tests.test_rest import call

PAGE_FILES = ("app.js", "socket.js", "ward.js", "news2.js", "forms.js", "rows.js", "spark.js", "entry.js", "style.css",
              "favicon.svg")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched
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
    kind = {"css": "text/css", "svg": "image/svg+xml"}.get(name.rsplit(".", 1)[1], ("text/javascript", "application/javascript"))
    assert response.headers["Content-Type"].split(";")[0] in kind
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_the_page_needs_nothing_from_elsewhere() -> None:
    """Closed hospital networks: no CDN, no external font, no inline script or style (the CSP forbids them)."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text().replace(SVG_NAMESPACE, "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name
    index = (STATIC_DIR / "index.html").read_text()
    assert "<script>" not in index and "<style" not in index and " style=" not in index and " on" + "click=" not in index


async def test_unknown_static_files_are_404_and_no_listing(client) -> None:
    for path in ("/static/missing.js", "/static/", "/static/../server/web/authenticate.py"):
        async with client.get(path) as response:
            assert response.status in (403, 404), path


SESSION_MAX_AGE = 3600


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, session_max_age_seconds=SESSION_MAX_AGE)


def seconds_left(database_url: str, *, set_to: int | None = None) -> float:
    """The one login session's remaining life in the database (first shortened to `set_to` seconds)."""
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        if set_to is not None:
            cursor.execute("UPDATE login_sessions SET expires_at = now() + make_interval(secs => %s)", (set_to,))
        cursor.execute("SELECT extract(epoch FROM expires_at - now()) FROM login_sessions")
        (left,), = cursor.fetchall()
    connection.close()
    return float(left)


async def test_the_session_slides_each_time_the_page_asks_who_is_signed_in(client) -> None:
    """A wall display stays signed in while it is shown: /api/auth/me/ (asked on load and hourly by the
    page) gives the session a full session_max_age_seconds again, in the database and in the cookie."""
    await create_user(client.app[DB], "wall", "display password")
    assert (await call(client, "POST", "/api/auth/login/", json={"username": "wall", "password": "display password"}))[0] == 200
    assert seconds_left(client.app_database_url, set_to=60) <= 60  # nearly used up
    async with client.get("/api/auth/me/") as response:
        assert response.status == 200
        assert await response.json() == {"id": ANY_ID, "username": "wall", "role": "editor"}
        cookie = response.cookies["dashboard_session"]
    assert cookie["max-age"] == str(SESSION_MAX_AGE) and cookie["httponly"]
    assert SESSION_MAX_AGE - 60 < seconds_left(client.app_database_url) <= SESSION_MAX_AGE
    assert (await call(client, "GET", "/api/auth/me/"))[0] == 200  # the renewed cookie still works


async def test_an_expired_session_is_not_revived(client) -> None:
    await create_user(client.app[DB], "wall", "display password")
    assert (await call(client, "POST", "/api/auth/login/", json={"username": "wall", "password": "display password"}))[0] == 200
    seconds_left(client.app_database_url, set_to=-1)
    async with client.get("/api/auth/me/") as response:
        assert response.status == 401 and "dashboard_session" not in response.cookies
    with psycopg2.connect(client.app_database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT expires_at <= now() FROM login_sessions")
        assert cursor.fetchall() == [(True,)]
    connection.close()
