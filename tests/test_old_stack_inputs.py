"""Inputs the old stack took that a strict reading would refuse: non-ASCII datetimes, long zero-padded ids (both transports)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ADA, Socket, create, error, ok, patient
from tests.test_rest import WRONG_DATETIME, call

# Django's datetime_re is not ASCII-only (\d is any decimal digit, \s any space); DRF normalises.
NON_ASCII_DATETIMES = {
    "2026-11-01T08:30:00\u00a0Z": "2026-11-01T08:30:00Z",          # NO-BREAK SPACE before the zone
    "2026-11-01 08:30\u2003+02:00": "2026-11-01T06:30:00Z",        # EM SPACE, then an offset
    "\uff12\uff10\uff12\uff16-\uff11\uff11-\uff10\uff11T\uff10\uff18:\uff13\uff10:\uff10\uff10Z": "2026-11-01T08:30:00Z",  # fullwidth
    "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0660\u0661T\u0660\u0668:\u0663\u0660Z": "2026-11-01T08:30:00Z",  # Arabic-Indic
    "2026-11-01T08:30:00.5\u3000-01:30": "2026-11-01T10:00:00.500000Z",  # IDEOGRAPHIC SPACE, fraction
}


@pytest.mark.parametrize(("sent", "stored"), NON_ASCII_DATETIMES.items())
async def test_non_ascii_digits_and_spaces_in_datetimes(ws: Socket, client, token: str, sent: str, stored: str) -> None:
    reply = await ws.request("create", data={**ADA, "admission_date": sent})
    assert reply == ok(patient(admission_date=stored), "create", 201)
    admitted = "2026-10-01T00:00:00Z"  # before every `stored`: a discharge may not come before admission
    assert await call(client, "POST", "/api/patients/", token,
                      json={**ADA, "admission_date": admitted, "dismissal_date": sent}) == (
        201, patient(admission_date=admitted, dismissal_date=stored))
    listed = await ws.request("list", filters={"dismissal_date": sent})  # filter values parse the same
    assert [row["dismissal_date"] for row in listed["data"]] == [stored]


@pytest.mark.parametrize("sent", ["iso-8601", "ISO-8601", "2026-11-01T08:30:00Z\u00a0x", "\uff12026-11-01"])
async def test_what_is_still_no_datetime(ws: Socket, client, token: str, sent: str) -> None:
    # "iso-8601" is DRF's fallback strptime(value, "iso-8601") reading its own format name as
    # 1900-01-01: a documented departure (docs/protocol.md §11), here it is the wrong format.
    reply = await ws.request("create", data={**ADA, "admission_date": sent})
    assert reply == error([{"admission_date": [WRONG_DATETIME]}], "create", 400)
    assert await call(client, "POST", "/api/patients/", token, json={**ADA, "admission_date": sent}) == (
        400, {"admission_date": [WRONG_DATETIME]})


ZERO_PADDED = ["00000000000000000001", "0" * 100 + "1"]


@pytest.mark.parametrize("padded", ZERO_PADDED)
async def test_a_zero_padded_pk_of_any_length(ws: Socket, client, token: str, padded: str) -> None:
    ada = await create(ws)
    assert ada["id"] == 1
    assert await ws.request("retrieve", pk=padded) == ok(ada, "retrieve")
    assert await call(client, "GET", f"/api/patients/{padded}/", token) == (200, ada)
    # The object is found, so bad data is the answer (404 before 400 only when it is missing).
    for action in ("update", "patch"):
        assert await ws.request(action, pk=padded, data={"first_name": ""}) == error(
            [{"first_name": ["This field may not be blank."], **({"last_name": ["This field is required."],
              "admission_date": ["This field is required."]} if action == "update" else {})}], action, 400)
    method: Any
    for method in ("PUT", "PATCH"):
        status, body = await call(client, method, f"/api/patients/{padded}/", token, json={"first_name": ""})
        assert (status, body["first_name"]) == (400, ["This field may not be blank."])
    assert await call(client, "DELETE", f"/api/patients/{padded}/", token) == (204, None)
    assert await ws.request("delete", pk=padded) == error(["Not found"], "delete", 404)


async def test_zero_padding_does_not_stretch_the_range(ws: Socket, client, token: str) -> None:
    # 20 significant digits are past bigint whatever the padding: no row, as before.
    assert await ws.request("retrieve", pk="0" + "9" * 20) == error(["Not found"], "retrieve", 404)
    assert await call(client, "GET", "/api/patients/0" + "9" * 20 + "/", token) == (
        404, {"detail": "No Patient matches the given query."})
