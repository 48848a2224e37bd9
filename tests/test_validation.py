"""Validation over /ws/: DRF's exact messages, formats and 400 shapes, and nothing written."""
from __future__ import annotations

import pytest

from tests.conftest import ADA, Socket, create, error, ok, patient

DATETIME_FORMAT = ("Datetime has wrong format. Use one of these formats instead: "
                   "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")


async def test_create_with_no_fields(ws: Socket) -> None:
    reply = await ws.request("create", request_id=4, data={})
    assert reply == error([{"first_name": ["This field is required."], "last_name": ["This field is required."],
                            "admission_date": ["This field is required."]}], "create", 400, request_id=4)


async def test_every_failing_field_is_reported_in_field_order(ws: Socket) -> None:
    data = {"admission_date": "not-a-date", "last_name": "  ", "first_name": None, "dismissal_date": 17}
    assert await ws.request("create", data=data) == error([{
        "first_name": ["This field may not be null."],
        "last_name": ["This field may not be blank."],
        "admission_date": [DATETIME_FORMAT],
        "dismissal_date": [DATETIME_FORMAT],
    }], "create", 400)
    assert await ws.request("list") == ok([], "list")  # nothing was written


@pytest.mark.parametrize("value", [True, False, [], ["Ada"], {"a": 1}])
async def test_wrong_types_for_a_text_field(ws: Socket, value: object) -> None:
    reply = await ws.request("create", data={**ADA, "first_name": value})
    assert reply == error([{"first_name": ["Not a valid string."]}], "create", 400)


async def test_numbers_are_coerced_to_text_like_drf(ws: Socket) -> None:
    reply = await ws.request("create", data={**ADA, "first_name": 123, "last_name": 4.5})
    assert reply == ok(patient(first_name="123", last_name="4.5"), "create", 201)


async def test_trimming_and_the_240_character_limit(ws: Socket) -> None:
    reply = await ws.request("create", data={**ADA, "first_name": "  Ada \t\n", "last_name": " " + "L" * 240 + " "})
    assert reply == ok(patient(first_name="Ada", last_name="L" * 240), "create", 201)
    too_long = await ws.request("create", data={**ADA, "last_name": "L" * 241})
    assert too_long == error([{"last_name": ["Ensure this field has no more than 240 characters."]}], "create", 400)
    # The limit counts characters, not bytes.
    assert (await ws.request("create", data={**ADA, "last_name": "é" * 240}))["response_status"] == 201


async def test_null_and_surrogate_characters_are_refused(ws: Socket) -> None:
    reply = await ws.request("create", data={**ADA, "first_name": "A\x00da", "last_name": "\ud800x"})
    assert reply == error([{"first_name": ["Null characters are not allowed."],
                            "last_name": ["Surrogate characters are not allowed: U+D800."]}], "create", 400)


@pytest.mark.parametrize(("sent", "stored"), [
    ("2026-11-01T08:30:00Z", "2026-11-01T08:30:00Z"),
    ("2026-11-01T10:30:00+02:00", "2026-11-01T08:30:00Z"),        # offsets converted to UTC
    ("2026-11-01T03:30:00-05:00", "2026-11-01T08:30:00Z"),
    ("2026-11-01T08:30:00", "2026-11-01T08:30:00Z"),              # naive is UTC
    ("2026-11-01 08:30", "2026-11-01T08:30:00Z"),
    ("2026-11-01T08:30:00.1Z", "2026-11-01T08:30:00.100000Z"),    # fraction padded to 6 digits
    ("2026-11-01T08:30:00.000000Z", "2026-11-01T08:30:00Z"),      # ... or dropped when zero
    ("2026-11-01T08:30:00.123456789Z", "2026-11-01T08:30:00.123456Z"),
    ("2026-11-01T08:30:00,5Z", "2026-11-01T08:30:00.500000Z"),
    ("2026-1-2T3:4:5Z", "2026-01-02T03:04:05Z"),
    ("2026-11-01T08:30:00+0530", "2026-11-01T03:00:00Z"),
    ("2026-11-01", "2026-11-01T00:00:00Z"),
])
async def test_datetime_formats(ws: Socket, sent: str, stored: str) -> None:
    reply = await ws.request("create", data={**ADA, "admission_date": sent, "dismissal_date": sent})
    assert reply == ok(patient(admission_date=stored, dismissal_date=stored), "create", 201)


@pytest.mark.parametrize("sent", ["yesterday", "2026-13-01T00:00:00Z", "2026-11-31T00:00Z", "", 1700000000, True,
                                  "2026-11-01T25:00:00Z", ["2026-11-01"], {"at": "2026-11-01"}])
async def test_bad_datetimes(ws: Socket, sent: object) -> None:
    reply = await ws.request("create", data={**ADA, "admission_date": sent})
    assert reply == error([{"admission_date": [DATETIME_FORMAT]}], "create", 400)


async def test_required_datetime_may_not_be_null(ws: Socket) -> None:
    reply = await ws.request("create", data={**ADA, "admission_date": None})
    assert reply == error([{"admission_date": ["This field may not be null."]}], "create", 400)


@pytest.mark.parametrize(("data", "kind"), [([], "list"), ("Ada", "str"), (5, "int"), (5.5, "float"), (True, "bool")])
async def test_data_that_is_not_an_object(ws: Socket, data: object, kind: str) -> None:
    created = await create(ws)
    message = f"Invalid data. Expected a dictionary, but got {kind}."
    for action, keys in (("create", {}), ("update", {"pk": created["id"]}), ("patch", {"pk": created["id"]})):
        reply = await ws.request(action, data=data, **keys)
        assert reply == error([{"non_field_errors": [message]}], action, 400)


async def test_data_null_or_missing(ws: Socket) -> None:
    created = await create(ws)
    for action, keys in (("create", {}), ("update", {"pk": created["id"]}), ("patch", {"pk": created["id"]})):
        for extra in ({"data": None}, {}):
            reply = await ws.request(action, **keys, **extra)
            assert reply == error([{"non_field_errors": ["No data provided"]}], action, 400)


async def test_rejected_writes_change_nothing(ws: Socket) -> None:
    created = await create(ws)
    await ws.request("patch", pk=created["id"], data={"first_name": "", "last_name": "Changed"})
    await ws.request("update", pk=created["id"], data={"first_name": "X", "last_name": "Y", "admission_date": "no"})
    assert await ws.request("retrieve", pk=created["id"]) == ok(created, "retrieve")
