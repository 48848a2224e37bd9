"""Configuration: defaults < TOML file (--config) < DASHBOARD_* environment variables."""
from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

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
    session_cookie_secure: bool = False   # true: the session cookie always Secure; false: when the client uses HTTPS
    session_max_age_seconds: int = 14 * 24 * 3600
    allowed_origins: tuple[str, ...] = () # browser origins whose cookies may open /ws/ or write
    # Host names answered (Django's ALLOWED_HOSTS: `*`, `.example.org` for it and its subdomains);
    # any other Host gets 400. Empty: the bind address, localhost and the allowed origins' hosts.
    allowed_hosts: tuple[str, ...] = ()
    # Proxies (comma-separated networks) whose X-Forwarded-For / X-Forwarded-Proto are believed.
    trusted_proxies: str = ""
    login_failures_per_user: int = 5      # failed logins per username per window, then 429
    login_failures_per_address: int = 20  # per client address (a ward behind one NAT shares it)
    login_throttle_seconds: int = 60
    credential_check_seconds: float = 30.0  # how often open sockets' credentials are re-checked
    workers: int = 0                      # serving processes sharing the port; 0 = one per CPU
    log_format: str = "plain"             # plain | json (one object a line, for log shippers)
    # Who may read /metrics (comma-separated networks). Through a trusted proxy the address checked
    # is the client's (X-Forwarded-For); through any other proxy, nobody's.
    metrics_allow: str = "127.0.0.1/32,::1/128"
    # Bytes a socket may hold unsent (queued and in the transport's buffer): replies wait for room;
    # pushes over it close a client that does not read (1008), as does taking nothing for the deadline.
    socket_budget_bytes: int = 4 * 1024 * 1024
    send_deadline_seconds: float = 30.0
    changes_retain_seconds: float = 7 * 24 * 3600.0   # changes kept for resuming (`since`)
    changes_retain_rows: int = 1_000_000  # ... and at most this many changes
    # The audit trail (`history`: who changed what; `logins`) outlives resume cursors: a year and a day.
    audit_retain_seconds: float = 366 * 24 * 3600.0
    idempotency_retain_seconds: float = 24 * 3600.0  # a create's idempotency key answers retries this long
    changes_prune_seconds: float = 60.0   # how often each process prunes the change log
    changes_poll_seconds: float = 5.0     # the listener looks even without a NOTIFY (and checks its connection)
    # A change listener (of any server on the database) that has not recorded its mark for this long
    # stops holding pruning back; it ends its subscriptions with 410 if it then missed changes.
    changes_listener_grace_seconds: float = 60.0
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
        for field in dataclasses.fields(self):
            reason = refusal(field.name, getattr(self, field.name))
            if reason is not None:
                raise ConfigError(field.name, getattr(self, field.name), reason)
        if self.db_pool_min > self.db_pool_max:
            raise ConfigError("db_pool_min", self.db_pool_min, f"must be at most db_pool_max ({self.db_pool_max})")
        if self.changes_listener_grace_seconds <= self.changes_poll_seconds:
            raise ConfigError("changes_listener_grace_seconds", self.changes_listener_grace_seconds,
                              f"must be more than changes_poll_seconds ({self.changes_poll_seconds:g}): "
                              "an idle listener records its mark that often")


class ConfigError(ValueError):
    """A setting refused: which one, its value, where it came from and what is allowed."""

    def __init__(self, name: str, value: Any, reason: str, source: str | None = None) -> None:
        self.name, self.value, self.reason = name, value, reason
        shown = "<hidden>" if name in SECRET_SETTINGS else repr(value)
        where = f" (from {source})" if source else ""
        super().__init__(f"setting {name} = {shown}{where}: {reason}")


SECRET_SETTINGS = ("session_key", "database_url")
# Ranges: (lowest, highest, lowest allowed itself); every number not named here must be more than 0.
RANGES: dict[str, tuple[float, float, bool]] = {
    "port": (1, 65535, True),
    "workers": (0, 1024, True),          # 0: one per CPU
    "db_pool_min": (0, math.inf, True),
}
CHOICES = {"log_format": LOG_FORMATS}


def refusal(name: str, value: Any) -> str | None:
    """Why this value of the setting is not allowed, or None."""
    if name in CHOICES and value not in CHOICES[name]:
        return f"must be one of {', '.join(CHOICES[name])}"
    if name in ("metrics_allow", "trusted_proxies"):
        return _networks_refusal(value)
    if name == "allowed_hosts":
        return _hosts_refusal(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    low, high, inclusive = RANGES.get(name, (0, math.inf, False))
    if not math.isfinite(value):
        return "must be a finite number"
    if value > high or value < low or (value == low and not inclusive):
        top = "" if high == math.inf else f" and at most {high:g}"
        return f"must be {'at least' if inclusive else 'more than'} {low:g}{top}"
    return None


def _networks_refusal(text: str) -> str | None:
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"{item!r} is not a network: a comma-separated list such as 127.0.0.1/32,10.0.0.0/8"
    return None


# An allowed_hosts pattern: `*`, or a name or bracketed IPv6 address, with a leading dot for subdomains.
HOST_PATTERN = re.compile(r"\*|\.?[a-z0-9-][a-z0-9.-]*|\[[a-f0-9]*:[a-f0-9.:]+\]")


def _hosts_refusal(patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        if not HOST_PATTERN.fullmatch(pattern.lower()):
            return (f"{pattern!r} is not a host name: names such as ward.example.org, .example.org "
                    "(and its subdomains), 10.0.0.5, [::1] or *, without scheme or port")
    return None


def networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A comma-separated list of networks (metrics_allow, trusted_proxies; validated by Config)."""
    return [ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip()]


def host_name(address: str) -> str:
    """An address as a Host header names it: an IPv6 address in brackets."""
    return f"[{address}]" if ":" in address else address


def allowed_hosts(config: Config) -> tuple[str, ...]:
    """The Host names served, lower case: the setting, or by default the bind address (first),
    localhost and the hosts of the allowed origins."""
    if config.allowed_hosts:
        return tuple(pattern.lower() for pattern in config.allowed_hosts)
    bind = host_name(config.host)
    origins = [urlsplit(origin).netloc.rpartition("@")[2] for origin in config.allowed_origins]
    names = [bind, "localhost", "127.0.0.1", "[::1]"] + [re.sub(r":\d*$", "", netloc) for netloc in origins]
    return tuple(dict.fromkeys(name.lower() for name in names if name))


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError("must be true or false (or 1/0, yes/no, on/off)")
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
        if isinstance(raw, (bool, float)) or not re.fullmatch(r"\s*[-+]?\d+\s*", str(raw)):
            raise ValueError("must be a whole number")
        return int(raw)
    if kind.startswith("float"):
        try:
            return float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
    return str(raw)


def _read_toml(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's settings, and where each one is: "FILE line N"."""
    text = path.read_bytes()
    try:
        values = tomllib.loads(text.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"config file {path}: {exc}") from None
    sources = {}
    for number, line in enumerate(text.decode().splitlines(), 1):
        key = re.match(r"\s*([A-Za-z0-9_]+)\s*=", line)
        if key and key.group(1) in values:
            sources.setdefault(key.group(1), f"{path} line {number}")
    return values, sources


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if given), then DASHBOARD_<NAME> variables over it; ConfigError names
    the refused setting, where it came from and what is allowed."""
    environ = os.environ if environ is None else environ
    values, sources = _read_toml(path) if path is not None else ({}, {})
    names = {field.name for field in dataclasses.fields(Config)}
    for unknown in sorted(set(values) - names):
        raise ConfigError(unknown, values[unknown], f"no such setting (known: {', '.join(sorted(names))})",
                          sources.get(unknown, str(path)))
    for name in names:
        variable = f"DASHBOARD_{name.upper()}"
        if environ.get(variable):
            values[name], sources[name] = environ[variable], f"environment variable {variable}"
    coerced: dict[str, Any] = {}
    for field in dataclasses.fields(Config):
        if field.name in values:
            try:
                coerced[field.name] = _coerce(field, values[field.name])
            except ValueError as exc:
                raise ConfigError(field.name, values[field.name], str(exc), sources[field.name]) from None
    try:
        return Config(**coerced)
    except ConfigError as exc:
        raise ConfigError(exc.name, values.get(exc.name, exc.value), exc.reason,
                          sources.get(exc.name, "the default")) from None
