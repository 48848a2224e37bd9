"""Clinically impossible data is refused on the field that is wrong, on /ws/ and /api/ alike (issue #16)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pytest

from schemas.vitals import LIMITS
from tests.conftest import ADA, Socket, create, error, ok, patient
from tests.pg import cloned_database
from tests.test_cli import query, run
from tests.test_rest import call
from tests.test_vitals import HEART_RATE, add, request, vital

BEFORE = "Ensure this value is not before the admission date."
AFTER = "Ensure this value is not after the dismissal date."
FUTURE = "Ensure this value is no more than 5 minutes in the future."
STORED_VALUE = "Ensure this value is possible for the vital's kind."
STORED_UNIT = "Ensure this unit is the one of the vital's kind."
KIND_VALUE = "Ensure the vital's value is possible for this kind."
KIND_UNIT = "Ensure the vital's unit is the one of this kind."


def at(**delta: float) -> str:
    """An ISO 8601 time this far from now."""
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(**delta)).isoformat().replace("+00:00", "Z")


def minimum(number: float) -> str:
    return f"Ensure this value is greater than or equal to {number}."


def maximum(number: float) -> str:
    return f"Ensure this value is less than or equal to {number}."


@pytest.fixture
async def ada(ws: Socket) -> int:
    return (await create(ws))["id"]


async def test_a_discharge_before_the_admission_is_refused_on_dismissal_date(ws: Socket) -> None:
    early = {**ADA, "dismissal_date": "2026-10-02T08:30:00Z"}  # 30 days before admission
    assert await ws.request("create", data=early) == error([{"dismissal_date": [BEFORE]}], "create", 400)
    same_time = await ws.request("create", data={**ADA, "dismissal_date": ADA["admission_date"]})
    assert same_time == ok(patient(dismissal_date=ADA["admission_date"]), "create", 201)
    pk = same_time["data"]["id"]
    for action in ("update", "patch"):  # both dates sent: the schema judges them
        reply = await ws.request(action, pk=pk, data=early)
        assert reply == error([{"dismissal_date": [BEFORE]}], action, 400)
    # Field errors come first, as DRF's validate() runs only once every field is valid.
    reply = await ws.request("create", data={**early, "last_name": ""})
    assert reply == error([{"last_name": ["This field may not be blank."]}], "create", 400)
    assert await ws.request("list") == ok([same_time["data"]], "list")  # nothing else written


async def test_a_patch_of_one_date_is_judged_against_the_stored_other(ws: Socket) -> None:
    admitted = await create(ws)
    dismissed = await create(ws, dismissal_date="2026-11-20T10:00:00Z")
    reply = await ws.request("patch", pk=admitted["id"], data={"dismissal_date": "2026-10-31T23:59:59Z"})
    assert reply == error([{"dismissal_date": [BEFORE]}], "patch", 400)
    reply = await ws.request("patch", pk=dismissed["id"], data={"admission_date": "2026-11-20T10:00:01Z"})
    assert reply == error([{"admission_date": [AFTER]}], "patch", 400)
    reply = await ws.request("patch", pk=dismissed["id"], data={"admission_date": "2026-11-20T10:00:00Z"})
    assert reply["response_status"] == 200, reply
    reply = await ws.request("patch", pk=dismissed["id"], data={"dismissal_date": None})  # back on the ward
    assert reply["response_status"] == 200, reply
    assert await ws.request("retrieve", pk=admitted["id"]) == ok(admitted, "retrieve")


async def test_date_order_over_rest(client: Any, token: str) -> None:
    early = {**ADA, "dismissal_date": "2026-10-02T08:30:00Z"}
    assert await call(client, "POST", "/api/patients/", token, json=early) == (400, {"dismissal_date": [BEFORE]})
    status, body = await call(client, "POST", "/api/patients/", token, json=ADA)
    assert status == 201, body
    path = f"/api/patients/{body['id']}/"
    assert await call(client, "PUT", path, token, json=early) == (400, {"dismissal_date": [BEFORE]})
    assert await call(client, "PATCH", path, token, json={"dismissal_date": "2026-10-02T08:30:00Z"}) == (
        400, {"dismissal_date": [BEFORE]})
    assert (await call(client, "PATCH", path, token, json={"dismissal_date": "2026-11-02T08:30:00Z"}))[0] == 200
    assert await call(client, "PATCH", path, token, json={"admission_date": "2026-11-03T08:30:00Z"}) == (
        400, {"admission_date": [AFTER]})


async def test_every_kind_has_its_limits_and_the_database_the_same(ws: Socket, ada: int) -> None:
    for kind, (unit, lowest, highest) in LIMITS.items():
        reading = {"kind": kind, "unit": unit, "measured_at": HEART_RATE["measured_at"]}
        for number, message in ((lowest - 0.5, minimum(lowest)), (highest + 0.5, maximum(highest))):
            reply = await request(ws, "create", data={"patient": ada, **reading, "value": number})
            assert reply == error([{"value": [message]}], "create", 400), kind
        pk = (await add(ws, ada, **reading, value=lowest))["id"]
        reply = await request(ws, "patch", pk=pk, data={"value": highest})  # the CHECK has the same edges
        assert reply == ok(vital(ada, id=pk, **reading, value=float(highest)), "patch"), kind
        for number in (lowest - 0.5, highest + 0.5):  # no kind in the patch: the stored one is judged
            reply = await request(ws, "patch", pk=pk, data={"value": number})
            assert reply == error([{"value": [STORED_VALUE]}], "patch", 400), kind
        reply = await request(ws, "patch", pk=pk, data={"unit": "kg"})
        assert reply == error([{"unit": [STORED_UNIT]}], "patch", 400), kind
        reply = await request(ws, "create", data={"patient": ada, **reading, "value": lowest, "unit": "kg"})
        assert reply == error([{"unit": [f'"kg" is not a valid unit for {kind}. Use "{unit}".']}], "create", 400)


async def test_a_change_of_kind_is_judged_against_the_stored_value_and_unit(ws: Socket, ada: int) -> None:
    pk = (await add(ws, ada, value=150))["id"]  # heart rate 150 bpm
    reply = await request(ws, "patch", pk=pk, data={"kind": "spo2", "unit": "%"})
    assert reply == error([{"kind": [KIND_VALUE]}], "patch", 400)  # 150 % is no saturation
    reply = await request(ws, "patch", pk=pk, data={"kind": "spo2", "value": 97})
    assert reply == error([{"kind": [KIND_UNIT]}], "patch", 400)  # nor is bpm its unit
    reply = await request(ws, "patch", pk=pk, data={"kind": "spo2", "value": 97, "unit": "%"})
    assert reply == ok(vital(ada, id=pk, kind="spo2", value=97.0, unit="%"), "patch")


async def test_the_issues_impossible_readings_get_every_message_at_once(ws: Socket, ada: int) -> None:
    data = {"patient": ada, "kind": "spo2", "value": 250, "unit": "kg", "measured_at": at(days=3)}
    assert await request(ws, "create", data=data) == error([{
        "value": [maximum(100)], "unit": ['"kg" is not a valid unit for spo2. Use "%".'], "measured_at": [FUTURE],
    }], "create", 400)
    reply = await request(ws, "create", data={"patient": "x", **HEART_RATE, "value": -5})
    assert reply == error([{"patient": ["Incorrect type. Expected pk value, received str."],
                            "value": [minimum(0)]}], "create", 400)
    assert await request(ws, "list") == ok([], "list")


async def test_measured_at_may_be_at_most_five_minutes_ahead(ws: Socket, ada: int) -> None:
    reply = await request(ws, "create", data={"patient": ada, **HEART_RATE, "measured_at": at(minutes=6)})
    assert reply == error([{"measured_at": [FUTURE]}], "create", 400)
    soon = await add(ws, ada, measured_at=at(minutes=4))  # a device clock a little ahead
    reply = await request(ws, "patch", pk=soon["id"], data={"measured_at": at(hours=1)})
    assert reply == error([{"measured_at": [FUTURE]}], "patch", 400)


async def test_vitals_limits_over_rest(client: Any, token: str) -> None:
    status, body = await call(client, "POST", "/api/patients/", token, json=ADA)
    assert status == 201, body
    data = {"patient": body["id"], "kind": "spo2", "value": 250, "unit": "kg", "measured_at": at(days=3)}
    assert await call(client, "POST", "/api/vitals/", token, json=data) == (400, {
        "value": [maximum(100)], "unit": ['"kg" is not a valid unit for spo2. Use "%".'], "measured_at": [FUTURE]})
    status, created = await call(client, "POST", "/api/vitals/", token, json={**data, "value": 97, "unit": "%",
                                                                             "measured_at": at(minutes=-1)})
    assert status == 201, created
    path = f"/api/vitals/{created['id']}/"
    assert await call(client, "PATCH", path, token, json={"value": 101}) == (400, {"value": [STORED_VALUE]})
    assert await call(client, "PATCH", path, token, json={"unit": "bpm"}) == (400, {"unit": [STORED_UNIT]})
    assert await call(client, "PATCH", path, token, json={"kind": "heart_rate"}) == (400, {"kind": [KIND_UNIT]})


async def test_the_kinds_news2_needs(ws: Socket, ada: int) -> None:
    oxygen = {"kind": "supplemental_oxygen", "value": 2, "unit": "L/min"}
    reply = await request(ws, "create", data={"patient": ada, **HEART_RATE, **oxygen})
    assert reply == ok(vital(ada, **{**oxygen, "value": 2.0}), "create", 201)
    voice = {"kind": "consciousness", "value": "2", "unit": "ACVPU"}  # V on the ACVPU scale
    reply = await request(ws, "create", data={"patient": ada, **HEART_RATE, **voice})
    assert reply == ok(vital(ada, **{**voice, "value": 2.0}), "create", 201)
    pk = reply["data"]["id"]
    half = await request(ws, "create", data={"patient": ada, **HEART_RATE, **voice, "value": 2.5})
    assert half == error([{"value": ["A valid integer is required."]}], "create", 400)
    reply = await request(ws, "patch", pk=pk, data={"value": 2.5})  # the CHECK knows the scale too
    assert reply == error([{"value": [STORED_VALUE]}], "patch", 400)
    reply = await request(ws, "create", data={"patient": ada, **HEART_RATE, **voice, "unit": "GCS"})
    assert reply == error([{"unit": ['"GCS" is not a valid unit for consciousness. Use "ACVPU".']}], "create", 400)
    reply = await request(ws, "list", filters={"kind": "consciousness"})
    assert reply == ok([vital(ada, **{**voice, "id": pk, "value": 2.0})], "list")


def test_the_upgrade_keeps_a_wards_history_that_breaks_the_new_rules(pg_server: str) -> None:
    """0007 and 0008 add their CHECKs NOT VALID: rows the old rules let in do not stop the migration,
    and stay readable; every new or changed row is held to the rules, psql's too."""
    migrations = Path(__file__).resolve().parent.parent / "sql" / "migrations"
    with cloned_database(pg_server, "template0") as url:
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                           " applied_at timestamptz NOT NULL DEFAULT now())")
            for version, name in ((1, "users"), (2, "patients"), (3, "roles"), (4, "changes"), (5, "vitals")):
                cursor.execute((migrations / f"{version:04d}_{name}.sql").read_text(encoding="utf-8"))
                cursor.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            cursor.execute("INSERT INTO patients (first_name, last_name, admission_date, dismissal_date)"
                           " VALUES ('Old', 'Record', '2026-11-01T08:30:00Z', '2026-10-02T08:30:00Z') RETURNING id")
            (pk,) = cursor.fetchone()
            cursor.execute("INSERT INTO vitals (patient, kind, value, unit, measured_at)"
                           " VALUES (%s, 'spo2', 250, 'kg', '2026-11-28T08:00:00Z')", (pk,))
        connection.close()
        result = run(url, "migrate")
        assert (result.returncode, result.stdout) == (0, "applied 0006_accounts, 0007_validation, 0008_news2_kinds, 0009_idempotency, 0010_listener_marks\n"), result.stderr
        assert query(url, "SELECT kind, value, unit FROM vitals") == [("spo2", 250.0, "kg")]  # kept as it was
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            for sql in ("INSERT INTO vitals (patient, kind, value, unit, measured_at)"
                        f" VALUES ({pk}, 'spo2', 101, '%', now())",
                        f"INSERT INTO vitals (patient, kind, value, unit, measured_at) VALUES ({pk}, 'spo2', 97, 'kg', now())",
                        "UPDATE patients SET first_name = 'Changed'"):  # a changed row is checked too
                with pytest.raises(psycopg2.errors.CheckViolation):
                    cursor.execute(sql)
                connection.rollback()
            cursor.execute("UPDATE patients SET dismissal_date = NULL")  # put right, it is accepted
        connection.close()


async def test_changing_an_old_row_that_breaks_the_date_rule_names_the_dismissal(ws: Socket, database_url: str) -> None:
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:  # as history before 0007 left it
        cursor.execute("ALTER TABLE patients DROP CONSTRAINT patients_dismissal_not_before_admission")
        cursor.execute("INSERT INTO patients (first_name, last_name, admission_date, dismissal_date) VALUES"
                       " ('Old', 'Record', '2026-11-01T08:30:00Z', '2026-10-02T08:30:00Z') RETURNING id")
        (pk,) = cursor.fetchone()
        cursor.execute("ALTER TABLE patients ADD CONSTRAINT patients_dismissal_not_before_admission"
                       " CHECK (dismissal_date >= admission_date) NOT VALID")
    connection.close()
    reply = await ws.request("patch", pk=pk, data={"first_name": "Changed"})
    assert reply == error([{"dismissal_date": [BEFORE]}], "patch", 400)
    reply = await ws.request("patch", pk=pk, data={"dismissal_date": None})
    assert reply["response_status"] == 200, reply
