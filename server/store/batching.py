"""Lookups by key made in the same event-loop tick travel together, as one query.

Sixteen sockets asking for sixteen patients at once cost one `WHERE id = ANY(...)` round trip
instead of sixteen: fewer sends, polls and wake-ups in the server, and far less parsing and
planning in PostgreSQL (docs/benchmarks.md). Each caller still gets its own row or None, and its
own error if the query fails. Per-socket ordering is untouched: a socket's next request is read
only after this one is answered.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Mapping

Row = dict[str, Any]
FetchAll = Callable[[str, Mapping[str, Any]], Awaitable[list[Row]]]
Waiting = list[tuple[Any, "asyncio.Future[Row | None]"]]


class KeyedLookups:
    """`await lookups.fetch(query, "id", 7)`: the row whose `id` is 7, or None.

    `query` selects rows whose key is in the array parameter %(keys)s.
    """

    def __init__(self, fetch_all: FetchAll) -> None:
        self._fetch_all = fetch_all
        self._pending: dict[tuple[str, str], Waiting] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def fetch(self, query: str, key_column: str, key: Any) -> Row | None:
        loop = asyncio.get_running_loop()
        batch = self._pending.get((query, key_column))
        if batch is None:
            batch = self._pending[(query, key_column)] = []
            loop.call_soon(self._flush, query, key_column)
        future: asyncio.Future[Row | None] = loop.create_future()
        batch.append((key, future))
        return await future

    def _flush(self, query: str, key_column: str) -> None:
        batch = self._pending.pop((query, key_column))
        task = asyncio.get_running_loop().create_task(self._run(query, key_column, batch))
        self._running.add(task)  # keep a reference until it is done
        task.add_done_callback(self._running.discard)

    async def _run(self, query: str, key_column: str, batch: Waiting) -> None:
        try:
            rows = await self._fetch_all(query, {"keys": list({key for key, _ in batch})})
        except BaseException as exc:  # every caller hears about it, as if it had asked alone
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        by_key = {row[key_column]: row for row in rows}
        for key, future in batch:
            if not future.done():
                future.set_result(by_key.get(key))
