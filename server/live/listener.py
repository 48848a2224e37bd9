"""The change listener: one LISTEN connection per process, reading the change log in commit order.

Triggers write every change of a resource table to `changes` in the writing transaction and
NOTIFY an empty wake-up (sql/migrations/0004_changes.sql). This process keeps one dedicated
connection that LISTENs; each wake-up (or every `changes_poll_seconds`, in case one is lost
and to notice a dead connection) starts a *pass*:

1. take a snapshot `high` (pg_current_snapshot());
2. read, in id order and in pages, the changes `high` sees that the mark (the previous pass's
   snapshot) did not -- exactly the transactions that committed in between;
3. hand each to the subscriptions (server/live/subscriptions.py) with its cursor, then make `high`
   the mark.

Why this never skips or repeats a change, although ids are not given out in commit order: a
transaction that took an early id but was still running at `high` is not visible in `high`,
so it is not delivered and not marked as seen either; it comes in the first pass after its
commit, whatever its id. Aborted transactions are never visible. Nothing waits for a slow
transaction either (a psql session left open in the middle of an UPDATE holds back no one's
pushes). The reasoning about snapshots is in server/live/cursors.py.

When the connection is lost (pg_terminate_backend, a restart), the listener reconnects with
backoff, LISTENs again *before* reading, and the next pass reads from the mark: whatever
committed while it was away is delivered then, once.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any, AsyncIterator, Callable, Mapping, Protocol

from server.errors import Gone, Unavailable
from server.live.cursors import Cursor, Snapshot
from server.live.pushes import Change
from server.store.db import Database, Listening

log = logging.getLogger(__name__)

APPLICATION_NAME = "dashboard-server listener"  # how an operator (or a test) finds its connection
PAGE = 500                                      # change rows read per query
BACKOFF_SECONDS = (0.1, 5.0)                    # first and longest wait before reconnecting


class Audience(Protocol):
    """Who hears of each change: the subscriptions of this process (server/live/subscriptions.py)."""

    def __bool__(self) -> bool: ...          # anyone at all? With no one, nothing is read

    def publish(self, change: Change, cursor: Cursor) -> None: ...


@dataclasses.dataclass
class ListenerHealth:
    """For a readiness check: a healthy listener completes a pass every `changes_poll_seconds`."""

    connected: bool = False
    caught_up_at: float | None = None   # event-loop time of the last completed pass
    reconnects: int = 0
    # Event-loop time of the oldest wake-up (NOTIFY, sent at commit) that no completed pass has
    # served yet, or of losing the connection (what commits meanwhile is unseen): None when caught up.
    pending_since: float | None = None

    def lag(self, now: float) -> float | None:
        """Seconds since the listener last caught up with the log (None: never yet)."""
        return None if self.caught_up_at is None else now - self.caught_up_at

    def pending_age(self, now: float) -> float:
        """Age of the oldest change not yet handed out (0 when there is none): what a push waits."""
        return 0.0 if self.pending_since is None else max(0.0, now - self.pending_since)

    def pending(self, now: float) -> None:
        if self.pending_since is None:
            self.pending_since = now

    def served(self, before: float) -> None:
        """A pass whose snapshot was taken after `before` completed: older wake-ups are served."""
        if self.pending_since is not None and self.pending_since <= before:
            self.pending_since = None


def between(low: Snapshot, high: Snapshot, after: int, resource: str | None = None) -> tuple[str, dict[str, Any]]:
    """The query (and its parameters) for a page of the changes `high` sees and `low` did not."""
    params = {"low": str(low), "high": str(high), "resource": resource, "after": after, "limit": PAGE}
    return ("changes.between_after" if after else "changes.between"), params


def change_of(row: Mapping[str, Any]) -> Change:
    return Change(row["id"], row["resource"], row["object_id"], row["op"], row["data"], row["old"])


class Listener:
    """Follows the change log for this process; subscriptions register against its mark."""

    def __init__(self, db: Database, registry: Audience, *, poll_seconds: float, timeout: float,
                 retain_seconds: float, retain_rows: int, audit_seconds: float = 366 * 24 * 3600.0) -> None:
        self._db = db
        self._registry = registry
        self._poll_seconds = poll_seconds
        self._timeout = timeout
        self._retention = {"retain_seconds": retain_seconds, "retain_rows": retain_rows,
                           "audit_seconds": audit_seconds}
        self.mark: Snapshot | None = None     # every change this snapshot sees has been handed out
        self.busy = False                     # a pass is handing out changes (between pages)
        self._unfinished: tuple[Snapshot, int] | None = None   # (high, last id handed out) of a pass
        self.health = ListenerHealth()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()      # replaced after each pass; waiters re-check
        self._passes_started = 0
        self._passes_done = 0

    async def run(self) -> None:
        """Listen and follow until cancelled, reconnecting whenever the connection fails."""
        delay = BACKOFF_SECONDS[0]
        while True:
            try:
                async with self._db.listen("changes.listen", APPLICATION_NAME) as channel:
                    self.health.connected, delay = True, BACKOFF_SECONDS[0]
                    await self._follow(channel)
            except Unavailable:
                pass  # logged by server.store.db
            except Exception:
                log.exception("change listener failed")
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise asyncio.CancelledError  # an error while being cancelled must not swallow the cancel
            self.health.connected = False
            self.health.pending(asyncio.get_running_loop().time())
            self.health.reconnects += 1
            self._announce()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_SECONDS[1])

    async def _follow(self, channel: Listening) -> None:
        notifications = asyncio.create_task(self._forward(channel))
        try:
            while True:
                self._wake.clear()
                await self._pass(channel)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_seconds):
                        await self._wake.wait()
                if notifications.done():
                    notifications.result()  # the connection failed: raise, and reconnect
        finally:
            notifications.cancel()
            await asyncio.wait([notifications])  # (not `await notifications`: that would swallow our own cancel)

    async def _forward(self, channel: Listening) -> None:
        try:
            while True:
                await channel.notified()
                self.health.pending(asyncio.get_running_loop().time())
                self._wake.set()
        finally:
            self._wake.set()

    async def _pass(self, channel: Listening) -> None:
        self._passes_started += 1
        number = self._passes_started
        if self._unfinished is not None:  # cut short by a lost connection: finish it, from where it was
            await self._hand_out(channel, *self._unfinished)
        before_snapshot = asyncio.get_running_loop().time()
        async with asyncio.timeout(self._timeout):
            high = Snapshot.parse((await channel.fetch_one("changes.snapshot"))["snapshot"])
        if self.mark is None:
            self.mark = high  # the first connection: live from now on
        elif high != self.mark:
            await self._hand_out(channel, high, 0)
        self._passes_done = number
        self.health.caught_up_at = asyncio.get_running_loop().time()
        self.health.served(before_snapshot)
        self._announce()

    async def _hand_out(self, channel: Listening, high: Snapshot, after: int) -> None:
        """Publish the changes from the mark to `high` with ids above `after`, then move the mark."""
        assert self.mark is not None
        low = self.mark
        self._unfinished = (high, after)
        # With no subscription in this process nothing needs reading (none can start mid-pass).
        while self._registry:
            async with asyncio.timeout(self._timeout):
                rows = await channel.fetch_all(*between(low, high, after))
            self.busy = self.busy or bool(rows)
            for row in rows:
                self._registry.publish(change_of(row), Cursor(low, high, row["id"]))
                # Let the sockets' writers take what was just queued before the next change:
                # a bulk change then never piles up in a queue whose client reads fine.
                await asyncio.sleep(0)
            if rows:
                after = rows[-1]["id"]
                self._unfinished = (high, after)
            if len(rows) < PAGE:
                break
        self.mark, self.busy, self._unfinished = high, False, None

    def _announce(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def _until(self, condition: Callable[[], bool]) -> None:
        """Wait (at most the database timeout: 503) until the condition holds after a pass."""
        try:
            async with asyncio.timeout(self._timeout):
                while not condition():
                    await self._progress.wait()
        except TimeoutError:
            raise Unavailable() from None

    async def position(self) -> Snapshot:
        """The mark after a pass that started after this call, once no pass is half handed out.

        So the mark sees every change committed before the call (the caller's own writes
        included) -- and a subscription registered right after this returns, without awaiting
        anything in between, gets exactly the changes it does not see. Concurrent callers
        share passes."""
        target = self._passes_started + 1
        self._wake.set()
        await self._until(lambda: self._passes_done >= target and not self.busy)
        assert self.mark is not None
        return self.mark

    async def lost(self, cursor: Cursor) -> bool:
        """Whether pruning deleted changes the cursor has not delivered (it has expired)."""
        row = await self._db.fetch_one("changes.pruned")
        return cursor.lost_by_pruning(int(row["xid"]), row["id"])

    async def replay(self, resource: str, since: Cursor, target: Snapshot) -> AsyncIterator[tuple[Change, Cursor]]:
        """The resource's changes after `since` up to `target`, in the order of passes: first the
        rest of the pass `since` stopped in, then everything `target` adds. Raises Gone if
        pruning takes a change it needs (checked after each read: pruning only moves on)."""
        legs = [(since.low, since.high, since.after)] if since.low != since.high else []
        if target != since.high:
            legs.append((since.high, target, 0))
        for low, high, after in legs:
            while True:
                rows = await self._db.fetch_all(*between(low, high, after, resource))
                if await self.lost(since):
                    raise Gone()
                for row in rows:
                    yield change_of(row), Cursor(low, high, row["id"])
                if len(rows) < PAGE:
                    break
                after = rows[-1]["id"]

    async def prune(self, **limits: float) -> int:
        """Expire changes past the resume retention (or `retain_seconds`/`retain_rows` given here) and
        delete those past the audit retention too; returns how many newly expired."""
        if self.mark is None:
            return 0
        row = await self._db.fetch_one("changes.prune", {**self._retention, **limits, "mark": str(self.mark)})
        return int(row["count"])

    async def prune_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                pruned = await self.prune()
            except Unavailable:
                continue
            except Exception:
                log.exception("pruning the change log failed")
                continue
            if pruned:
                log.info("%d changes expired for resuming (kept for history until the audit retention)", pruned)
