"""A plain request/reply socket for set-up work: probing a server, seeding and cleaning rows, writing."""
from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Any

from benchmark import wire
from benchmark.codec import loads
from benchmark.load import NEW_PATIENT, Target


class Session:
    """Replies come back in request order on one socket, so a FIFO of futures matches them."""

    def __init__(self, target: Target, stream: str | None = None) -> None:
        self.target = target
        self.stream = stream or target.stream
        self._waiting: collections.deque[asyncio.Future[dict[str, Any]]] = collections.deque()
        self._pushes: list[tuple[float, dict[str, Any]]] = []
        self._next_id = 0
        self.ws: wire.WebSocket | None = None

    async def __aenter__(self) -> Session:
        self.ws = await wire.connect(self.target.host, self.target.port, self.target.ws_url_path, self._on_message)
        self.ws.closed.add_done_callback(self._on_closed)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.ws.close()

    def _on_message(self, data: bytes) -> None:
        payload = loads(data)["payload"]
        if self._waiting and payload.get("request_id") == getattr(self._waiting[0], "request_id", None):
            self._waiting.popleft().set_result(payload)
        else:
            self._pushes.append((time.monotonic(), payload))

    def _on_closed(self, _: Any) -> None:
        while self._waiting:
            self._waiting.popleft().set_exception(ConnectionError("socket closed"))

    def send(self, action: str, **keys: Any) -> asyncio.Future[dict[str, Any]]:
        """Send one request now; the future resolves to its reply payload (the envelope)."""
        self._next_id += 1
        future = asyncio.get_running_loop().create_future()
        future.request_id = f"bench-{self._next_id}"  # type: ignore[attr-defined]
        payload = {"action": action, "request_id": future.request_id, **keys}  # type: ignore[attr-defined]
        self._waiting.append(future)
        self.ws.send(wire.client_frame(json.dumps({"stream": self.stream, "payload": payload}).encode()))
        return future

    async def request(self, action: str, timeout: float = 30.0, **keys: Any) -> dict[str, Any]:
        return await asyncio.wait_for(self.send(action, **keys), timeout)


async def existing_ids(target: Target) -> list[int]:
    async with Session(target) as session:
        reply = await session.request("list", timeout=120)
    if reply["response_status"] != 200:
        raise RuntimeError(f"list failed: {reply}")
    data = reply["data"]
    rows = data["results"] if isinstance(data, dict) else data
    return sorted(row["id"] for row in rows)


async def create_rows(target: Target, count: int) -> list[int]:
    """Create `count` patients, pipelined on one socket; their ids."""
    data = json.loads(NEW_PATIENT % 0)
    async with Session(target) as session:
        futures = [session.send("create", data=data) for _ in range(count)]
        replies = await asyncio.wait_for(asyncio.gather(*futures), 300)
    bad = [reply for reply in replies if reply["response_status"] != 201]
    if bad:
        raise RuntimeError(f"create failed: {bad[0]}")
    return [reply["data"]["id"] for reply in replies]


async def delete_rows(target: Target, ids: list[int]) -> int:
    """Delete these patients, pipelined; how many deletes did not answer 204."""
    if not ids:
        return 0
    async with Session(target) as session:
        futures = [session.send("delete", pk=pk) for pk in ids]
        replies = await asyncio.wait_for(asyncio.gather(*futures), 300)
    return sum(reply["response_status"] != 204 for reply in replies)


async def ensure_rows(target: Target, rows: int) -> tuple[int, ...]:
    """At least `rows` patients exist; the first `rows` ids, which the load uses."""
    ids = await existing_ids(target)
    if len(ids) < rows:
        ids += await create_rows(target, rows - len(ids))
    return tuple(sorted(ids)[:rows])


async def probe(target: Target, pk: int) -> dict[str, Any]:
    """One retrieve: proves the token and the stream before any load runs."""
    async with Session(target) as session:
        return await session.request("retrieve", pk=pk, timeout=10)
