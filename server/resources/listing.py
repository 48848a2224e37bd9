"""List options (limit, offset, ordering, filters): validated into SQL fragments and parameters."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from marshmallow import Schema, ValidationError, fields

from schemas.fields import (
    MAX_BIGINT,
    Choice,
    DateTime,
    Float,
    Text,
    load_choice,
    load_datetime,
    load_float,
    parse_integer,
)
from server.errors import BadRequest
from server.live.filters import FilterTerm

COMPARISONS = {"": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclasses.dataclass(frozen=True)
class ListQuery:
    where: str
    order_by: str
    params: dict[str, Any]
    paginated: bool
    limit: int | None
    offset: int


class _Problems(Exception):
    pass


def _integer(raw: Any, minimum: int, maximum: int | None = MAX_BIGINT) -> int:
    value = parse_integer(raw, digits=29, signed=False)
    if value is None:
        raise _Problems("A valid integer is required.")
    if value < minimum:
        raise _Problems(f"Ensure this value is greater than or equal to {minimum}.")
    if maximum is not None and value > maximum:
        raise _Problems(f"Ensure this value is less than or equal to {MAX_BIGINT}.")
    return value


def _message_of(error: ValidationError) -> str:
    messages = error.messages
    return messages[0] if isinstance(messages, list) else str(messages)


def _text(value: Any) -> str:
    """A text filter value; characters PostgreSQL cannot store are refused like on writes."""
    if not isinstance(value, str):
        raise ValidationError("Not a valid string.")
    if "\x00" in value:
        raise ValidationError(Text.default_error_messages["null_characters"])
    surrogate = next((char for char in value if 0xD800 <= ord(char) <= 0xDFFF), None)
    if surrogate is not None:
        raise ValidationError(Text.default_error_messages["surrogate"].format(code_point=ord(surrogate)))
    return value


def value_parser(field: fields.Field) -> Callable[[Any], Any]:
    """How a filter value for this schema field is checked and converted."""
    if isinstance(field, DateTime):
        return lambda value: load_datetime(value, field.make_error)
    if isinstance(field, Text):
        return _text
    if isinstance(field, Choice):
        return lambda value: load_choice(value, field)
    if isinstance(field, Float):
        return lambda value: load_float(value, field.make_error)
    return lambda value: _integer(value, -MAX_BIGINT)  # ids, and Related fields (ids of other rows)


def operators(field: fields.Field) -> tuple[str, ...]:
    """The lookups a filter on this field takes ("" is equality); OpenAPI lists the same."""
    if isinstance(field, Choice):
        return ("", "isnull")  # ordering the names of kinds means nothing
    return (*COMPARISONS, "isnull", *(("icontains",) if isinstance(field, Text) else ()))


def _filter_term(lookup: str, value: Any, schema_fields: Mapping[str, fields.Field],
                 allowed: tuple[str, ...]) -> FilterTerm:
    field_name, separator, op = lookup.partition("__")
    if field_name not in allowed:
        raise _Problems(f'Cannot filter on "{field_name}"; use one of: {", ".join(allowed)}.')
    field = schema_fields[field_name]
    if op in ("isnull", "icontains"):
        return _special_term(lookup, field_name, op, value, field)
    is_text = isinstance(field, Text)
    if op not in COMPARISONS or (separator and not op):  # "first_name__" names no operator
        raise _Problems(f'Unknown filter operator "{op}" in "{lookup}"; '
                        "use none, gt, gte, lt, lte, isnull or icontains.")
    if op not in operators(field):
        allowed_lookups = ", ".join(f"{field_name}__{name}" if name else field_name for name in operators(field))
        raise _Problems(f'"{op}" does not work on "{field_name}"; use: {allowed_lookups}.')
    if value is None and op == "":
        return FilterTerm(field_name, op, None, is_text)
    try:
        converted = value_parser(field)(value)
    except ValidationError as exc:
        raise _Problems(f'Invalid value for "{lookup}": {_message_of(exc)}') from None
    except _Problems as exc:
        raise _Problems(f'Invalid value for "{lookup}": {exc}') from None
    return FilterTerm(field_name, op, converted, is_text)


def _special_term(lookup: str, field_name: str, op: str, value: Any, field: fields.Field) -> FilterTerm:
    """`__isnull` (a boolean) and `__icontains` (text fields only)."""
    is_text = isinstance(field, Text)
    if op == "isnull":
        if not isinstance(value, bool):
            raise _Problems(f'"{lookup}" takes true or false.')
        return FilterTerm(field_name, op, value, is_text)
    if not is_text:
        raise _Problems(f'"icontains" works on text fields only, not on "{field_name}".')
    try:
        return FilterTerm(field_name, op, _text(value), is_text)
    except ValidationError as exc:
        raise _Problems(f'Invalid value for "{lookup}": {_message_of(exc)}') from None


def _term_sql(term: FilterTerm, param: str) -> tuple[str, Any]:
    """The term's WHERE clause and its parameter value (None: no parameter)."""
    column = f'"{term.field}"'
    if term.op == "isnull":
        return f"{column} IS {'' if term.value else 'NOT '}NULL", None
    if term.op == "icontains":
        escaped = term.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{column} ILIKE %({param})s", f"%{escaped}%"
    if term.value is None:
        return f"{column} IS NULL", None
    if term.text and term.op:  # code point order, whatever the database's collation: as in Python
        column = f'{column} COLLATE "C"'
    return f"{column} {COMPARISONS[term.op]} %({param})s", term.value


def parse_filters(raw: Any, schema_fields: Mapping[str, fields.Field],
                  allowed: tuple[str, ...]) -> tuple[list[FilterTerm], list[str]]:
    """The terms of a filters object, and a message for each bad one."""
    if raw is None:
        return [], []
    if not isinstance(raw, dict):
        return [], [f"Expected an object of field lookups, but got {type(raw).__name__}."]
    terms, problems = [], []
    for lookup, value in raw.items():
        try:
            terms.append(_filter_term(lookup, value, schema_fields, allowed))
        except _Problems as exc:
            problems.append(str(exc))
    return terms, problems


def _filters(raw: Any, schema_fields: Mapping[str, fields.Field], allowed: tuple[str, ...],
             params: dict[str, Any]) -> tuple[str, list[str]]:
    terms, problems = parse_filters(raw, schema_fields, allowed)
    clauses = []
    for index, term in enumerate(terms):
        clause, converted = _term_sql(term, f"f{index}")
        clauses.append(clause)
        if converted is not None:
            params[f"f{index}"] = converted
    return " AND ".join(clauses) or "TRUE", problems


def _ordering(raw: Any, allowed: tuple[str, ...]) -> tuple[str, list[str]]:
    if raw is None or raw == "":
        return '"id" ASC', []
    if not isinstance(raw, str):
        return "", ['Expected a string such as "last_name,-admission_date".']
    terms, problems = [], []
    for term in (part.strip() for part in raw.split(",")):
        name = term.removeprefix("-")
        if name not in allowed:
            problems.append(f'Cannot order by "{name}"; use one of: {", ".join(allowed)}.')
            continue
        terms.append(f'"{name}" {"DESC" if term.startswith("-") else "ASC"}')
    if not any(term.startswith('"id" ') for term in terms):
        terms.append('"id" ASC')  # a stable order, so pages never repeat or skip rows
    return ", ".join(terms), problems


def parse_list_options(payload: Mapping[str, Any], schema: Schema, filter_fields: tuple[str, ...],
                       ordering_fields: tuple[str, ...], max_page_size: int) -> ListQuery:
    """Validate the list options of a request; raise one 400 naming every bad option."""
    problems: dict[str, list[str]] = {}
    params: dict[str, Any] = {}
    limit = None
    offset = 0
    paginated = payload.get("limit") is not None
    for key, minimum, maximum in (("limit", 1, None), ("offset", 0, MAX_BIGINT)):
        if payload.get(key) is None:
            continue
        try:
            number = _integer(payload[key], minimum, maximum)
        except _Problems as exc:
            problems[key] = [str(exc)]
            continue
        if key == "limit":
            limit = min(number, max_page_size)
        else:
            offset = number
    order_by, order_problems = _ordering(payload.get("ordering"), ordering_fields)
    where, filter_problems = _filters(payload.get("filters"), schema.fields, filter_fields, params)
    problems.update({key: found for key, found in (("ordering", order_problems), ("filters", filter_problems)) if found})
    if problems:
        raise BadRequest([problems])
    params.update(limit=limit, offset=offset if paginated else 0)
    return ListQuery(where, order_by, params, paginated, limit, offset)
