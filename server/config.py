"""Configuration: defaults < TOML file (--config) < DASHBOARD_* environment variables."""
from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

PROJECT_DIR = Path(__file__).resolve().parent.parent


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
    outbound_queue: int = 1024            # frames waiting for a slow client; a full queue closes it (1008)
    changes_retain_seconds: float = 7 * 24 * 3600.0   # change history kept for `since` and `history`
    changes_retain_rows: int = 1_000_000  # ... and at most this many changes
    changes_prune_seconds: float = 60.0   # how often each process prunes the change log
    changes_poll_seconds: float = 5.0     # the listener looks even without a NOTIFY (and checks its connection)


def _coerce(field: dataclasses.Field[Any], raw: Any) -> Any:
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    if raw is None or kind.startswith("str | None"):
        return raw
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
