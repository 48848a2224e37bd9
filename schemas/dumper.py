"""Schema.dump for the hot read path: the same dicts as marshmallow, without its per-call machinery.

compile_dumper(schema) looks at the schema's dump fields once and returns a function that turns a
database row (a dict) into exactly what `schema.dump(row)` returns. Fields it knows (Id, Integer,
Text, DateTime) are converted inline; any other field goes through marshmallow's own serialize, so a
new field type is never dumped differently, only more slowly. tests/test_dumper.py holds the proof.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from marshmallow import Schema, fields, missing

from schemas.fields import DateTime, Text, format_datetime

Dumper = Callable[[Mapping[str, Any]], dict[str, Any]]
KEEP = None            # the value is dumped as it is (Text, and None for every known field)
FALLBACK = object()    # marshmallow's own Field.serialize


def _converter(field: fields.Field) -> Any:
    if field.dump_default is not missing or (field.attribute and "." in field.attribute):
        return FALLBACK
    kind = type(field)
    if kind is Text:
        return KEEP
    if kind is DateTime:
        return format_datetime
    if isinstance(field, fields.Integer) and kind._serialize is fields.Number._serialize and not field.as_string:
        return int
    return FALLBACK


def compile_dumper(schema: Schema) -> Dumper:
    """A function equal to schema.dump for dict rows (anything else is handed to schema.dump)."""
    plan = tuple(
        (field.data_key or name, field.attribute or name, _converter(field), field, name)
        for name, field in schema.dump_fields.items()
    )

    def dump(row: Mapping[str, Any]) -> dict[str, Any]:
        if type(row) is not dict:
            return schema.dump(row)
        out = {}
        for key, attribute, convert, field, name in plan:
            if convert is FALLBACK:
                value = field.serialize(name, row, accessor=schema.get_attribute)
            else:
                value = row.get(attribute, missing)
                if value is not None and value is not missing and convert is not KEEP:
                    value = convert(value)
            if value is not missing:
                out[key] = value
        return out

    return dump
