"""OPTIONS on /api/: DRF's SimpleMetadata (name, description, renders, parses, writable fields) from a declaration."""
from __future__ import annotations

from typing import Any

from marshmallow import fields

from schemas.fields import Choice, DateTime, Float, Id, Related, Text
from server.resources.declaration import Resource

RENDERS = ["application/json"]
PARSES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]

# DRF's names of its field classes (SimpleMetadata.label_lookup); a related object is a "field".
FIELD_TYPES: tuple[tuple[type[fields.Field], str], ...] = (
    (Id, "integer"), (Text, "string"), (DateTime, "datetime"), (Float, "float"), (Choice, "choice"),
    (Related, "field"))


def label(name: str, field: fields.Field) -> str:
    """Django's verbose name, capitalised as DRF shows it: admission_date -> "Admission date"."""
    if isinstance(field, Id):
        return "ID"
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


def field_info(name: str, field: fields.Field) -> dict[str, Any]:
    """One field as SimpleMetadata.get_field_info describes it, its keys in DRF's order."""
    kind = next((kind for cls, kind in FIELD_TYPES if isinstance(field, cls)), "field")
    info: dict[str, Any] = {"type": kind, "required": bool(field.required), "read_only": bool(field.dump_only),
                            "label": label(name, field)}
    if isinstance(field, Text):
        info["max_length"] = field.max_length
    if isinstance(field, Choice) and not field.dump_only:
        info["choices"] = [{"value": choice, "display_name": choice} for choice in field.choices]
    return info


def metadata(resource: Resource, item: bool, writes: list[str]) -> dict[str, Any]:
    """The body of OPTIONS on a resource path; `writes` are the methods (POST, PUT) this user may
    send there, each described by the resource's fields, as DRF lists only what is permitted."""
    body: dict[str, Any] = {
        "name": f"{resource.verbose_name} {'Instance' if item else 'List'}",
        "description": f'The "{resource.name}" stream of /ws/ over HTTP: /api/{resource.name}/[<pk>/].',
        "renders": RENDERS, "parses": PARSES}
    if writes:
        described = {name: field_info(name, field) for name, field in resource.schema_instance.fields.items()}
        body["actions"] = {method: described for method in writes}
    return body


def root_metadata() -> dict[str, Any]:
    """OPTIONS on /api/, as on DRF's DefaultRouter root."""
    return {"name": "Api Root", "description": "The default basic root view for DefaultRouter",
            "renders": RENDERS, "parses": PARSES}


def token_metadata() -> dict[str, Any]:
    """OPTIONS on /api/auth/token/, as DRF describes obtain_auth_token's AuthTokenSerializer."""
    def text(label: str, read_only: bool = False) -> dict[str, Any]:
        return {"type": "string", "required": not read_only, "read_only": read_only, "label": label}
    return {"name": "Obtain Auth Token", "description": "", "renders": RENDERS,
            "parses": ["application/x-www-form-urlencoded", "multipart/form-data", "application/json"],
            "actions": {"POST": {"username": text("Username"), "password": text("Password"),
                                 "token": text("Token", read_only=True)}}}
