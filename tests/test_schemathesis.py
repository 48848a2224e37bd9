"""schemathesis against /api/openapi.json on a live server: no 500s, no response outside the schema."""
from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Iterator

import pytest
import schemathesis
from aiohttp import web
from hypothesis import given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from server.app import AccessLogger, create_app
from server.config import Config
from tests.conftest import TEST_SECRET
from tests.processes import make_token

# A bounded run in CI; HYPOTHESIS_PROFILE=campaign (tests/README.md) takes the profile's count.
EXAMPLES = None if os.environ.get("HYPOTHESIS_PROFILE") == "campaign" or os.environ.get("DASHBOARD_LONG_CAMPAIGN") == "1" \
    else 30


class ThreadedServer:
    """The app on its own event loop in a thread: schemathesis calls it synchronously, over real HTTP."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = create_app(Config(session_key=TEST_SECRET, db_timeout_seconds=3.0, database_url=database_url))
        self.runner = web.AppRunner(self.app, access_log_class=AccessLogger)
        self.run(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.run(site.start())
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self.token = self.run(make_token(database_url, "editor"))  # an editor (the default role)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def close(self) -> None:
        self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def live_api(database_url: str) -> Iterator[ThreadedServer]:
    server = ThreadedServer(database_url)
    try:
        yield server
    finally:
        server.close()


def test_the_rest_api_keeps_to_its_schema(live_api: ThreadedServer) -> None:
    """Every operation, its generated cases checked by all of schemathesis's default checks.

    (Its pytest plugin does not run under pytest 9 yet, so each operation's strategy is driven here.)"""
    schema = schemathesis.openapi.from_url(f"{live_api.url}/api/openapi.json")
    schema.config.update(base_url=live_api.url)
    headers = {"Authorization": f"Token {live_api.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES) if EXAMPLES else (lambda test: test)
        def check(case: Any) -> None:
            # All default checks but "schema-valid data is accepted": a schema cannot say that a related id
            # must exist, nor can a form say null (schemathesis writes "null"); those 400s are right.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        check()
