"""Marshmallow fields that load and dump exactly like Django REST framework's."""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Sequence

from marshmallow import ValidationError, fields

UTC = dt.timezone.utc
MAX_BIGINT = 2**63 - 1                      # PostgreSQL's bigint, the type of every id

BASE_MESSAGES = {
    "required": "This field is required.",
    "null": "This field may not be null.",
}

# Django's parse_datetime fallback for what datetime.fromisoformat() refuses. Like Django's, it is
# not ASCII-only: \d takes any decimal digit ("２０２６", Arabic-Indic) and \s any space (U+00A0),
# which int() and DRF then normalise; the old stack accepted them, so clients may send them.
DATETIME_RE = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:[.,](?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"\s*(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$",
)


def parse_integer(value: Any, digits: int = 19, signed: bool = True) -> int | None:
    """The one integer parser of client input: an int (never a bool), or a string of ASCII digits
    worth at most `digits` digits (leading zeros are free, as for int()), `-` first when `signed`
    (no spaces, `+` or `_`, which int() takes); else None."""
    if type(value) is int:
        return value
    if not isinstance(value, str) or not value.isascii():
        return None
    negative = signed and value.startswith("-")
    unsigned = value[1:] if negative else value
    if not unsigned.isdigit():
        return None
    if len(unsigned) <= digits:
        return int(value)
    significant = unsigned.lstrip("0") or "0"  # "00000000000000000001" is 1, as Django reads it
    if len(significant) > digits:
        return None
    return -int(significant) if negative else int(significant)


def parse_datetime(text: str) -> dt.datetime | None:
    """Parse like Django's parse_datetime; None when the text has no datetime shape."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        match = DATETIME_RE.match(text)
    if match is None:
        return None
    parts = match.groupdict()
    zone = parts.pop("tzinfo")
    if parts["microsecond"]:
        parts["microsecond"] = parts["microsecond"].ljust(6, "0")
    tzinfo = None
    if zone == "Z":
        tzinfo = UTC
    elif zone is not None:
        minutes = 60 * int(zone[1:3]) + (int(zone[-2:]) if len(zone) > 3 else 0)
        tzinfo = dt.timezone(dt.timedelta(minutes=-minutes if zone[0] == "-" else minutes))
    numbers = {key: int(value) for key, value in parts.items() if value is not None}
    return dt.datetime(**numbers, tzinfo=tzinfo)


def to_utc(value: dt.datetime) -> dt.datetime:
    """A naive datetime is UTC; an aware one is converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_datetime(value: dt.datetime) -> str:
    """ISO 8601 in UTC ending in Z; microseconds only when non-zero (DRF's output)."""
    if value.tzinfo is not UTC:  # rows come back in UTC already: skip the conversion for them
        value = to_utc(value)
    return value.isoformat()[:-6] + "Z"


class DateTime(fields.Field):
    """DRF's DateTimeField: ISO 8601 in, with or without offset; UTC with Z out."""

    default_error_messages = {
        **BASE_MESSAGES,
        "invalid": "Datetime has wrong format. Use one of these formats instead: "
        "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
        "overflow": "Datetime value out of range.",
    }

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_datetime(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        return load_datetime(value, self.make_error)


def load_datetime(value: Any, make_error: Any) -> dt.datetime:
    """Turn client input into an aware UTC datetime, or raise the DRF message."""
    if not isinstance(value, str):
        raise make_error("invalid")
    try:
        parsed = parse_datetime(value)
    except ValueError:  # the right shape but an impossible date, such as month 13
        parsed = None
    if parsed is None:
        raise make_error("invalid")
    try:
        return to_utc(parsed)
    except OverflowError:
        raise make_error("overflow") from None


class Text(fields.Field):
    """DRF's CharField: numbers coerced to text, surrounding whitespace trimmed."""

    default_error_messages = {
        **BASE_MESSAGES,
        "invalid": "Not a valid string.",
        "blank": "This field may not be blank.",
        "max_length": "Ensure this field has no more than {max_length} characters.",
        "null_characters": "Null characters are not allowed.",
        "surrogate": "Surrogate characters are not allowed: U+{code_point:X}.",
    }

    def __init__(self, *, max_length: int, allow_blank: bool = False, trim_whitespace: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.allow_blank = allow_blank
        self.trim_whitespace = trim_whitespace

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return value

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.make_error("invalid")
        text = str(value).strip() if self.trim_whitespace else str(value)
        if not text and not self.allow_blank:
            raise self.make_error("blank")
        # DRF runs every validator and reports each failure, in this order.
        problems = []
        if len(text) > self.max_length:
            problems.append(self.error_messages["max_length"].format(max_length=self.max_length))
        if "\x00" in text:
            problems.append(self.error_messages["null_characters"])
        surrogate = next((char for char in text if 0xD800 <= ord(char) <= 0xDFFF), None)
        if surrogate is not None:
            problems.append(self.error_messages["surrogate"].format(code_point=ord(surrogate)))
        if problems:
            raise ValidationError(problems)
        return text


class Id(fields.Integer):
    """A read-only integer primary key."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dump_only=True, **kwargs)


class Float(fields.Field):
    """DRF's FloatField: a number (or a numeric string) in, a JSON number out.

    Departures, both refusing what no vital sign is: booleans (DRF reads true as 1.0), and
    NaN and the infinities (DRF stores them, and they cannot be written as JSON numbers).
    """

    default_error_messages = {
        **BASE_MESSAGES,
        "invalid": "A valid number is required.",
        "max_string_length": "String value too large.",
        "overflow": "Integer value too large to convert to float",
    }

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> float | None:
        return None if value is None else float(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        return load_float(value, self.make_error)


def load_float(value: Any, make_error: Any) -> float:
    """A finite float from client input, or raise the DRF message."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise make_error("invalid")
    if isinstance(value, str) and len(value) > 1000:  # DRF's guard against huge strings
        raise make_error("max_string_length")
    try:
        number = float(value)
    except ValueError:
        raise make_error("invalid") from None
    except OverflowError:  # an integer beyond float's range
        raise make_error("overflow") from None
    if not math.isfinite(number):
        raise make_error("invalid")
    return number


class Choice(fields.Field):
    """DRF's ChoiceField: one of a fixed set of strings, compared as str(input), never trimmed."""

    default_error_messages = {
        **BASE_MESSAGES,
        "invalid_choice": '"{input}" is not a valid choice.',
    }

    def __init__(self, *, choices: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = tuple(choices)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return value

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return load_choice(value, self)


def load_choice(value: Any, field: Choice) -> str:
    """One of the field's choices, or raise DRF's message quoting the input as Python prints it."""
    if str(value) not in field.choices:
        raise field.make_error("invalid_choice", input=value)
    return str(value)


class Related(fields.Field):
    """DRF's PrimaryKeyRelatedField: the id of a row of another resource (`to`).

    Only the type is checked here. Whether the row exists is the database's answer, given
    while it writes (one round trip, no race with a concurrent delete): the table's foreign
    key must keep PostgreSQL's default name, `<table>_<field>_fkey`, so that a violation of
    it is reported on this field with does_not_exist (server/resources/crud.py).
    """

    default_error_messages = {
        **BASE_MESSAGES,
        "does_not_exist": 'Invalid pk "{pk_value}" - object does not exist.',
        "incorrect_type": "Incorrect type. Expected pk value, received {data_type}.",
    }

    def __init__(self, *, to: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.to = to  # the resource named; OpenAPI describes the field with it

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> int | None:
        return value

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        # An int or a string of digits, as DRF takes them. Departure: DRF truncates a float
        # (1.5 would link to row 1); here a float is the wrong type.
        number = parse_integer(value, digits=100)  # longer is no id, and int() of it is slow
        if number is None:
            raise self.make_error("incorrect_type", data_type=type(value).__name__)
        if not -MAX_BIGINT - 1 <= number <= MAX_BIGINT:  # no row can have it
            raise self.does_not_exist(value)
        return number

    def does_not_exist(self, value: Any) -> ValidationError:
        """The message for a submitted value that names no row."""
        return self.make_error("does_not_exist", pk_value=value)
