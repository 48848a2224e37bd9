"""Retrieves that arrive together share one query, and each socket still gets its own reply."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from server.config import PROJECT_DIR
from server.store.batching import KeyedLookups
from server.store.db import open_database
from server.store.queries import load_queries
from tests.conftest import Socket, create, error, ok


async def test_simultaneous_retrieves_on_many_sockets_each_get_their_own_row(client: TestClient, token: str,
                                                                             ws: Socket) -> None:
    rows = [await create(ws, first_name=f"P{i}") for i in range(3)]
    wanted: list[Any] = [rows[0]["id"], rows[1]["id"], rows[1]["id"], 404404, str(rows[2]["id"]), rows[0]["id"]]
    sockets = [Socket(await client.ws_connect(f"/ws/?token={token}")) for _ in wanted]
    try:
        for number, (socket, pk) in enumerate(zip(sockets, wanted)):  # all sent before any is answered
            await socket.send({"stream": "patients", "payload": {"action": "retrieve", "request_id": number, "pk": pk}})
        replies = await asyncio.gather(*(socket.receive() for socket in sockets))
    finally:
        await asyncio.gather(*(socket.ws.close() for socket in sockets))
    expected = [rows[0], rows[1], rows[1], None, rows[2], rows[0]]
    for number, (reply, row) in enumerate(zip(replies, expected)):
        envelope = ok(row, "retrieve", request_id=number) if row else error(["Not found"], "retrieve", 404, number)
        assert reply == {"stream": "patients", "payload": envelope}


async def test_a_failing_batch_fails_every_caller_alike(database_url: str) -> None:
    db = await open_database(database_url, load_queries(PROJECT_DIR / "sql"), minsize=1, maxsize=1)
    queries: list[str] = []

    async def fetch_all(query: str, params: Any) -> list[dict[str, Any]]:
        queries.append(query)
        return await db.fetch_all(query, params)

    try:
        lookups = KeyedLookups(fetch_all)
        outcomes = await asyncio.gather(*(lookups.fetch("patients.no_such_query", "id", pk) for pk in (1, 2)),
                                        return_exceptions=True)
    finally:
        await db.close()
    assert [type(outcome) for outcome in outcomes] == [KeyError, KeyError]
    assert outcomes[0] is outcomes[1] and queries == ["patients.no_such_query"]  # one batch, one error for all


async def test_a_write_on_a_socket_is_seen_by_its_next_retrieve(ws: Socket) -> None:
    created = await create(ws)
    patched = await ws.request("patch", pk=created["id"], data={"last_name": "Byron"})
    assert await ws.request("retrieve", pk=created["id"]) == ok(patched["data"], "retrieve")
