"""`subscribe` filters on a row: the validated terms (server/resources/listing.py parses them, and renders
them as SQL for `list`), evaluated in Python exactly as the database evaluates that SQL."""
from __future__ import annotations

import dataclasses
import operator
from typing import Any, Callable, Mapping

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
# Where Python's lower() is not the single-character mapping PostgreSQL applies.
SIMPLE_LOWER = {"\u0130": "i"}


@dataclasses.dataclass(frozen=True)
class FilterTerm:
    """One validated `field__op: value` of a filters object; rendered as SQL or evaluated."""

    field: str
    op: str          # "" (equals), gt, gte, lt, lte, isnull, icontains
    value: Any       # converted; None with op "" means IS NULL; a bool for isnull
    text: bool       # a text field: range comparisons go by code point in SQL and in Python


def _lower(text: str) -> str:
    """PostgreSQL's lower() under a UTF-8 locale: one character at a time (no final sigma)."""
    if text.isascii():
        return text.lower()
    return "".join(SIMPLE_LOWER.get(char) or char.lower() for char in text)


def term_matches(term: FilterTerm, row: Mapping[str, Any]) -> bool:
    """The term evaluated on a row the way the database evaluates its SQL (NULL is never equal)."""
    value = row.get(term.field)
    if term.op == "isnull":
        return (value is None) == term.value
    if term.value is None:
        return value is None
    if value is None:
        return False
    if term.op == "icontains":
        return _lower(term.value) in _lower(value)
    return COMPARE[term.op](value, term.value)


def filters_match(terms: tuple[FilterTerm, ...] | list[FilterTerm], row: Mapping[str, Any] | None) -> bool:
    """Whether a row (None: no row) passes every term."""
    return row is not None and all(term_matches(term, row) for term in terms)
