"""The server's Prometheus metrics, by name, and their text exposition (multi-process aware)."""
from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Iterable

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from server import __version__

HANDSHAKE_STATUSES = (400, 401, 403, 429, 503)
THROTTLE_REASONS = ("deadline", "login", "queue", "rate")
LOGIN_OUTCOMES = ("success", "unknown user", "wrong password", "inactive", "no password", "throttled")
FLUSH_SECONDS = 1.0  # with workers: how stale another worker's request counts may be in a scrape
# Request latency buckets: a retrieve takes ~1 ms here; a database timeout is seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Answered:
    """One request series' count and timing, kept in plain numbers between flushes.

    Counter.inc and Histogram.observe take a lock per value (three per request, the bucket found by
    walking the bounds), a measurable share of a retrieve; here a request costs three additions, and
    flush() hands the sums to the prometheus_client children (in either mode) before a scrape reads
    them. tests/test_health.py reads the results back."""

    __slots__ = ("count", "total", "buckets", "_counter", "_histogram")
    BOUNDS = (*LATENCY_BUCKETS, float("inf"))

    def __init__(self, counter: Counter, histogram: Histogram) -> None:
        self.count, self.total, self.buckets = 0, 0.0, [0] * len(self.BOUNDS)
        self._counter, self._histogram = counter, histogram

    def __call__(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect_left(self.BOUNDS, seconds)] += 1

    def flush(self) -> None:
        if not self.count:
            return
        # Histogram has no public "add n observations": its values are reached directly.
        values = self._histogram._buckets
        for index, observed in enumerate(self.buckets):
            if observed:
                values[index].inc(observed)
        self._histogram._sum.inc(self.total)
        self._counter.inc(self.count)
        self.count, self.total, self.buckets = 0, 0.0, [0] * len(self.BOUNDS)


class Metrics:
    """Every metric the server exports. One instance per app, on its own registry (tests build many apps).

    With several workers, prometheus_client's multiprocess mode keeps each process's values in
    files that a scrape of any worker adds up; gauges say how (livesum: only live processes count).
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        # With `serve --workers N`, the directory where every worker writes its samples (server/ops/workers.py).
        self.multiprocess_dir = multiprocess_dir
        self.registry = registry = CollectorRegistry()
        self.websockets_open = Gauge(
            "dashboard_websockets_open", "WebSocket connections open now.",
            registry=registry, multiprocess_mode="livesum")
        self.frames = Counter(
            "dashboard_websocket_frames", "WebSocket text/binary frames, by direction (in, out).",
            ["direction"], registry=registry)
        self.requests = Counter(
            "dashboard_requests", "Requests answered, by transport (ws, rest), stream, action and response_status.",
            ["transport", "stream", "action", "status"], registry=registry)
        self.request_seconds = Histogram(
            "dashboard_request_duration_seconds", "Time from a request (frame or HTTP) to its reply.",
            ["transport", "stream", "action"], buckets=LATENCY_BUCKETS, registry=registry)
        self.handshakes_rejected = Counter(
            "dashboard_handshakes_rejected", "/ws/ handshakes refused before the upgrade, by HTTP status.",
            ["status"], registry=registry)
        self.throttled = Counter(
            "dashboard_throttled", "Sockets or handshakes refused for going over a limit, by reason.",
            ["reason"], registry=registry)
        self.db_pool = Gauge(
            "dashboard_db_pool_connections", "Database pool connections, by state (in_use, idle, waiting).",
            ["state"], registry=registry, multiprocess_mode="livesum")
        self.listener_lag = Gauge(
            "dashboard_change_listener_lag_seconds",
            "Age in seconds of the oldest committed change this process has not yet handed out "
            "to its subscriptions (0 when caught up; since the loss while its connection is down).",
            registry=registry, multiprocess_mode="livemax")
        self.worker_restarts = Counter(
            "dashboard_worker_restarts", "Workers of `serve --workers N` started in place of one that died.",
            registry=registry)
        self.logins = Counter(
            "dashboard_logins", "Login attempts (/api/auth/login/ and /api/auth/token/), by outcome.",
            ["outcome"], registry=registry)
        self._process_gauges(registry)
        # Present from the first scrape, at 0; counted in plain numbers, flushed as requests are.
        self._frames_in, self._frames_out = self.frames.labels("in"), self.frames.labels("out")
        self._received = self._sent = 0
        for state in ("in_use", "idle", "waiting"):
            self.db_pool.labels(state)
        # The fixed vocabularies at 0, so that a dashboard sees every series from the first scrape.
        for status in HANDSHAKE_STATUSES:
            self.handshakes_rejected.labels(str(status))
        for reason in THROTTLE_REASONS:
            self.throttled.labels(reason)
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome.replace(" ", "_"))
        # transport → stream → action → status → its bound children: found without allocating.
        self._answered: dict[str, dict[str, dict[str, dict[int, Answered]]]] = {"ws": {}, "rest": {}}

    def _process_gauges(self, registry: CollectorRegistry) -> None:
        """process_* as gauges (with a pid label under multiprocess mode, which has no process collector),
        sampled by sample_process(); dashboard_build_info says which version runs."""
        self._process_source = ProcessCollector(registry=None)
        self._process: dict[str, Gauge | Counter] = {}
        self._cpu_counted = 0.0
        for family in self._process_source.collect():
            if family.type == "counter":  # CPU seconds: summed over the workers, for rate()
                self._process[family.name] = Counter(family.name, family.documentation, registry=registry)
            else:
                self._process[family.name] = Gauge(
                    family.name, family.documentation + " (per process)", registry=registry,
                    multiprocess_mode="liveall")
        self.sample_process()
        Gauge("dashboard_build_info", "Always 1: the running version and Python, as labels.",
              ["version", "python"], registry=registry, multiprocess_mode="max").labels(
            __version__, platform.python_version()).set(1)

    def sample_process(self) -> None:
        """Copy this process's CPU, memory and file descriptors into the gauges (Linux /proc; else nothing)."""
        for family in self._process_source.collect():
            metric = self._process.get(family.name)
            for sample in family.samples[:1]:
                if isinstance(metric, Gauge):
                    metric.set(sample.value)
                elif isinstance(metric, Counter) and sample.value > self._cpu_counted:
                    metric.inc(sample.value - self._cpu_counted)
                    self._cpu_counted = sample.value

    def frame_received(self) -> None:
        self._received += 1

    def frame_sent(self) -> None:
        self._sent += 1

    def flush(self) -> None:
        """Hand the per-request counts kept since the last flush to prometheus_client: before this
        process renders a scrape, and (with workers, whose scrapes read every worker's files) every
        FLUSH_SECONDS and at exit."""
        if self._received:
            self._frames_in.inc(self._received)
            self._received = 0
        if self._sent:
            self._frames_out.inc(self._sent)
            self._sent = 0
        for streams in self._answered.values():
            for actions in streams.values():
                for statuses in actions.values():
                    for answered in statuses.values():
                        answered.flush()

    async def keep_flushing(self) -> None:
        """Flush every FLUSH_SECONDS until cancelled (with workers, server/app.py)."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()

    def set_pool(self, in_use: int, idle: int, waiting: int) -> None:
        self.db_pool.labels("in_use").set(in_use)
        self.db_pool.labels("idle").set(idle)
        self.db_pool.labels("waiting").set(waiting)

    def set_listener_lag(self, seconds: float) -> None:
        self.listener_lag.set(seconds)

    def request_answered(self, stream: str, action: str, status: int, seconds: float, transport: str = "ws") -> None:
        """Labels are the server's own names (a stream, an action, or a placeholder), never client
        text, so the label children bound here once each are few."""
        try:
            answered = self._answered[transport][stream][action][status]
        except KeyError:
            answered = Answered(self.requests.labels(transport, stream, action, str(status)),
                                self.request_seconds.labels(transport, stream, action))
            self._answered.setdefault(transport, {}).setdefault(stream, {}).setdefault(action, {})[status] = answered
        answered(seconds)

    def expect_requests(self, served: Iterable[tuple[str, str, str]]) -> None:
        """The request families' series for every (transport, stream, action) served, at 0 from the
        first scrape (with workers too, where a family shows only once a series exists)."""
        for transport, stream, action in served:
            self.requests.labels(transport, stream, action, "200")
            self.request_seconds.labels(transport, stream, action)

    def login_attempted(self, outcome: str) -> None:
        """outcome is one of LOGIN_OUTCOMES (the server's words, never client text)."""
        self.logins.labels(outcome.replace(" ", "_")).inc()

    def handshake_rejected(self, status: int) -> None:
        self.handshakes_rejected.labels(str(status)).inc()

    def count_throttled(self, reason: str) -> None:
        """For rate and outbox limits: reason is a fixed word ("rate", "queue", "deadline"), never client text."""
        self.throttled.labels(reason).inc()

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition the scraper asked for (Accept), of this process or, with workers, of them all."""
        encode, content_type = choose_encoder(accept)
        self.flush()
        if self.multiprocess_dir is None:
            return encode(self.registry), content_type
        collected = CollectorRegistry()
        MultiProcessCollector(collected, self.multiprocess_dir)
        return encode(collected), content_type
