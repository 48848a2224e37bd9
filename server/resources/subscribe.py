"""The live actions every resource has, like CRUD: subscribe_instance / unsubscribe_instance
(DCRF's) and subscribe / unsubscribe (every change of the stream, filtered, resumable).

    >>> {"stream": "patients", "payload": {"action": "subscribe", "request_id": "s1", "filters": {"dismissal_date__isnull": true}}}
    <<< {"stream": "patients", "payload": {"errors": [], "data": {"cursor": "..."}, "action": "subscribe", "response_status": 201, "request_id": "s1"}}
    <<< {"stream": "patients", "payload": {"errors": [], "data": {...}, "action": "create", "response_status": 200, "request_id": "s1", "cursor": "..."}}

A subscription is named by its request_id (required: pushes carry it). Subscribing a request_id
again replaces that subscription; unsubscribing one request_id leaves the others alone.
"""
from __future__ import annotations

from typing import Any, Mapping

from server.errors import BadRequest, Forbidden, Gone, MethodNotAllowed, NotFound
from server.live.cursors import INVALID_CURSOR, Cursor
from server.live.filters import FilterTerm
from server.live.subscriptions import SocketSubscriptions
from server.resources.crud import CRUD, lookup_pk
from server.resources.declaration import Call, Handler, Reply
from server.resources.listing import parse_filters


def _live(call: Call, payload: Mapping[str, Any]) -> SocketSubscriptions:
    if call.live is None:  # a transport without pushes (HTTP) does not offer these actions
        raise MethodNotAllowed([f'Method "{payload.get("action")}" not allowed.'])
    return call.live


def _request_id(payload: Mapping[str, Any]) -> Any:
    if payload.get("request_id") is None:
        raise BadRequest(['Missing "request_id".'])
    return payload["request_id"]


def _may_watch(call: Call) -> None:
    """Pushes carry objects, so watching needs the permission to retrieve them."""
    if not call.resource.allows(call.user, "retrieve"):
        raise Forbidden()


def _stream_options(call: Call, payload: Mapping[str, Any]) -> tuple[tuple[FilterTerm, ...], Cursor | None]:
    """`filters` (as in list) and `since`; one 400 naming every bad option."""
    resource = call.resource
    terms, problems = parse_filters(payload.get("filters"), resource.schema_instance.fields, resource.filter_fields)
    found = {"filters": problems} if problems else {}
    since = None
    if payload.get("since") is not None:
        try:
            since = Cursor.parse(payload["since"])
        except ValueError:
            found["since"] = [INVALID_CURSOR]
    if found:
        raise BadRequest([found])
    return tuple(terms), since


async def subscribe_instance(call: Call, payload: Mapping[str, Any]) -> Reply:
    live = _live(call, payload)
    _may_watch(call)
    pk = lookup_pk(payload)
    request_id = _request_id(payload)
    # Registered before looking: a delete committed after the look is then surely pushed.
    sub = await live.watch_instance(call.resource, pk, request_id)
    try:
        row = await call.db.fetch_one(call.resource.query("retrieve"), {"pk": pk})
    except BaseException:
        live.cancel(sub)
        raise
    if row is None:
        live.cancel(sub)
        raise NotFound()
    return 201, None


async def unsubscribe_instance(call: Call, payload: Mapping[str, Any]) -> Reply:
    live = _live(call, payload)
    pk = lookup_pk(payload)
    live.unwatch_instance(call.resource, pk, _request_id(payload))
    return 204, None


async def subscribe(call: Call, payload: Mapping[str, Any]) -> Reply:
    live = _live(call, payload)
    _may_watch(call)
    request_id = _request_id(payload)
    terms, since = _stream_options(call, payload)
    if since is not None and await live.listener.lost(since):
        raise Gone()
    cursor = await live.watch_stream(call.resource, request_id, terms, since)
    return 201, {"cursor": str(cursor)}


async def unsubscribe(call: Call, payload: Mapping[str, Any]) -> Reply:
    live = _live(call, payload)
    live.unwatch_stream(call.resource, _request_id(payload))
    return 204, None


SUBSCRIBE: Mapping[str, Handler] = {
    "subscribe_instance": subscribe_instance,
    "unsubscribe_instance": unsubscribe_instance,
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
}

# The action table of a resource served with live changes: CRUD and the subscriptions.
ACTIONS: Mapping[str, Handler] = {**CRUD, **SUBSCRIBE}
