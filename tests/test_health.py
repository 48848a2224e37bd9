"""/healthz, /readyz and /metrics: unauthenticated, terse, and /metrics readable by Prometheus's own parser."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from server import __version__

from server.app import AccessLogger, create_app
from server.config import Config
from tests.conftest import ADA, TEST_SECRET, Socket, create, scrape, value
from tests.pg import migrate_url


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
    assert value(after, "dashboard_requests_total", transport="ws", stream="patients", action="create", status="201") == 1
    assert value(after, "dashboard_requests_total", transport="ws", stream="patients", action="retrieve", status="404") == 1
    assert value(after, "dashboard_requests_total", transport="ws", stream="patients", action="(unknown action)", status="405") == 1
    assert value(after, "dashboard_requests_total", transport="ws", stream="(invalid frame)", action="(none)", status="400") == 1
    assert value(after, "dashboard_request_duration_seconds_count", transport="ws", stream="patients", action="create") == 1
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


async def test_metrics_only_for_the_allowed_networks(client: TestClient, aiohttp_client: Any, database_url: str) -> None:
    # A request relayed by a proxy not in trusted_proxies (none by default) is nobody's scrape.
    assert (await client.get("/metrics")).status == 200
    for relayed in ("203.0.113.9", "127.0.0.1", "203.0.113.9, 127.0.0.1"):
        assert (await client.get("/metrics", headers={"X-Forwarded-For": relayed})).status == 404
    # Through a trusted proxy, the address checked is the client's: the rightmost not a trusted proxy.
    server = TestServer(create_app(Config(trusted_proxies="127.0.0.1/32", session_key=TEST_SECRET,
                                          database_url=database_url)))
    await server.start_server(access_log_class=AccessLogger)
    proxied = await aiohttp_client(server)
    for relayed, status in (("203.0.113.9", 404), ("127.0.0.1, 203.0.113.9", 404), ("203.0.113.9, 127.0.0.1", 404),
                            ("127.0.0.1", 200), ("::1", 200), ("not an address", 404)):
        assert (await proxied.get("/metrics", headers={"X-Forwarded-For": relayed})).status == status, relayed


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
        await migrate_url(embedded.url)  # the listener records its mark in listener_marks
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


def documented_metrics() -> set[str]:
    """The families docs/deploy.md's metrics table lists, as Prometheus's parser names them (no _total)."""
    text = (Path(__file__).parent.parent / "docs/deploy.md").read_text()
    names = re.findall(r"^\| `((?:dashboard|process)_\w+)` \|", text, re.MULTILINE)
    return {name.removesuffix("_total") for name in names}


def grafana_metrics() -> set[str]:
    """Every metric the shipped Grafana dashboard queries, by family name."""
    dashboard = json.loads((Path(__file__).parent.parent / "docs/grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    names = {name for expr in exprs for name in re.findall(r"\b(?:dashboard|process)_\w+", expr)}
    return {re.sub(r"(_total|_bucket|_count|_sum)$", "", name) for name in names}


async def families(client: TestClient) -> dict[str, Any]:
    response = await client.get("/metrics")
    return {family.name: family for family in text_string_to_metric_families(await response.text())}


async def test_every_documented_family_is_there_from_the_first_scrape(client: TestClient) -> None:
    documented = documented_metrics()
    assert len(documented) >= 16 and "dashboard_logins" in documented and "process_cpu_seconds" in documented
    first = await families(client)
    assert documented <= set(first), documented - set(first)
    assert grafana_metrics() <= documented, grafana_metrics() - documented
    build = first["dashboard_build_info"].samples[0]
    assert build.labels["version"] == __version__ and build.value == 1
    assert first["process_resident_memory_bytes"].samples[0].value > 0
    assert {sample.labels["outcome"] for sample in first["dashboard_logins"].samples
            if sample.name == "dashboard_logins_total"} == {
        "success", "unknown_user", "wrong_password", "inactive", "no_password", "throttled"}


async def test_rest_requests_are_counted_and_a_caught_up_listener_has_no_lag(client: TestClient, ws: Socket,
                                                                            token: str) -> None:
    auth = {"Authorization": f"Token {token}"}
    assert (await client.get("/api/patients/", headers=auth)).status == 200
    assert (await client.get("/api/patients/999999/", headers=auth)).status == 404
    assert (await client.post("/api/patients/", json={}, headers=auth)).status == 400
    assert (await ws.request("subscribe", request_id="all"))["response_status"] == 201
    assert (await client.post("/api/patients/", json=ADA, headers=auth)).status == 201
    pushed = await ws.receive()  # its change handed out: nothing is left pending
    assert pushed["payload"]["request_id"] == "all"
    samples = await scrape(client)
    for action, status in (("list", "200"), ("retrieve", "404"), ("create", "400"), ("create", "201")):
        assert value(samples, "dashboard_requests_total", transport="rest", stream="patients", action=action,
                     status=status) == 1, (action, status)
    assert value(samples, "dashboard_request_duration_seconds_count", transport="rest", stream="patients",
                 action="list") == 1
    assert value(samples, "dashboard_requests_total", transport="ws", stream="patients", action="subscribe",
                 status="201") == 1
    # The age of the oldest change not yet handed out: none is, so exactly 0 (not the time since a pass).
    assert samples[("dashboard_change_listener_lag_seconds", ())] == 0.0
