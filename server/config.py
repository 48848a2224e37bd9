"""Configuration: defaults < TOML file (--config) < DASHBOARD_* environment variables."""
from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOG_FORMATS = ("plain", "json")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the server reads from its environment, with working defaults."""

    database_url: str | None = None       # libpq URL; None starts the embedded PostgreSQL
    data_dir: Path = Path("var")          # embedded database and other state
    host: str = "127.0.0.1"
    port: int = 8080
    sql_dir: Path = PROJECT_DIR / "sql"
    max_frame_bytes: int = 256 * 1024     # inbound WebSocket frame; larger closes with 1009
    max_page_size: int = 1000             # cap on `limit`
    heartbeat_seconds: float = 30.0       # ping idle sockets; drop peers that stop answering
    db_pool_min: int = 1
    db_pool_max: int = 20
    db_timeout_seconds: float = 5.0       # a database that does not answer gives 503, never a hang
    # The server secret (base64 of 32 bytes): encrypts session cookies and stored token copies.
    # Unset: generated once into <data_dir>/session.key. repr=False keeps it out of any log.
    session_key: str | None = dataclasses.field(default=None, repr=False)
    session_cookie_secure: bool = False   # send the session cookie over HTTPS only
    session_max_age_seconds: int = 14 * 24 * 3600
    allowed_origins: tuple[str, ...] = () # browser origins whose cookies may open /ws/ or write
    login_failures_per_user: int = 5      # failed logins per username per window, then 429
    login_failures_per_address: int = 20  # per client address (a ward behind one NAT shares it)
    login_throttle_seconds: int = 60
    credential_check_seconds: float = 30.0  # how often open sockets' credentials are re-checked
    workers: int = 0                      # serving processes sharing the port; 0 = one per CPU
    log_format: str = "plain"             # plain | json (one object a line, for log shippers)
    # Who may read /metrics (comma-separated networks). Through a proxy on this host, the address
    # checked is the one the proxy appended to X-Forwarded-For, so nginx does not open it to everyone.
    metrics_allow: str = "127.0.0.1/32,::1/128"
    outbound_queue: int = 1024            # frames waiting for a slow client; a full queue closes it (1008)
    changes_retain_seconds: float = 7 * 24 * 3600.0   # change history kept for `since` and `history`
    changes_retain_rows: int = 1_000_000  # ... and at most this many changes
    changes_prune_seconds: float = 60.0   # how often each process prunes the change log
    changes_poll_seconds: float = 5.0     # the listener looks even without a NOTIFY (and checks its connection)
    # Limits (server/web/limits.py). Socket caps count per server process (per worker with --workers).
    max_sockets: int = 10000              # open sockets in total; over: 503 before the upgrade
    max_sockets_per_user: int = 200       # open sockets of one user; over: 429 before the upgrade
    requests_per_second: float = 5000.0   # per socket, a token bucket refilled at this rate...
    request_burst: int = 10000            # ...holding this many; an empty bucket answers 429
    throttle_close_after: int = 1000      # consecutive throttled requests, then close 1008
    max_subscriptions_per_socket: int = 128   # subscribe + subscribe_instance of one socket; over: 429
    max_subscriptions: int = 100_000      # of this process (per worker); over: 503
    max_request_id_bytes: int = 256       # a request_id's JSON; over: 400, not echoed
    handshake_timeout_seconds: float = 30.0  # a connection must send its request (handshake) in this time
    certfile: Path | None = None          # PEM certificate chain: serve https:// and wss:// directly
    keyfile: Path | None = None           # its private key

    def __post_init__(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {self.log_format!r}")
        if self.workers < 0:
            raise ValueError("workers must be 0 (one per CPU) or more")


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"{raw!r} is not a boolean")
    return text in ("1", "true", "yes", "on")


def _coerce(field: dataclasses.Field[Any], raw: Any) -> Any:
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    if raw is None or kind.startswith("str | None"):
        return raw
    if kind.startswith("bool"):
        return _boolean(raw)
    if kind.startswith("tuple"):
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(item.strip().rstrip("/") for item in items if item.strip())
    if kind.startswith("Path"):
        return Path(raw)
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    return str(raw)


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if given), then DASHBOARD_<NAME> variables over it."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, "rb") as handle:
            values.update(tomllib.load(handle))
    unknown = set(values) - {field.name for field in dataclasses.fields(Config)}
    if unknown:
        raise ValueError(f"unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
    for field in dataclasses.fields(Config):
        name = f"DASHBOARD_{field.name.upper()}"
        if environ.get(name):
            values[field.name] = environ[name]
    try:
        return Config(**{
            field.name: _coerce(field, values[field.name])
            for field in dataclasses.fields(Config) if field.name in values
        })
    except ValueError as exc:
        raise ValueError(f"bad setting: {exc}") from None
