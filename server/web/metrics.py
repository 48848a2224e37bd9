"""The server's Prometheus metrics, by name, and their text exposition (multi-process aware)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

# Request latency buckets: a retrieve takes ~1 ms here; a database timeout is seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
            "dashboard_requests", "Requests answered, by stream, action and response_status.",
            ["stream", "action", "status"], registry=registry)
        self.request_seconds = Histogram(
            "dashboard_request_duration_seconds", "Time from a request frame to its reply.",
            ["stream", "action"], buckets=LATENCY_BUCKETS, registry=registry)
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
            "Seconds since the change listener last caught up with the change log.",
            registry=registry, multiprocess_mode="livemax")
        self.logins = Counter(
            "dashboard_logins", "Login attempts (/api/auth/login/ and /api/auth/token/), by outcome.",
            ["outcome"], registry=registry)
        # Present from the first scrape, at 0; bound once, as they count every frame.
        self.frame_received = self.frames.labels("in").inc
        self.frame_sent = self.frames.labels("out").inc
        for state in ("in_use", "idle", "waiting"):
            self.db_pool.labels(state)
        self._answered: dict[tuple[str, str, int], tuple[Callable[[], None], Callable[[float], None]]] = {}

    def set_pool(self, in_use: int, idle: int, waiting: int) -> None:
        self.db_pool.labels("in_use").set(in_use)
        self.db_pool.labels("idle").set(idle)
        self.db_pool.labels("waiting").set(waiting)

    def set_listener_lag(self, seconds: float) -> None:
        self.listener_lag.set(seconds)

    def request_answered(self, stream: str, action: str, status: int, seconds: float) -> None:
        """Labels are the server's own names (a stream, an action, or a placeholder), never client
        text, so the label children bound here once each are few."""
        key = (stream, action, status)
        hooks = self._answered.get(key)
        if hooks is None:
            hooks = self._answered[key] = (self.requests.labels(stream, action, str(status)).inc,
                                           self.request_seconds.labels(stream, action).observe)
        count, observe = hooks
        count()
        observe(seconds)

    def login_attempted(self, outcome: str) -> None:
        """outcome is one of LOGIN_OUTCOMES (the server's words, never client text)."""
        self.logins.labels(outcome.replace(" ", "_")).inc()

    def handshake_rejected(self, status: int) -> None:
        self.handshakes_rejected.labels(str(status)).inc()

    def count_throttled(self, reason: str) -> None:
        """For rate and queue limits: reason is a fixed word such as "rate" or "queue", never client text."""
        self.throttled.labels(reason).inc()

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition the scraper asked for (Accept), of this process or, with workers, of them all."""
        encode, content_type = choose_encoder(accept)
        if self.multiprocess_dir is None:
            return encode(self.registry), content_type
        collected = CollectorRegistry()
        MultiProcessCollector(collected, self.multiprocess_dir)
        return encode(collected), content_type
