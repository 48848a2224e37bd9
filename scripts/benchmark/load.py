"""Closed-loop request load over N sockets (WebSocket or REST), run inside a client worker process."""
from __future__ import annotations

import asyncio
import dataclasses
import resource
import time
from array import array
from multiprocessing.connection import Connection
from typing import Any, Callable

from benchmark import wire
from benchmark.codec import loads
from benchmark.workers import hear, tell

# Mixed workload, 20 steps: 60% retrieve, 20% patch, 10% create, 10% list (shuffled once, fixed).
MIXED_PLAN = ("retrieve", "patch", "retrieve", "create", "retrieve", "list", "retrieve", "patch",
              "retrieve", "retrieve", "create", "retrieve", "patch", "retrieve", "list", "retrieve",
              "retrieve", "patch", "retrieve", "retrieve")
# Write mix, 20 steps: 60% retrieve, 30% patch, 10% create (issue 15's; no list, so writes dominate the cost).
WRITE_PLAN = ("retrieve", "patch", "retrieve", "create", "retrieve", "patch", "retrieve", "patch",
              "retrieve", "retrieve", "patch", "retrieve", "create", "retrieve", "patch", "retrieve",
              "retrieve", "patch", "retrieve", "retrieve")
EXPECTED_STATUS = {"retrieve": 200, "patch": 200, "create": 201, "list": 200, "delete": 204}
NEW_PATIENT = (b'{"first_name": "Bench", "last_name": "Created %d", '
               b'"admission_date": "2026-11-01T08:30:00Z", "dismissal_date": null}')


@dataclasses.dataclass(frozen=True)
class Target:
    """A server that speaks the protocol, as the client sees it."""

    host: str
    port: int
    token: str
    stream: str = "patients"
    live_stream: str = "patients"
    ws_path: str = "/ws/"

    @property
    def ws_url_path(self) -> str:
        return f"{self.ws_path}?token={self.token}"


@dataclasses.dataclass(frozen=True)
class LoadSpec:
    """One measured run: what to send, on how many sockets, and when."""

    kind: str              # retrieve | mixed | writes | list_all | rest_retrieve
    sockets: int
    pks: tuple[int, ...]   # ids that exist on the server
    warmup: float
    duration: float
    list_limit: int = 50


def frame_for(target: Target, op: str, request_id: int, pk: int, spec: LoadSpec) -> bytes:
    """The client frame of one operation (bytes formatting: cheap, and the JSON stays canonical)."""
    head = b'{"stream": "%s", "payload": {"action": "%s", "request_id": %d' % (
        target.stream.encode(), op.replace("list_all", "list").encode(), request_id)
    if op in ("retrieve", "delete"):
        body = b', "pk": %d}}' % pk
    elif op == "patch":
        body = b', "pk": %d, "data": {"last_name": "Patched %d"}}}' % (pk, request_id)
    elif op == "create":
        body = b', "data": ' + NEW_PATIENT % request_id + b"}}"
    elif op == "list":
        body = b', "limit": %d, "offset": %d}}' % (spec.list_limit, (request_id * spec.list_limit) % len(spec.pks))
    else:  # list_all: unpaginated
        body = b"}}"
    return wire.client_frame(head + body)


class Run:
    """Samples and counters shared by the sockets of one worker."""

    def __init__(self, spec: LoadSpec, start_at: float) -> None:
        self.spec = spec
        self.window_start = start_at + spec.warmup
        self.window_end = self.window_start + spec.duration
        self.samples: dict[str, array] = {}
        self.errors = 0
        self.error_examples: list[str] = []
        self.created: list[int] = []
        self.active = 0
        self.all_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def record(self, op: str, sent: float, now: float) -> None:
        if self.window_start <= now < self.window_end:
            self.samples.setdefault(op, array("d")).append(now - sent)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_examples) < 5:
            self.error_examples.append(text[:300])

    def finished(self) -> None:
        self.active -= 1
        if self.active == 0 and not self.all_done.done():
            self.all_done.set_result(None)


class Driver:
    """One socket in a closed loop: send, wait for the reply, check it, send the next."""

    def __init__(self, run: Run, target: Target, index: int, plan: tuple[str, ...]) -> None:
        self.run, self.target, self.index, self.plan = run, target, index, plan
        self.step = 0
        self.request_id = index * 10_000_000
        self.op, self.sent = "", 0.0
        self.send: Callable[[bytes], None] = lambda frame: None

    def next_request(self) -> None:
        self.op = self.plan[self.step % len(self.plan)]
        self.step += 1
        self.request_id += 1
        pks = self.run.spec.pks
        pk = pks[(self.request_id * 7919) % len(pks)]
        frame = frame_for(self.target, self.op, self.request_id, pk, self.run.spec)
        self.sent = time.monotonic()
        self.send(frame)

    def on_message(self, data: bytes) -> None:
        now = time.monotonic()
        self.check(data)
        self.run.record(self.op, self.sent, now)
        if now < self.run.window_end:
            self.next_request()
        else:
            self.run.finished()

    def check(self, data: bytes) -> None:
        try:
            payload = loads(data)["payload"]
            ok = payload["request_id"] == self.request_id and \
                payload["response_status"] == EXPECTED_STATUS[self.op.replace("list_all", "list")]
        except (ValueError, KeyError, TypeError):
            ok, payload = False, None
        if not ok:
            self.run.error(f"{self.op}: {data[:300]!r}")
        elif self.op == "create":
            self.run.created.append(payload["data"]["id"])


class RestDriver(Driver):
    """REST retrieve over one keep-alive connection."""

    def next_request(self) -> None:
        self.op = "rest_retrieve"
        self.request_id += 1
        pks = self.run.spec.pks
        pk = pks[(self.request_id * 7919) % len(pks)]
        self.sent = time.monotonic()
        self.send(wire.get_request(self.target.host, self.target.port, f"/api/patients/{pk}/", self.target.token))

    def on_response(self, status: int, body: bytes) -> None:
        now = time.monotonic()
        if status != 200:
            self.run.error(f"REST {status}: {body[:200]!r}")
        self.run.record(self.op, self.sent, now)
        if now < self.run.window_end:
            self.next_request()
        else:
            self.run.finished()


def plan_for(kind: str) -> tuple[str, ...]:
    return {"retrieve": ("retrieve",), "mixed": MIXED_PLAN, "writes": WRITE_PLAN, "list_all": ("list_all",)}[kind]


async def open_driver(run: Run, target: Target, index: int) -> Any:
    loop = asyncio.get_running_loop()
    if run.spec.kind == "rest_retrieve":
        driver = RestDriver(run, target, index, ())
        _, client = await loop.create_connection(lambda: wire.HttpClient(driver.on_response),
                                                 target.host, target.port)
    else:
        driver = Driver(run, target, index, plan_for(run.spec.kind))
        client = await wire.connect(target.host, target.port, target.ws_url_path, driver.on_message)
        client.closed.add_done_callback(lambda _: driver.run.error("socket closed") if
                                        time.monotonic() < run.window_end else None)
    driver.send = client.send
    return driver, client


async def run_load(conn: Connection, target: Target, spec: LoadSpec, first_index: int,
                   count: int) -> dict[str, Any]:
    """Open `count` sockets, say ready, run the closed loop from the parent's start time, return samples."""
    run = Run(spec, 0.0)
    pairs = [await open_driver(run, target, first_index + i) for i in range(count)]
    tell(conn, "ready")
    start_at = hear(conn)
    run.window_start = start_at + spec.warmup
    run.window_end = run.window_start + spec.duration
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    run.active = len(pairs)
    for driver, _ in pairs:
        driver.next_request()
    await asyncio.sleep(max(0.0, run.window_start - time.monotonic()))
    cpu_start = _cpu_seconds()
    await asyncio.sleep(max(0.0, run.window_end - time.monotonic()))
    cpu = _cpu_seconds() - cpu_start
    try:
        await asyncio.wait_for(asyncio.shield(run.all_done), 10)
    except asyncio.TimeoutError:
        run.error(f"{run.active} sockets got no reply within 10 s after the window")
    for _, client in pairs:
        client.transport.close()
    return {"samples": {op: list(values) for op, values in run.samples.items()}, "errors": run.errors,
            "error_examples": run.error_examples, "created": run.created, "client_cpu_s": cpu}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
