"""`dashboard-server history`: an object's changes from the log -- when, who, what."""
from __future__ import annotations

import re

from tests.conftest import Socket, create
from tests.live import prune_log, sql
from tests.test_cli import one_line_error, run

WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"


async def test_history_prints_each_change(ws: Socket, client) -> None:
    url = client.app_database_url
    ada = await create(ws)
    other = await create(ws, first_name="Grace")
    await ws.request("patch", pk=ada["id"], data={"last_name": "King", "dismissal_date": "2026-11-28T12:00:00Z"})
    await ws.request("patch", pk=ada["id"], data={})  # saves again: only updated_at changes
    sql(url, "UPDATE patients SET first_name = 'Augusta'")
    await ws.request("delete", pk=ada["id"])
    result = run(url, "history", "patients", str(ada["id"]))
    assert result.returncode == 0 and result.stderr == "", result
    lines = result.stdout.splitlines()
    expected = [
        'nurse create first_name="Ada", last_name="Lovelace", admission_date="2026-11-01T08:30:00Z", '
        'dismissal_date=null',
        'nurse update last_name: "Lovelace" -> "King", dismissal_date: null -> "2026-11-28T12:00:00Z"',
        'nurse update',
        '- update first_name: "Ada" -> "Augusta"',
        'nurse delete',
    ]
    assert len(lines) == len(expected), lines
    for line, rest in zip(lines, expected):
        assert re.fullmatch(f"{WHEN} {re.escape(rest)}", line), line
    assert run(url, "history", "patients", str(other["id"])).stdout.count("\n") == 2  # create, psql update


def test_history_of_nothing(database_url: str) -> None:
    one_line_error(run(database_url, "history", "patients", "12345"),
                   "no recorded changes of patients 12345: no such object, or its changes are older than "
                   "the audit retention (366 days)")
    one_line_error(run(database_url, "history", "vitals", "9999"), "no recorded changes of vitals 9999")
    one_line_error(run(database_url, "history", "wards", "1"), "unknown resource 'wards'; known: patients")
    one_line_error(run(database_url, "history", "patients", "x1"), "not an id: 'x1'")


async def test_the_audit_trail_outlives_resume_retention(ws: Socket, client) -> None:
    """Changes past the resume retention expire for `since` (410) but `history` keeps them until the
    audit retention (a year and a day by default); then they are deleted."""
    url = client.app_database_url
    start = (await ws.request("subscribe", request_id="all"))["response_status"]
    assert start == 201
    ada = await create(ws)
    await ws.receive()  # its push
    sql(url, "UPDATE changes SET recorded_at = recorded_at - interval '30 days'")
    assert await prune_log(url, retain_seconds=7 * 86400.0, retain_rows=1000) == 1  # expired for resuming
    kept = run(url, "history", "patients", str(ada["id"]))
    assert kept.returncode == 0 and " nurse create " in kept.stdout
    assert sql(url, "SELECT count(*) FROM changes") == [(1,)]
    assert await prune_log(url, retain_seconds=7 * 86400.0, retain_rows=1000, audit_seconds=10 * 86400.0) == 0
    assert sql(url, "SELECT count(*) FROM changes") == [(0,)]
    one_line_error(run(url, "history", "patients", str(ada["id"])), f"no recorded changes of patients {ada['id']}")
