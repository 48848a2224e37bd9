"""`dashboard-server history`: an object's changes from the log -- when, who, what."""
from __future__ import annotations

import re

from tests.conftest import Socket, create
from tests.live import sql
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
