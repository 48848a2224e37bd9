"""The generic actions every resource has: list, retrieve, create, update, patch, delete over its sql file."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from marshmallow import ValidationError

from schemas.fields import MAX_BIGINT, Related, parse_integer
from server.errors import (ApiError, BadRequest, CheckViolation, Conflict, IdempotencyKeyReused, IdempotencyKeyTaken,
                           NotFound, ReferenceViolation)
from server.resources.declaration import Call, Handler, Reply
from server.resources.listing import parse_list_options


def lookup_pk(payload: Mapping[str, Any]) -> int:
    """The payload's pk as an integer: an int, or a string of digits; anything else is 404."""
    if "pk" not in payload:
        raise BadRequest(['Missing "pk".'])
    pk = parse_integer(payload["pk"], signed=False)
    if pk is None or not 0 < pk <= MAX_BIGINT:
        raise NotFound()
    return pk


async def load_data(call: Call, payload: Mapping[str, Any], partial: bool) -> dict[str, Any]:
    """Validate the payload's data with the resource schema; DRF's 400 shapes on failure."""
    data = payload.get("data")
    if data is None:
        raise BadRequest([{"non_field_errors": ["No data provided"]}])
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise BadRequest([{"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}])
    schema = call.resource.schema_instance
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        messages = {**exc.messages, **await missing_related(call, data, exc.messages)}
    # DRF lists the failing fields in the serializer's order.
    raise BadRequest([{name: messages[name] for name in (*schema.fields, *messages) if name in messages}])


async def missing_related(call: Call, data: Mapping[str, Any], failed: Mapping[str, Any]) -> dict[str, Any]:
    """The related objects that do not exist, among fields that are otherwise valid: DRF reports
    them with the other fields' errors. Only a failing request asks; a valid one learns it from
    the write's foreign key (write_row), in the same round trip."""
    missing = {}
    for name, field in call.resource.schema_instance.fields.items():
        if isinstance(field, Related) and name in data and name not in failed:
            pk = parse_integer(data[name], digits=100)
            if await call.db.fetch_one(f"{field.to}.retrieve", {"pk": pk}) is None:
                missing[name] = field.does_not_exist(data[name]).messages
    return missing


async def write_row(call: Call, query: str, params: Mapping[str, Any], data: Mapping[str, Any],
                    record: str | None = None) -> dict[str, Any] | None:
    """Run a create or update query (and `record`, in its statement: see Database.write)."""
    try:
        return await call.db.write(call.resource.query(query), params, call.user.id, record)
    except (CheckViolation, ReferenceViolation) as exc:
        raise field_error(call, exc, data) from None


def field_error(call: Call, exc: CheckViolation | ReferenceViolation, data: Mapping[str, Any]) -> ApiError:
    """A foreign key a write broke is reported on its field, as DRF does, and a CHECK on the field
    its schema names (constraint_errors: rules that span a stored value); else the generic 400."""
    if isinstance(exc, CheckViolation):
        claim = getattr(call.resource.schema_instance, "constraint_errors", None)
        errors = None if claim is None else claim(exc.constraint, data)
        return BadRequest([errors]) if errors else exc
    for name, field in call.resource.schema_instance.fields.items():
        # PostgreSQL names a column's foreign key <table>_<column>_fkey (see Related).
        if isinstance(field, Related) and name in data and exc.constraint == f"{exc.table}_{name}_fkey":
            return BadRequest([{name: field.does_not_exist(data[name]).messages}])
    return exc


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
    return 200, call.resource.dump(row)


async def create_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    key = payload.get("idempotency_key")
    if key is not None and not (isinstance(key, str) and 0 < len(key) <= 255):
        raise BadRequest(["The idempotency key must be a string of 1 to 255 characters."])
    data = await load_data(call, payload, partial=False)
    params = {name: data.get(name) for name in call.resource.writable_fields}
    if key is not None:
        return await create_once(call, key, params, payload["data"])
    row = await write_row(call, "create", params, payload["data"])
    return 201, call.resource.dump(row)


async def create_once(call: Call, key: str, params: Mapping[str, Any], data: Mapping[str, Any]) -> Reply:
    """A create with an idempotency key, recorded by the insert's own statement: a retry (after a
    504, say) answers with the object the first one created, and creates nothing. The same key with
    other data is refused (422)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    keyed = {**params, "idempotency_user": call.user.id, "idempotency_resource": call.resource.name,
             "idempotency_key": key, "idempotency_fingerprint": hashlib.sha256(canonical.encode()).hexdigest()}
    for _ in range(2):  # a second time only if the key found had just expired
        try:
            row = await write_row(call, "create", keyed, data, record="writes.record_key")
            return 201, call.resource.dump(row)
        except IdempotencyKeyTaken:
            found = await call.db.fetch_one("writes.find_key", {**keyed, "retain": call.db.idempotency_retain})
        if found is not None:
            break
    else:
        raise Conflict(["A create with this idempotency key is in progress; retry."])
    if found["fingerprint"] != keyed["idempotency_fingerprint"]:
        raise IdempotencyKeyReused()
    row = await call.db.fetch_one(call.resource.query("retrieve"), {"pk": found["object_id"]})
    if row is None:  # created, then deleted since
        raise NotFound()
    return 201, call.resource.dump(row)


async def _change_object(call: Call, payload: Mapping[str, Any], partial: bool) -> Reply:
    pk = lookup_pk(payload)
    try:
        data = await load_data(call, payload, partial=partial)
    except BadRequest:
        # The protocol answers 404 before 400: a missing object outranks bad data.
        if await call.db.fetch_one(call.resource.query("retrieve"), {"pk": pk}) is None:
            raise NotFound() from None
        raise
    params: dict[str, Any] = {"pk": pk}
    for name in call.resource.writable_fields:
        params[name] = data.get(name)
        params[f"{name}__set"] = name in data
    row = await write_row(call, "update", params, payload["data"])
    if row is None:
        raise NotFound()
    return 200, call.resource.dump(row)


async def update_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    return await _change_object(call, payload, partial=False)


async def patch_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    return await _change_object(call, payload, partial=True)


async def delete_object(call: Call, payload: Mapping[str, Any]) -> Reply:
    if await call.db.write(call.resource.query("delete"), {"pk": lookup_pk(payload)}, call.user.id) is None:
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
    "subscribe_instance": ("retrieve",), "unsubscribe_instance": (), "subscribe": (), "unsubscribe": (),
}
