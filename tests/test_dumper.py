"""The compiled dumper returns exactly what marshmallow's Schema.dump returns, row for row."""
from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

from marshmallow import Schema, fields

from schemas.dumper import compile_dumper
from schemas.fields import DateTime, Id, Text
from schemas.patients import PatientSchema

ZONES = [None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]


def some_datetime(rng: random.Random) -> dt.datetime:
    moment = dt.datetime(2000, 1, 1) + dt.timedelta(seconds=rng.randrange(0, 10**9))
    if rng.random() < 0.5:  # half with microseconds, some of them ending in zeros
        moment = moment.replace(microsecond=rng.choice([rng.randrange(1, 10**6), 500000, 120, 1]))
    return moment.replace(tzinfo=rng.choice(ZONES))


def patient_row(rng: random.Random) -> dict[str, Any]:
    return {
        "id": rng.randrange(1, 2**63),
        "first_name": rng.choice(["Ada", "Zoë", "  spaced ", "", "\u00e9\u4e2d\U0001f600", 'quote " \\ back']),
        "last_name": "".join(rng.choice("abc xyz\u00fc") for _ in range(rng.randrange(0, 30))),
        "admission_date": some_datetime(rng),
        "dismissal_date": None if rng.random() < 0.4 else some_datetime(rng),
        "updated_at": some_datetime(rng),
        "created_at": some_datetime(rng),
    }


def test_patients_dump_is_identical_for_many_rows() -> None:
    rng = random.Random(5)
    schema = PatientSchema()
    dump = compile_dumper(schema)
    for _ in range(3000):
        row = patient_row(rng)
        assert json.dumps(dump(row)) == json.dumps(schema.dump(row)), row


def test_missing_keys_and_extra_columns_are_dumped_as_marshmallow_does() -> None:
    schema = PatientSchema()
    dump = compile_dumper(schema)
    row = {"id": 3, "last_name": "Only", "total_count": 10, "dismissal_date": None}
    assert dump(row) == schema.dump(row) == {"id": 3, "last_name": "Only", "dismissal_date": None}


class MixedSchema(Schema):
    """Fields the dumper converts itself next to ones it must hand to marshmallow."""

    id = Id()
    name = Text(max_length=10, data_key="label")
    seen = DateTime(attribute="seen_at")
    score = fields.Float()
    flag = fields.Boolean(dump_default=False)
    count = fields.Integer(as_string=True)
    nested = fields.String(attribute="outer.inner")


def test_other_field_types_fall_back_to_marshmallow() -> None:
    rng = random.Random(6)
    schema = MixedSchema()
    dump = compile_dumper(schema)
    for _ in range(500):
        row = {"id": rng.randrange(100), "name": rng.choice(["x", None]), "seen_at": some_datetime(rng),
               "score": rng.choice([1, 2.5, None]), "count": rng.choice([7, None]),
               "outer": {"inner": rng.choice(["deep", None])}}
        if rng.random() < 0.5:
            row["flag"] = rng.choice([True, None])
        assert json.dumps(dump(row)) == json.dumps(schema.dump(row)), row


def test_objects_that_are_not_dicts_go_to_marshmallow() -> None:
    class Row:
        id, first_name, last_name = 1, "Ada", "Lovelace"
        admission_date = dismissal_date = updated_at = created_at = None

    schema = PatientSchema()
    assert compile_dumper(schema)(Row()) == schema.dump(Row())


def drf_datetime(value: dt.datetime) -> str:
    """DRF's DateTimeField.to_representation for an aware or naive (UTC) value."""
    value = (value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value).astimezone(dt.timezone.utc)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def test_datetimes_are_formatted_as_drf_formats_them() -> None:
    from schemas.fields import format_datetime

    rng = random.Random(7)
    for _ in range(3000):
        value = some_datetime(rng)
        assert format_datetime(value) == drf_datetime(value), value
