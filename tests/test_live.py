"""Live changes over /ws/: the subscribe actions, every push shape, filters, unsubscribing."""
from __future__ import annotations

import dataclasses
import json

import pytest

from server.app import create_app
from server.resources.declaration import CRUD_PERMISSIONS, READ
from server.resources.patients import patients
from server.resources.vitals import vitals
from server.web.codec import encode_push
from server.web.keys import DB
from tests.conftest import ADA, Socket, create, error, ok, patient
from tests.live import CURSOR, instance_push, nothing_more, push, pushes, sql


def by_request_id(payloads: list[dict]) -> list[dict]:
    """Pushes of one change to several subscriptions come in no particular order."""
    return sorted(payloads, key=lambda payload: json.dumps(payload["request_id"]))


async def test_subscribe_instance_pushes_updates_and_the_delete(ws: Socket) -> None:
    ada = await create(ws)
    assert await ws.request("subscribe_instance", request_id="sub-1", pk=ada["id"]) == ok(
        None, "subscribe_instance", 201, request_id="sub-1")
    patched = await ws.request("patch", request_id=2, pk=ada["id"], data={"last_name": "King"})
    assert await pushes(ws, 1) == [instance_push(patched["data"], "update", 200, "sub-1")]
    assert await ws.request("delete", request_id=3, pk=ada["id"]) == ok(None, "delete", 204, request_id=3)
    assert await pushes(ws, 1) == [instance_push({"pk": ada["id"]}, "delete", 204, "sub-1")]
    await nothing_more(ws)


async def test_subscribe_instance_of_a_missing_object_is_404(ws: Socket) -> None:
    assert await ws.request("subscribe_instance", request_id="sub-9", pk=4242) == error(
        ["Not found"], "subscribe_instance", 404, request_id="sub-9")
    for pk in ("x", 1.5, None):
        assert await ws.request("subscribe_instance", request_id="s", pk=pk) == error(
            ["Not found"], "subscribe_instance", 404, request_id="s")
    assert await ws.request("subscribe_instance", request_id="s") == error(
        ['Missing "pk".'], "subscribe_instance", 400, request_id="s")


@pytest.mark.parametrize("action", ["subscribe_instance", "unsubscribe_instance", "subscribe", "unsubscribe"])
async def test_a_subscription_needs_a_request_id(ws: Socket, action: str) -> None:
    ada = await create(ws)
    for request_id in (None, "missing"):
        payload = {"action": action, "pk": ada["id"]} | ({} if request_id == "missing" else {"request_id": None})
        reply = await ws.call({"stream": "patients", "payload": payload})
        assert reply["payload"] == error(['Missing "request_id".'], action, 400, request_id=None)


async def test_subscribe_pushes_create_update_delete_with_cursors(ws: Socket, client) -> None:
    reply = await ws.request("subscribe", request_id="all")
    assert reply == ok({"cursor": CURSOR}, "subscribe", 201, request_id="all")
    ada = await create(ws)
    assert await pushes(ws, 1) == [push(ada, "create", 200, "all")]
    patched = await ws.request("patch", pk=ada["id"], data={"first_name": "Augusta"})
    assert await pushes(ws, 1) == [push(patched["data"], "update", 200, "all")]
    sql(client.app_database_url, "DELETE FROM patients")
    [deleted] = await pushes(ws, 1)
    assert deleted == push({"pk": ada["id"]}, "delete", 204, "all")
    assert list(deleted) == ["errors", "data", "action", "response_status", "request_id", "cursor"]
    await nothing_more(ws)


async def test_pushes_carry_each_changes_own_state(ws: Socket, client) -> None:
    # Three updates committed before the listener looks: three pushes, each with its own row.
    ada = await create(ws)
    assert (await ws.request("subscribe", request_id="all"))["response_status"] == 201
    sql(client.app_database_url, "UPDATE patients SET last_name = 'One'; UPDATE patients SET last_name = 'Two';"
                                 "UPDATE patients SET last_name = 'Three'")
    assert [p["data"]["last_name"] for p in await pushes(ws, 3)] == ["One", "Two", "Three"]
    assert ada["last_name"] == "Lovelace"


async def test_unsubscribing_one_request_id_leaves_the_others(ws: Socket) -> None:
    ada = await create(ws)
    for request_id in ("sub-1", "sub-2", "sub-3"):
        assert (await ws.request("subscribe_instance", request_id=request_id, pk=ada["id"]))["response_status"] == 201
    assert (await ws.request("subscribe", request_id="all"))["response_status"] == 201
    assert await ws.request("unsubscribe_instance", request_id="sub-2", pk=ada["id"]) == ok(
        None, "unsubscribe_instance", 204, request_id="sub-2")
    patched = (await ws.request("patch", pk=ada["id"], data={"last_name": "King"}))["data"]
    assert by_request_id(await pushes(ws, 3)) == [
        push(patched, "update", 200, "all"),
        instance_push(patched, "update", 200, "sub-1"), instance_push(patched, "update", 200, "sub-3")]
    await nothing_more(ws)
    assert await ws.request("unsubscribe", request_id="all") == ok(None, "unsubscribe", 204, request_id="all")
    # Unsubscribing what is not subscribed (or no longer exists) is fine too.
    assert await ws.request("unsubscribe", request_id="all") == ok(None, "unsubscribe", 204, request_id="all")
    assert await ws.request("unsubscribe_instance", request_id="x", pk=999) == ok(
        None, "unsubscribe_instance", 204, request_id="x")
    await ws.request("patch", pk=ada["id"], data={"last_name": "Byron"})
    assert [p["request_id"] for p in await pushes(ws, 2)] in (["sub-1", "sub-3"], ["sub-3", "sub-1"])
    await nothing_more(ws)


async def test_subscribing_a_request_id_again_replaces_it(ws: Socket) -> None:
    ada = await create(ws)
    for _ in range(2):
        assert (await ws.request("subscribe_instance", request_id="same", pk=ada["id"]))["response_status"] == 201
        assert (await ws.request("subscribe", request_id="same"))["response_status"] == 201
    assert (await ws.request("subscribe", request_id="same", filters={"last_name": "Nobody"}))["response_status"] == 201
    patched = (await ws.request("patch", pk=ada["id"], data={"first_name": "A"}))["data"]
    # One instance push; the stream subscription "same" now filters the change out.
    assert await pushes(ws, 1) == [instance_push(patched, "update", 200, "same")]
    await nothing_more(ws)


async def test_request_ids_of_any_json_type(ws: Socket) -> None:
    request_ids = [7, "s", [1, "two"], {"tab": 3}, 4.5, True]
    for request_id in request_ids:
        assert (await ws.request("subscribe", request_id=request_id))["response_status"] == 201
    ada = await create(ws)
    received = await pushes(ws, len(request_ids))
    assert sorted(map(json.dumps, (p["request_id"] for p in received))) == sorted(map(json.dumps, request_ids))
    assert all(p["data"] == ada for p in received)


# Filters: matched after -> update (create if not before); matched only before -> delete.
async def test_filters_push_rows_entering_and_leaving(ws: Socket, client) -> None:
    inpatients = {"dismissal_date__isnull": True, "last_name__icontains": "LOVE"}
    assert (await ws.request("subscribe", request_id="in", filters=inpatients))["response_status"] == 201
    assert (await ws.request("subscribe", request_id="all"))["response_status"] == 201
    ada = await create(ws)
    assert await pushes(ws, 2) == [push(ada, "create", 200, "in"), push(ada, "create", 200, "all")]
    grace = await create(ws, first_name="Grace", last_name="Hopper")
    assert await pushes(ws, 1) == [push(grace, "create", 200, "all")]
    await nothing_more(ws)
    discharged = (await ws.request("patch", pk=ada["id"], data={"dismissal_date": "2026-11-28T12:00:00Z"}))["data"]
    assert by_request_id(await pushes(ws, 2)) == [
        push(discharged, "update", 200, "all"), push({"pk": ada["id"]}, "delete", 204, "in")]
    await ws.request("patch", pk=ada["id"], data={"first_name": "Still out"})
    assert [p["request_id"] for p in await pushes(ws, 1)] == ["all"]
    await nothing_more(ws)
    readmitted = (await ws.request("patch", pk=ada["id"], data={"dismissal_date": None}))["data"]
    assert by_request_id(await pushes(ws, 2)) == [
        push(readmitted, "update", 200, "all"), push(readmitted, "create", 200, "in")]
    sql(client.app_database_url, "UPDATE patients SET last_name = 'Lovelace-King' WHERE last_name = 'Lovelace'")
    assert sorted((p["request_id"], p["action"]) for p in await pushes(ws, 2)) == [("all", "update"), ("in", "update")]
    sql(client.app_database_url, "DELETE FROM patients")
    assert sorted((p["request_id"], p["action"], p["data"]["pk"]) for p in await pushes(ws, 3)) == [
        ("all", "delete", ada["id"]), ("all", "delete", grace["id"]), ("in", "delete", ada["id"])]
    await nothing_more(ws)


async def test_equality_filters_see_rows_entering_and_leaving_by_their_value(ws: Socket) -> None:
    """Subscriptions with an equality term are found by its value (server/live/subscriptions.py):
    a change reaches those matching its row before or after it, and no others."""
    for request_id, last_name in (("ward", "Ward"), ("else", "Else"), ("other", "Other")):
        assert (await ws.request("subscribe", request_id=request_id, filters={"last_name": last_name}))["response_status"] == 201
    assert (await ws.request("subscribe", request_id="ward-ada", filters={"first_name": "Ada", "last_name": "Ward"}))[
        "response_status"] == 201
    ada = await create(ws, last_name="Ward")
    assert by_request_id(await pushes(ws, 2)) == [push(ada, "create", 200, "ward"), push(ada, "create", 200, "ward-ada")]
    await nothing_more(ws)
    moved = (await ws.request("patch", pk=ada["id"], data={"last_name": "Else"}))["data"]
    assert by_request_id(await pushes(ws, 3)) == [
        push(moved, "create", 200, "else"), push({"pk": ada["id"]}, "delete", 204, "ward"),
        push({"pk": ada["id"]}, "delete", 204, "ward-ada")]
    await nothing_more(ws)
    renamed = (await ws.request("patch", pk=ada["id"], data={"first_name": "Augusta"}))["data"]
    assert await pushes(ws, 1) == [push(renamed, "update", 200, "else")]
    await nothing_more(ws)


async def test_bad_filters_and_cursors_are_400(ws: Socket) -> None:
    reply = await ws.request("subscribe", request_id="s", filters={"ward": 1, "id__gt": "x"}, since="nonsense")
    assert reply == error([{"filters": [
        'Cannot filter on "ward"; use one of: id, first_name, last_name, admission_date, dismissal_date, '
        'updated_at, created_at.', 'Invalid value for "id__gt": A valid integer is required.'],
        "since": ["Not a valid cursor."]}], "subscribe", 400, request_id="s")
    for since in (5, ["1:2:"], "3:2:", "10:20:30", "10:20:15/10:21:/x", "10:20:/10:15:/1", "1:3:4",
                  "/1:3:/1", "1:3: ", "1:3:/1:3:", "\u0661:3:"):
        assert await ws.request("subscribe", request_id="s", since=since) == error(
            [{"since": ["Not a valid cursor."]}], "subscribe", 400, request_id="s"), since
    # Well formed, but from the future (or another database): not a cursor of ours either.
    assert await ws.request("subscribe", request_id="s", since="999999999:999999999:") == error(
        [{"since": ["Not a valid cursor."]}], "subscribe", 400, request_id="s")
    # Nothing was subscribed by the failed requests.
    await create(ws)
    await nothing_more(ws)


# Viewers may list and subscribe here, but not retrieve (nor unsubscribe, which is unlisted).
READ_BUT_NOT_RETRIEVE = {"list": READ, "subscribe": READ, "subscribe_instance": READ}


async def test_subscribing_needs_retrieve_permission(aiohttp_client, config, database_url: str, token_for) -> None:
    resource = dataclasses.replace(patients, permissions=READ_BUT_NOT_RETRIEVE)
    app = create_app(dataclasses.replace(config, database_url=database_url), resources=(resource,))
    client = await aiohttp_client(app)
    async with client.ws_connect(f"/ws/?token={await token_for(client, 'viewer', 'viewer')}") as connection:
        ws = Socket(connection)
        for action in ("subscribe", "subscribe_instance"):
            assert await ws.request(action, request_id="s", pk=1) == error(
                ["You do not have permission to perform this action."], action, 403, request_id="s")
        assert await ws.request("unsubscribe", request_id="s") == error(
            ["You do not have permission to perform this action."], "unsubscribe", 403, request_id="s")


async def test_pushes_check_retrieve_permission_each_time(aiohttp_client, config, database_url: str,
                                                          token_for) -> None:
    permissions = dict(CRUD_PERMISSIONS)  # switched below, while the socket is open
    app = create_app(dataclasses.replace(config, database_url=database_url),
                     resources=(dataclasses.replace(patients, permissions=permissions), vitals))
    client = await aiohttp_client(app)
    async with client.ws_connect(f"/ws/?token={await token_for(client)}") as connection:
        ws = Socket(connection)
        assert (await ws.request("subscribe", request_id="all"))["response_status"] == 201
        ada = await create(ws)
        assert await pushes(ws, 1) == [push(ada, "create", 200, "all")]
        permissions["retrieve"] = frozenset()
        await create(ws, first_name="Hidden")
        assert (await ws.request("subscribe_instance", request_id="s", pk=ada["id"]))["response_status"] == 403
        # The listener has handed "Hidden" out (to no one) once a subscribe on another stream answers:
        # a subscribe waits for a listener pass that started after the request (and "Hidden" was
        # committed before it).
        assert (await ws.request("subscribe", request_id="sync", stream="vitals"))["response_status"] == 201
        assert (await ws.request("unsubscribe", request_id="sync", stream="vitals"))["response_status"] == 204
        permissions["retrieve"] = READ
        grace = await create(ws, first_name="Grace")
        assert await pushes(ws, 1) == [push(grace, "create", 200, "all")]  # not "Hidden"
        await nothing_more(ws)


async def test_the_change_log_records_the_acting_user(ws: Socket, client) -> None:
    ada = await create(ws)
    await ws.request("patch", pk=ada["id"], data={"last_name": "King"})
    sql(client.app_database_url, "UPDATE patients SET first_name = 'Augusta'")
    await ws.request("delete", pk=ada["id"])
    rows = sql(client.app_database_url, "SELECT c.op, u.username, c.old FROM changes c "
                                        "LEFT JOIN users u ON u.id = c.user_id ORDER BY c.id")
    assert [(op, username) for op, username, _ in rows] == [
        ("create", "nurse"), ("update", "nurse"), ("update", None), ("delete", "nurse")]
    assert set(rows[1][2]) == {"last_name", "updated_at"} and rows[1][2]["last_name"] == "Lovelace"
    # The setting lives only as long as the write's transaction: nothing is left on the pooled
    # connection for the next query (the pool has one connection here, used by every request).
    db = client.app[DB]
    db.queries["test.acting_user"] = "SELECT current_setting('dashboard.user_id', true) AS setting"
    assert await db.fetch_one("test.acting_user") == {"setting": ""}


def test_push_frames_are_what_json_dumps_writes() -> None:
    for request_id in (1, "s", [1, {"a": None}], 4.5, "\u00e9"):
        for cursor in (None, "10:12:11/10:13:/5"):
            data = {"id": 1, "first_name": "Zo\u00eb"}
            frame = encode_push(json.dumps("patients"), json.dumps(data), "update", 200, json.dumps(request_id), cursor)
            payload = {"errors": [], "data": data, "action": "update", "response_status": 200, "request_id": request_id}
            if cursor is not None:
                payload["cursor"] = cursor
            assert frame == json.dumps({"stream": "patients", "payload": payload})


async def test_a_patient_created_with_every_field_is_pushed_whole(ws: Socket) -> None:
    assert (await ws.request("subscribe", request_id="all"))["response_status"] == 201
    created = await create(ws, dismissal_date="2026-11-20T10:00:00.5+02:00", first_name="Zo\u00eb \U0001f642")
    assert created == patient(dismissal_date="2026-11-20T08:00:00.500000Z", first_name="Zo\u00eb \U0001f642")
    assert await pushes(ws, 1) == [push(created, "create", 200, "all")]
    assert ADA["first_name"] == "Ada"
