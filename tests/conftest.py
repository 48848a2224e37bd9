"""Fixtures: a real PostgreSQL (a fresh migrated database per test), a real server socket, clients."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from typing import Any, AsyncIterator, Iterator

import pytest
import uvloop
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, settings
from prometheus_client.parser import text_string_to_metric_families

from server.accounts.users import create_user, issue_token
from server.app import AccessLogger, create_app
from server.config import Config
from server.web.keys import DB, SEALER
from tests.pg import cloned_database, server_url, template_database

# Generated-input tests (tests/README.md): a bounded run by default, a long campaign on request.
# The fixtures (server, socket, database) are shared by a test's examples on purpose.
_SHARED_FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=300, deadline=None, database=None, print_blob=True,
                          suppress_health_check=_SHARED_FIXTURES)
settings.register_profile("campaign", max_examples=20_000, deadline=None, suppress_health_check=_SHARED_FIXTURES)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("campaign" if os.environ.get("DASHBOARD_LONG_CAMPAIGN") == "1" else "ci"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with server_url() as url:
        yield url


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    with template_database(pg_server) as name:
        yield name


@pytest.fixture
def database_url(pg_server: str, pg_template: str) -> Iterator[str]:
    with cloned_database(pg_server, pg_template) as url:
        yield url


# A fixed server secret, so that no test writes a session.key file into the checkout.
TEST_SECRET = "dGVzdC1zZWNyZXQtdGVzdC1zZWNyZXQtdGVzdC1zZWM="


@pytest.fixture
def config() -> Config:
    return Config(heartbeat_seconds=30.0, db_timeout_seconds=3.0, session_key=TEST_SECRET)


@pytest.fixture
async def app(config: Config, database_url: str) -> web.Application:
    return create_app(dataclasses.replace(config, database_url=database_url))


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application, database_url: str) -> TestClient:
    # The server's own access logger, so tests see exactly what production logs.
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)
    test_client = await aiohttp_client(server)
    test_client.app_database_url = database_url
    return test_client


@pytest.fixture
async def token(client: TestClient) -> str:
    db = client.app[DB]
    await create_user(db, "nurse", None)
    return await issue_token(db, "nurse", client.app[SEALER])


class Socket:
    """A connected client: send frames, read replies as parsed JSON (and raw text)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.last_text = ""

    async def send(self, frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def receive(self) -> Any:
        message = await self.ws.receive(timeout=10)
        self.last_text = message.data
        return json.loads(message.data)

    async def call(self, frame: Any) -> Any:
        await self.send(frame)
        return await self.receive()

    async def request(self, action: str, request_id: Any = 1, stream: str = "patients", **keys: Any) -> Any:
        """Send one action on a stream; return the reply's payload (the envelope)."""
        reply = await self.call({"stream": stream, "payload": {"action": action, "request_id": request_id, **keys}})
        assert reply["stream"] == stream
        return reply["payload"]


@pytest.fixture
async def ws(client: TestClient, token: str) -> AsyncIterator[Socket]:
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        yield Socket(connection)


# The two outage replies (docs/protocol.md §8): nothing written, and a write whose outcome is unknown.
UNAVAILABLE = ["Service unavailable, try again."]
UNKNOWN = ["Outcome unknown: the database did not confirm this write in time. "
           "Check before retrying, or retry with the same idempotency key."]


@pytest.fixture(scope="module")
def faulty() -> Iterator[Any]:
    """An embedded PostgreSQL of the module's own, which its tests may stop, freeze and kill (tests/faults.py)."""
    from tests.faults import FaultyPostgres  # here: tests/faults.py imports this module's helpers

    cluster = FaultyPostgres()
    try:
        yield cluster
    finally:
        cluster.remove()


def ok(data: Any, action: str, status: int = 200, request_id: Any = 1) -> dict[str, Any]:
    return {"errors": [], "data": data, "action": action, "response_status": status, "request_id": request_id}


def error(errors: list[Any], action: Any, status: int, request_id: Any = 1) -> dict[str, Any]:
    return {"errors": errors, "data": None, "action": action, "response_status": status, "request_id": request_id}


class Pattern:
    """Equal to any string matching the regular expression (for server-set values)."""

    def __init__(self, regex: str) -> None:
        import re

        self.regex = re.compile(regex)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.regex.fullmatch(other) is not None

    def __repr__(self) -> str:
        return f"Pattern({self.regex.pattern!r})"


class AnyId:
    def __eq__(self, other: object) -> bool:
        return type(other) is int and other > 0

    def __repr__(self) -> str:
        return "AnyId()"


STAMP = Pattern(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
ANY_ID = AnyId()
ADA = {"first_name": "Ada", "last_name": "Lovelace", "admission_date": "2026-11-01T08:30:00Z", "dismissal_date": None}


def patient(**fields: Any) -> dict[str, Any]:
    """A patient object as the server dumps it, with server-set fields matched by shape."""
    base = {"id": ANY_ID, **ADA, "updated_at": STAMP, "created_at": STAMP}
    return {**base, **fields}


async def create(ws: Socket, **fields: Any) -> dict[str, Any]:
    reply = await ws.request("create", data={**ADA, **fields})
    assert reply["response_status"] == 201, reply
    return reply["data"]


@pytest.fixture
def token_for() -> Any:
    """Make a user and a token on any test client's database."""
    async def make(client: TestClient, username: str = "nurse", role: str = "editor") -> str:
        await create_user(client.app[DB], username, None, role)
        return await issue_token(client.app[DB], username, client.app[SEALER])
    return make


async def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}, parsed by prometheus_client."""
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(await response.text()) for sample in family.samples}


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def sockets_open(client: TestClient) -> float:
    """dashboard_websockets_open once the server has finished with every socket that closed
    (a closing handler finishes on its own schedule: bounded wait)."""
    for _ in range(200):
        count = value(await scrape(client), "dashboard_websockets_open")
        if not count:
            return count
        await asyncio.sleep(0.05)
    return count


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    """Every async test on uvloop, the loop `serve` runs on (server/ops/serving.py): some driver
    failures only show there."""
    return {"uvloop": uvloop.new_event_loop}
