"""Failed logins, throttled per username and per client address; counted in PostgreSQL (sql/throttle.sql)."""
from __future__ import annotations

import dataclasses

from server.accounts.secret import digest
from server.config import Config
from server.errors import Throttled
from server.store.db import Database


@dataclasses.dataclass(frozen=True)
class Attempt:
    ids: list[int]  # its rows in login_failures: kept if it fails, forgotten if it succeeds


async def begin_attempt(db: Database, config: Config, username: str, address: str | None) -> Attempt:
    """Record a login attempt before the password is checked; raise Throttled over the limit."""
    seconds = config.login_throttle_seconds
    limits = {digest(f"user:{username}"): config.login_failures_per_user,
              digest(f"addr:{address or 'unknown'}"): config.login_failures_per_address}
    await db.execute("throttle.prune", {"seconds": seconds})
    rows = await db.fetch_all("throttle.record", {"subjects": list(limits)})
    attempt = Attempt([row["id"] for row in rows])
    window = await db.fetch_all("throttle.window", {"subjects": list(limits), "seconds": seconds})
    waits = [row["wait"] for row in window if row["attempts"] > limits[bytes(row["subject"])]]
    if waits:
        await forget(db, attempt)  # a refused attempt is not a failure: the window does not grow
        raise Throttled(max(waits))
    return attempt


async def forget(db: Database, attempt: Attempt) -> None:
    """The attempt succeeded (or was refused unchecked): it does not count as a failure."""
    await db.execute("throttle.forget", {"ids": attempt.ids})
