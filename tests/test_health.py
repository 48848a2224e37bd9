"""/healthz, /readyz and /metrics: unauthenticated, terse, and /metrics readable by Prometheus's own parser."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import AccessLogger, create_app
from server.config import Config
from tests.conftest import TEST_SECRET, Socket, create, scrape, value


async def test_healthz_and_readyz_say_nothing_else(client: TestClient) -> None:
    for path, text in (("/healthz", "ok\n"), ("/readyz", "ready\n")):
        response = await client.get(path)
        assert (response.status, await response.text()) == (200, text)
        assert response.headers["Cache-Control"] == "no-store"


async def test_metrics_move_with_traffic(client: TestClient, ws: Socket, token: str) -> None:
    before = await scrape(client)
    assert value(before, "dashboard_websockets_open") == 1
    await create(ws)
    assert (await ws.request("retrieve", pk=999999))["response_status"] == 404
    assert (await ws.request("x" * 200))["response_status"] == 405  # client text never becomes a label
    assert (await ws.call("not json"))["payload"]["response_status"] == 400
    assert (await client.get("/ws/?token=" + "0" * 40)).status == 401
    after = await scrape(client)
    assert value(after, "dashboard_websocket_frames_total", direction="in") == 4
    assert value(after, "dashboard_websocket_frames_total", direction="out") == 4
    assert value(after, "dashboard_requests_total", stream="patients", action="create", status="201") == 1
    assert value(after, "dashboard_requests_total", stream="patients", action="retrieve", status="404") == 1
    assert value(after, "dashboard_requests_total", stream="patients", action="(unknown action)", status="405") == 1
    assert value(after, "dashboard_requests_total", stream="(invalid frame)", action="(none)", status="400") == 1
    assert value(after, "dashboard_request_duration_seconds_count", stream="patients", action="create") == 1
    assert value(after, "dashboard_handshakes_rejected_total", status="401") == 1
    assert value(after, "dashboard_db_pool_connections", state="idle") >= 1
    assert value(after, "dashboard_db_pool_connections", state="waiting") == 0
    assert ("dashboard_change_listener_lag_seconds", ()) in after
    await ws.ws.close()
    # The server counts the socket closed when its handler has finished (after its writer task):
    # a moment after the client saw the close, so look until it shows (bounded).
    for _ in range(100):
        if value(await scrape(client), "dashboard_websockets_open") == 0:
            break
        await asyncio.sleep(0.05)
    assert value(await scrape(client), "dashboard_websockets_open") == 0


async def test_metrics_only_for_the_allowed_networks(client: TestClient) -> None:
    # Through a proxy on this host, the address checked is the one the proxy appended.
    assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status == 404
    assert (await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.9"})).status == 404
    assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.1"})).status == 200


async def test_metrics_allow_list_is_configurable(aiohttp_client: Any, database_url: str) -> None:
    for allow, status in (("", 404), ("10.0.0.0/8", 404), ("127.0.0.0/8", 200)):
        server = TestServer(create_app(Config(metrics_allow=allow, session_key=TEST_SECRET, database_url=database_url)))
        await server.start_server(access_log_class=AccessLogger)
        client = await aiohttp_client(server)
        assert (await client.get("/metrics")).status == status
        await client.close()
    with pytest.raises(ValueError):
        create_app(Config(metrics_allow="not-a-network", session_key=TEST_SECRET, database_url=database_url))


@pytest.mark.embedded
async def test_readyz_follows_the_database(aiohttp_client: Any) -> None:
    """A PostgreSQL of its own, stopped and started again under a serving app."""
    from server.store.embedded import start_embedded

    base = Path(tempfile.mkdtemp(prefix="dashboard-readyz-"))
    base.chmod(0o755)  # as root, the cluster's system user must reach it
    embedded = start_embedded(base / "var")
    try:
        config = Config(db_timeout_seconds=2.0, session_key=TEST_SECRET, database_url=embedded.url)
        server = TestServer(create_app(config))
        await server.start_server(access_log_class=AccessLogger)
        client = await aiohttp_client(server)
        assert (await client.get("/readyz")).status == 200
        embedded.stop()
        response = await client.get("/readyz")
        assert (response.status, await response.text()) == (503, "not ready\n")
        assert (await client.get("/healthz")).status == 200  # alive all the same
        embedded = start_embedded(base / "var")
        # Ready again once the database answers and the change listener has reconnected and caught
        # up (it backs off up to 5 s between attempts): look until it says so, bounded.
        for _ in range(200):
            if (await client.get("/readyz")).status == 200:
                break
            await asyncio.sleep(0.05)
        assert (await client.get("/readyz")).status == 200
        await client.close()
    finally:
        embedded.stop()
        shutil.rmtree(base, ignore_errors=True)
