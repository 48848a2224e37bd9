"""The DRF-like fields of schemas/fields.py that no patient uses: Float, Choice, Related (no database)."""
from __future__ import annotations

from typing import Any

import pytest
from marshmallow import Schema, ValidationError

from schemas.fields import Choice, Float, Related
from server.errors import BadRequest
from server.resources.listing import operators, parse_list_options


class Reading(Schema):
    patient = Related(required=True, to="patients")
    kind = Choice(required=True, choices=("spo2", "heart_rate"))
    value = Float(required=True)


def errors_of(data: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        Reading().load(data)
    return caught.value.messages


GOOD = {"patient": 1, "kind": "spo2", "value": 97}


def test_good_input_loads_and_dumps_like_drf() -> None:
    assert Reading().load(GOOD) == {"patient": 1, "kind": "spo2", "value": 97.0}
    assert Reading().load({**GOOD, "patient": "12", "value": " 36.6 "}) == {"patient": 12, "kind": "spo2", "value": 36.6}
    assert Reading().dump({"patient": 3, "kind": "heart_rate", "value": 72}) == {
        "patient": 3, "kind": "heart_rate", "value": 72.0}


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "A valid number is required."),
    ("", "A valid number is required."),
    ([1], "A valid number is required."),
    ({"v": 1}, "A valid number is required."),
    (True, "A valid number is required."),        # departure: DRF reads true as 1.0
    ("nan", "A valid number is required."),       # departure: DRF stores NaN and the infinities
    ("-Infinity", "A valid number is required."),
    ("1e999", "A valid number is required."),
    (10**400, "Integer value too large to convert to float"),
    ("1" * 1001, "String value too large."),
    (None, "This field may not be null."),
])
def test_float_messages(value: Any, message: str) -> None:
    assert errors_of({**GOOD, "value": value}) == {"value": [message]}


@pytest.mark.parametrize(("kind", "shown"), [
    ("x", "x"), ("", ""), (" spo2", " spo2"), ("SPO2", "SPO2"),   # never trimmed, case counts
    (1, "1"), (1.5, "1.5"), (True, "True"), ([1, "a"], "[1, 'a']"), ({"a": 1}, "{'a': 1}"),  # Python's str()
])
def test_choice_messages_quote_the_input_as_drf_does(kind: Any, shown: str) -> None:
    assert errors_of({**GOOD, "kind": kind}) == {"kind": [f'"{shown}" is not a valid choice.']}


@pytest.mark.parametrize(("patient", "message"), [
    ("abc", "Incorrect type. Expected pk value, received str."),
    ("1.5", "Incorrect type. Expected pk value, received str."),
    (1.5, "Incorrect type. Expected pk value, received float."),   # departure: DRF truncates to 1
    (True, "Incorrect type. Expected pk value, received bool."),
    ([1], "Incorrect type. Expected pk value, received list."),
    ({"id": 1}, "Incorrect type. Expected pk value, received dict."),
    (2**63, 'Invalid pk "9223372036854775808" - object does not exist.'),   # past bigint: no row has it
    (str(10**30), f'Invalid pk "{10**30}" - object does not exist.'),
    (None, "This field may not be null."),
])
def test_related_messages(patient: Any, message: str) -> None:
    assert errors_of({**GOOD, "patient": patient}) == {"patient": [message]}


def test_every_field_is_required() -> None:
    assert errors_of({}) == {name: ["This field is required."] for name in ("patient", "kind", "value")}


def list_problems(**filters: Any) -> list[str]:
    with pytest.raises(BadRequest) as caught:
        parse_list_options({"filters": filters}, Reading(), ("patient", "kind", "value"), (), 100)
    return caught.value.errors[0]["filters"]


def test_filter_values_are_read_by_field_kind() -> None:
    options = parse_list_options({"filters": {"patient": "3", "kind": "spo2", "value__gte": "90.5"}},
                                 Reading(), ("patient", "kind", "value"), (), 100)
    assert options.where == '"patient" = %(f0)s AND "kind" = %(f1)s AND "value" >= %(f2)s'
    assert options.params == {"f0": 3, "f1": "spo2", "f2": 90.5, "limit": None, "offset": 0}
    assert list_problems(kind="x", value__lt="high", patient="p") == [
        'Invalid value for "kind": "x" is not a valid choice.',
        'Invalid value for "value__lt": A valid number is required.',
        'Invalid value for "patient": A valid integer is required.']


def test_a_choice_takes_equality_and_isnull_only() -> None:
    assert operators(Reading().fields["kind"]) == ("", "isnull")
    assert operators(Reading().fields["value"]) == ("", "gt", "gte", "lt", "lte", "isnull")
    assert list_problems(kind__gt="spo2", kind__icontains="o") == [
        '"gt" does not work on "kind"; use: kind, kind__isnull.',
        '"icontains" works on text fields only, not on "kind".']
