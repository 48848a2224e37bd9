"""Snapshots and cursors: parsing, what they see, and when pruning expires them (no database)."""
from __future__ import annotations

import pytest

from server.live.cursors import Cursor, Snapshot


def test_a_snapshot_sees_what_had_committed() -> None:
    snapshot = Snapshot.parse("100:110:103,107")
    assert str(snapshot) == "100:110:103,107"
    assert [xid for xid in range(95, 115) if snapshot.sees(xid)] == [95, 96, 97, 98, 99, 100, 101, 102, 104, 105,
                                                                      106, 108, 109]


def test_covers_means_sees_everything_the_other_sees() -> None:
    earlier, later = Snapshot.parse("100:110:103,107"), Snapshot.parse("107:112:107,111")
    assert later.covers(earlier) and not earlier.covers(later)
    assert earlier.covers(earlier)
    # Not newer in every respect: 103 ended before `other` was taken, yet `still` sees it as running.
    still = Snapshot.parse("103:112:103")
    assert not still.covers(later) and not later.covers(still)


@pytest.mark.parametrize("text", ["100:110:", "100:110:103,107", "100:110:103,107/107:112:107,111/42"])
def test_cursors_round_trip(text: str) -> None:
    assert str(Cursor.parse(text)) == text


def test_a_cursor_between_passes_is_its_snapshot() -> None:
    assert Cursor.parse("100:110:/100:110:/0") == Cursor.at(Snapshot.parse("100:110:"))
    assert str(Cursor.parse("100:110:/100:110:/0")) == "100:110:"


@pytest.mark.parametrize("text", [None, 5, "", "x", "1:2", "2:1:", "1:3:3", "1:3:0", "1:3:1,,2", "1:3:/1:3:",
                                  "1:4:/1:3:/1", "1:3:/1:4:/-1", "1:3:/1:4:/1/2", "1" * 21 + ":1" * 21 + ":"])
def test_what_is_not_a_cursor(text: object) -> None:
    with pytest.raises(ValueError):
        Cursor.parse(text)


def test_expiry_by_pruning() -> None:
    low, high = Snapshot.parse("100:105:102"), Snapshot.parse("102:108:102")
    mid_pass = Cursor(low, high, 50)
    assert not mid_pass.lost_by_pruning(0, 0)              # nothing pruned yet
    assert not mid_pass.lost_by_pruning(99, 40)            # everything pruned was seen by `low`
    assert not mid_pass.lost_by_pruning(101, 40)           # seen by `high`, ids delivered up to 50
    assert mid_pass.lost_by_pruning(102, 40)               # 102 was running at both: maybe never delivered
    assert mid_pass.lost_by_pruning(101, 51)               # id 51 of the pass was not delivered
    assert not Cursor(low, Snapshot.parse("106:108:"), 50).lost_by_pruning(104, 50)  # seen by `high`, up to id 50
    assert Cursor(low, Snapshot.parse("106:108:"), 50).lost_by_pruning(104, 51)      # id 51 was not delivered
