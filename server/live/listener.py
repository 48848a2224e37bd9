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

Pruning must not delete what a listener has yet to read, whichever process prunes: after each
pass the listener records its mark, with a heartbeat, in listener_marks (one row per listener of
every server), and pruning keeps every change a live mark does not see. A listener silent past the
grace period (stopped, stuck) stops counting; if pruning then deletes changes it had not read, the
row's `gaps` says so, and the listener ends every subscription of its process with a 410 push
("Cursor expired, list again.", as for an expired `since`) instead of missing them in silence.

The same connection hears of changed credentials (a user id, sent by triggers when the change
commits): they go to `on_credentials`, which the open sockets set (server/web/connection.py); None
means "anyone's, maybe" (after a reconnect, when notifications may have been missed).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
from typing import Any, AsyncIterator, Callable, Mapping, Protocol

from server.errors import Gone, Unavailable
from server.live.cursors import Cursor, Snapshot
from server.live.pushes import Change
from server.store.db import Database, Listening

log = logging.getLogger(__name__)

APPLICATION_NAME = "dashboard-server listener"  # how an operator (or a test) finds its connection
PAGE = 500                                      # change rows read per query
BACKOFF_SECONDS = (0.1, 5.0)                    # first and longest wait before reconnecting
CHANGES, CREDENTIALS = "dashboard_changes", "dashboard_credentials"  # the channels (sql/changes.sql, listen)


class Audience(Protocol):
    """Who hears of each change: the subscriptions of this process (server/live/subscriptions.py)."""

    def __bool__(self) -> bool: ...          # anyone at all? With no one, nothing is read

    def publish(self, change: Change, cursor: Cursor) -> None: ...

    def lose_all(self) -> int: ...           # changes were pruned before they were read: end every subscription (410)


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
                 retain_seconds: float, retain_rows: int, audit_seconds: float = 366 * 24 * 3600.0,
                 grace_seconds: float = 60.0) -> None:
        self._db = db
        self._registry = registry
        self._poll_seconds = poll_seconds
        self._timeout = timeout
        self._retention = {"retain_seconds": retain_seconds, "retain_rows": retain_rows,
                           "audit_seconds": audit_seconds, "grace_seconds": grace_seconds}
        self.name = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"  # its row in listener_marks
        self._gaps: int | None = None         # listener_marks.gaps as of the last pass; None: no row yet
        self._recorded: tuple[int, bool] = (0, False)  # gaps read by the latest record, and a row found missing
        self._recorded_at = 0.0               # event-loop time of the last heartbeat
        # Told the users whose credentials changed (None: anyone's may have): server/web/connection.py.
        self.on_credentials: Callable[[frozenset[int] | None], None] | None = None
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
                    self._credentials_changed(None)  # any heard of while away were missed
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
                notes = await channel.notified()
                users = frozenset(int(payload) for name, payload in notes if name == CREDENTIALS and payload.isdigit())
                if users:
                    self._credentials_changed(users)
                if any(name == CHANGES for name, _ in notes):
                    self.health.pending(asyncio.get_running_loop().time())
                    self._wake.set()
        finally:
            self._wake.set()

    def _credentials_changed(self, users: frozenset[int] | None) -> None:
        if self.on_credentials is not None:
            self.on_credentials(users)

    async def _pass(self, channel: Listening) -> None:
        self._passes_started += 1
        number = self._passes_started
        if self._unfinished is not None:  # cut short by a lost connection: finish it, from where it was
            await self._hand_out(channel, *self._unfinished)
        if self._gaps is None:  # recorded before the first mark is taken: pruning respects it from then on
            await self._record(channel)
            self._gaps, self._recorded = self._recorded[0], (self._recorded[0], False)
        before_snapshot = asyncio.get_running_loop().time()
        high = await self._snapshot(channel)
        if self.mark is None:
            self.mark = high  # the first connection: live from now on
        elif high != self.mark:
            await self._hand_out(channel, high, 0)
        self._passes_done = number
        self.health.caught_up_at = asyncio.get_running_loop().time()
        self.health.served(before_snapshot)
        self._announce()
        # Then the mark is recorded (a subscriber does not wait for it); one registering meanwhile
        # is ended too if this reveals a gap.
        await self._record(channel)
        gaps, missing = self._recorded
        if missing or gaps != self._gaps:
            await self._outrun(channel)
        self._gaps, self._recorded = gaps, (gaps, False)

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
            if asyncio.get_running_loop().time() - self._recorded_at > self._poll_seconds:
                await self._record(channel)  # a long pass: the heartbeat (the mark is still `low`)
        self.mark, self.busy, self._unfinished = high, False, None

    async def _snapshot(self, channel: Listening) -> Snapshot:
        async with asyncio.timeout(self._timeout):
            return Snapshot.parse((await channel.fetch_one("changes.snapshot"))["snapshot"])

    async def _record(self, channel: Listening) -> None:
        """This listener's mark and heartbeat into listener_marks; notes its gaps and whether its row
        was missing (kept until the end of the pass: a heartbeat mid-pass must not hide it)."""
        mark = None if self.mark is None else str(self.mark)
        async with asyncio.timeout(self._timeout):
            row = await channel.fetch_one("changes.record_mark", {"name": self.name, "mark": mark})
        assert row is not None
        self._recorded = (row["gaps"], self._recorded[1] or row["missing"])
        self._recorded_at = asyncio.get_running_loop().time()

    async def _outrun(self, channel: Listening) -> None:
        """Pruning deleted changes this listener had not read (it was silent past the grace period):
        every subscription ends with 410, and the mark moves past what was deleted -- a snapshot taken
        now sees every deletion just learnt of -- before anyone can subscribe at the old one."""
        self.mark = await self._snapshot(channel)
        if ended := self._registry.lose_all():
            log.warning("the change log was pruned past this server's listener while it was silent: "
                        "%d subscriptions ended with 410", ended)

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
        row = await self._db.fetch_one("changes.prune", {**self._retention, **limits})
        return int(row["count"])

    async def forget(self) -> None:
        """Once stopped: remove this listener's mark, which would hold pruning back until the grace ends."""
        with contextlib.suppress(Unavailable):
            await self._db.execute("changes.forget_mark", {"name": self.name})

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
