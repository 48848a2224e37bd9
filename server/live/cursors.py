"""Positions in the change log: PostgreSQL snapshots, and the cursors built from them.

Why snapshots and not change ids: ids are handed out in statement order, but transactions commit
in another order. A transaction T1 can take id 5, T2 id 6, and T2 commit first; a reader that
delivered 6 and remembered "up to 6" would skip 5 forever. So a position is not a number but the
set of transactions whose changes a reader has delivered, and PostgreSQL already has a compact,
exact name for such a set: a snapshot `xmin:xmax:xip` (pg_current_snapshot()). A committed
transaction is in it iff its xid8 is below xmin, or below xmax and not in the xip list -- i.e.
iff it committed before the snapshot was taken. Each change row stores its writer's xid8.

The listener (server/live/listener.py) moves from snapshot to snapshot: each pass takes a new snapshot
`high`, delivers in id order the changes it sees that the previous one (`low`) did not, then
`high` becomes the mark. A transaction that took an early id but commits late simply shows up in
a later pass; nothing waits for it and nothing skips it. Passes follow commit order; within a
pass, id order -- which for one object is also commit order, because a second writer of a row
waits for the first one's commit before its trigger takes an id.

A cursor names a point inside a pass: "everything `low` saw, plus the changes of the pass
`low` -> `high` up to id `after`". Between passes it is simply the snapshot. Cursors are
meaningful to every server on the same database, whatever process issued them.
"""
from __future__ import annotations

import dataclasses
import re

from schemas.fields import parse_integer

SNAPSHOT = re.compile(r"(\d{1,20}):(\d{1,20}):((?:\d{1,20}(?:,\d{1,20})*)?)", re.ASCII)
MAX_CURSOR_CHARS = 16384
INVALID_CURSOR = "Not a valid cursor."   # the 400 message for a `since` that is none of ours


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A pg_snapshot: the transactions that had finished when it was taken."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        match = SNAPSHOT.fullmatch(text)
        if match is None:
            raise ValueError(f"not a snapshot: {text[:40]!r}")
        xmin, xmax = int(match.group(1)), int(match.group(2))
        xip = frozenset(int(xid) for xid in match.group(3).split(",") if xid)
        if not xmin <= xmax or any(not xmin <= xid < xmax for xid in xip):
            raise ValueError(f"not a snapshot: {text[:40]!r}")
        return cls(xmin, xmax, xip)

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(str(xid) for xid in sorted(self.xip))}"

    def sees(self, xid: int) -> bool:
        """Whether a committed transaction had committed when this snapshot was taken."""
        return xid < self.xmin or (xid < self.xmax and xid not in self.xip)

    def covers(self, other: Snapshot) -> bool:
        """Whether every transaction `other` sees, this one sees too (it is not older)."""
        return other.xmax <= self.xmax and all(xid >= other.xmax or xid in other.xip for xid in self.xip)


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Delivered: every change `low` sees, plus those `high` sees with id <= `after`."""

    low: Snapshot
    high: Snapshot
    after: int = 0

    @classmethod
    def at(cls, snapshot: Snapshot) -> Cursor:
        """The position between passes: every change the snapshot sees."""
        return cls(snapshot, snapshot, 0)

    @classmethod
    def parse(cls, text: object) -> Cursor:
        """A cursor this module wrote; ValueError for anything else."""
        if not isinstance(text, str) or len(text) > MAX_CURSOR_CHARS:
            raise ValueError("not a cursor")
        parts = text.split("/")
        if len(parts) == 1:
            return cls.at(Snapshot.parse(parts[0]))
        after = parse_integer(parts[2], signed=False) if len(parts) == 3 else None
        if after is None:
            raise ValueError("not a cursor")
        low, high = Snapshot.parse(parts[0]), Snapshot.parse(parts[1])
        if not high.covers(low):
            raise ValueError("not a cursor")
        return cls(low, high, after)

    def __str__(self) -> str:
        if self.low == self.high:
            return str(self.high)
        return f"{self.low}/{self.high}/{self.after}"

    def lost_by_pruning(self, pruned_xid: int, pruned_id: int) -> bool:
        """Whether pruning may have deleted a change this cursor has not delivered.

        Pruning deleted changes of transactions up to `pruned_xid`, with ids up to `pruned_id`.
        If `low` saw every such transaction (all below its xmin), or `high` did and the cursor
        is past `pruned_id`, nothing it lacks is gone. Otherwise it may be (conservatively
        expired: a write transaction left running across the retention limit can cause this).
        """
        if pruned_xid < self.low.xmin:
            return False
        return not (pruned_xid < self.high.xmin and pruned_id <= self.after)
