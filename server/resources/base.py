"""A resource declared once (schema, queries, permissions) and its generic actions."""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Awaitable, Callable, Mapping

from marshmallow import Schema, ValidationError

from schemas.dumper import Dumper, compile_dumper
from server.db import Database
from server.errors import BadRequest, NotFound
from server.listing import MAX_BIGINT, parse_list_options
from server.users import User

Reply = tuple[int, Any]                      # (response_status, data)
Permission = Callable[[User, str], bool]     # (user, action) -> allowed?


@dataclasses.dataclass(frozen=True)
class Call:
    """What an action handler gets besides the payload."""

    db: Database
    user: User
    resource: Resource
    max_page_size: int


Handler = Callable[[Call, Mapping[str, Any]], Awaitable[Reply]]


def authenticated(user: User, action: str) -> bool:
    """Every signed-in, active user may do everything."""
    return user.is_active


@dataclasses.dataclass(frozen=True)
class Resource:
    """One database resource as both transports serve it; see server/resources/patients.py."""

    name: str                                   # the stream name, and sql/<name>.sql
    schema: type[Schema]                        # loads writes, dumps replies
    actions: Mapping[str, Handler]              # action name -> handler
    filter_fields: tuple[str, ...] = ()
    ordering_fields: tuple[str, ...] = ()
    permission: Permission = authenticated

    def query(self, name: str) -> str:
        return f"{self.name}.{name}"

    # Built once per resource: a marshmallow Schema() costs more than the query it serves.
    @functools.cached_property
    def schema_instance(self) -> Schema:
        return self.schema()

    @functools.cached_property
    def dump(self) -> Dumper:
        return compile_dumper(self.schema_instance)

    @functools.cached_property
    def writable_fields(self) -> list[str]:
        return [name for name, field in self.schema_instance.fields.items() if not field.dump_only]


def lookup_pk(payload: Mapping[str, Any]) -> int:
    """The payload's pk as an integer: an int, or a string of digits; anything else is 404."""
    if "pk" not in payload:
        raise BadRequest(['Missing "pk".'])
    pk = payload["pk"]
    if isinstance(pk, str) and pk.isascii() and pk.isdigit() and len(pk) <= 19:
        pk = int(pk)
    if type(pk) is not int or not 0 < pk <= MAX_BIGINT:
        raise NotFound()
    return pk


def load_data(call: Call, payload: Mapping[str, Any], partial: bool) -> dict[str, Any]:
    """Validate the payload's data with the resource schema; DRF's 400 shapes on failure."""
    data = payload.get("data")
    if data is None:
        raise BadRequest([{"non_field_errors": ["No data provided"]}])
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise BadRequest([{"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}])
    try:
        return call.resource.schema_instance.load(data, partial=partial)
    except ValidationError as exc:
        raise BadRequest([exc.messages]) from None


def dump(call: Call, row: Mapping[str, Any]) -> dict[str, Any]:
    return call.resource.dump(row)


async def list_objects(call: Call, payload: Mapping[str, Any]) -> Reply:
    resource = call.resource
    options = parse_list_options(payload, resource.schema_instance, resource.filter_fields,
                                 resource.ordering_fields, call.max_page_size)
    fragments = {"where": options.where, "order_by": options.order_by}
    rows = await call.db.fetch_all(resource.query("list"), options.params, **fragments)
    results = [resource.dump(row) for row in rows]
    if not options.paginated:
        return 200, results
    if rows:
        count = rows[0]["total_count"]
    else:  # past the end (or nothing matches): the window count has no row to ride on
        count = (await call.db.fetch_one(resource.query("count"), options.params, **fragments))["count"]
    return 200, {"count": count, "results": results, "limit": options.limit, "offset": options.offset}


async def retrieve_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    pk, batched = lookup_pk(payload), call.resource.query("retrieve_many")
    if batched in call.db.queries:  # optional query: concurrent retrieves share one round trip
        row = await call.db.lookups.fetch(batched, "id", pk)
    else:
        row = await call.db.fetch_one(call.resource.query("retrieve"), {"pk": pk})
    if row is None:
        raise NotFound()
    return 200, dump(call, row)


async def create_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    data = load_data(call, payload, partial=False)
    params = {name: data.get(name) for name in call.resource.writable_fields}
    row = await call.db.fetch_one(call.resource.query("create"), params)
    return 201, dump(call, row)


async def _change_object(call: Call, payload: Mapping[str, Any], partial: bool) -> Reply:
    pk = lookup_pk(payload)
    try:
        data = load_data(call, payload, partial=partial)
    except BadRequest:
        # The protocol answers 404 before 400: a missing object outranks bad data.
        if await call.db.fetch_one(call.resource.query("retrieve"), {"pk": pk}) is None:
            raise NotFound() from None
        raise
    params: dict[str, Any] = {"pk": pk}
    for name in call.resource.writable_fields:
        params[name] = data.get(name)
        params[f"{name}__set"] = name in data
    row = await call.db.fetch_one(call.resource.query("update"), params)
    if row is None:
        raise NotFound()
    return 200, dump(call, row)


async def update_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    return await _change_object(call, payload, partial=False)


async def patch_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    return await _change_object(call, payload, partial=True)


async def delete_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    if await call.db.fetch_one(call.resource.query("delete"), {"pk": lookup_pk(payload)}) is None:
        raise NotFound()
    return 204, None


CRUD: Mapping[str, Handler] = {
    "list": list_objects,
    "retrieve": retrieve_object,
    "create": create_object,
    "update": update_object,
    "patch": patch_object,
    "delete": delete_object,
}

# The queries a resource's sql file must define for each generic action.
QUERIES_FOR = {
    "list": ("list", "count"), "retrieve": ("retrieve",), "create": ("create",),
    "update": ("update", "retrieve"), "patch": ("update", "retrieve"), "delete": ("delete",),
}
