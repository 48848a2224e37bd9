"""A server holding more than 1,024 descriptors (thousands of open sockets) still writes: nothing on the
database path may use select(), which cannot watch a descriptor past FD_SETSIZE (a 500 on every patch
in the 5,000-subscriber benchmark)."""
from __future__ import annotations

import dataclasses
import os
import resource
from typing import Any

import pytest

from server.accounts.users import create_user, issue_token
from server.app import create_app
from server.config import Config
from server.web.keys import DB, SEALER
from tests.conftest import ADA, Socket

FILLER = 1100  # descriptors opened first, so that the pool's connections get numbers past 1,024


@pytest.fixture
def many_descriptors() -> Any:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if wanted < FILLER + 200:
        pytest.skip(f"the descriptor limit ({hard}) is too low to hold {FILLER} more")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(FILLER)]
    yield
    for fd in filler:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_writes_on_database_connections_past_descriptor_1024(
        many_descriptors: None, aiohttp_client: Any, config: Config, database_url: str) -> None:
    client = await aiohttp_client(create_app(dataclasses.replace(config, database_url=database_url)))
    await create_user(client.app[DB], "nurse", None)
    token = await issue_token(client.app[DB], "nurse", client.app[SEALER])
    async with client.ws_connect(f"/ws/?token={token}") as connection:
        ws = Socket(connection)
        created = await ws.request("create", data=ADA)
        assert created["response_status"] == 201, created
        patched = await ws.request("patch", 2, pk=created["data"]["id"], data={"first_name": "Grace"})
        assert (patched["response_status"], patched["data"]["first_name"]) == (200, "Grace"), patched
