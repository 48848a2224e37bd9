"""The REST mirror over a real server socket: every route, method and DRF error shape, whole bodies."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import ADA, Socket, patient
from tests.pg import admin

NOT_FOUND = {"detail": "No Patient matches the given query."}
WRONG_DATETIME = ("Datetime has wrong format. Use one of these formats instead: "
                  "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")


async def call(client, method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
    """One request; (status, parsed JSON body or None when there is no body)."""
    headers = {"Authorization": f"Token {token}"} if token else {}
    async with client.request(method, path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs) as response:
        text = await response.text()
        if text:
            assert response.content_type == "application/json", text
        return response.status, (await response.json() if text else None)


async def post_patient(client, token: str, **fields: Any) -> dict[str, Any]:
    status, body = await call(client, "POST", "/api/patients/", token, json={**ADA, **fields})
    assert status == 201, body
    return body


async def test_create_list_retrieve_update_patch_delete(client, token: str) -> None:
    created = await post_patient(client, token)
    assert created == patient()
    pk = created["id"]
    assert await call(client, "GET", "/api/patients/", token) == (200, [created])
    assert await call(client, "GET", f"/api/patients/{pk}/", token) == (200, created)
    full = {"first_name": "Augusta Ada", "last_name": "Lovelace", "admission_date": "2024-01-15T10:30:00Z",
            "dismissal_date": "2024-02-01T08:00:00Z"}
    assert await call(client, "PUT", f"/api/patients/{pk}/", token, json=full) == (
        200, patient(id=pk, **full, created_at=created["created_at"]))
    assert await call(client, "PATCH", f"/api/patients/{pk}/", token, json={"last_name": "King"}) == (
        200, patient(id=pk, **{**full, "last_name": "King"}, created_at=created["created_at"]))
    assert await call(client, "DELETE", f"/api/patients/{pk}/", token) == (204, None)
    assert await call(client, "DELETE", f"/api/patients/{pk}/", token) == (404, NOT_FOUND)
    assert await call(client, "GET", f"/api/patients/{pk}/", token) == (404, NOT_FOUND)


async def test_validation_errors_are_drf_shaped(client, token: str) -> None:
    invalid = {"last_name": "NoFirstName", "admission_date": "not-a-date"}
    assert await call(client, "POST", "/api/patients/", token, json=invalid) == (
        400, {"first_name": ["This field is required."], "admission_date": [WRONG_DATETIME]})
    pk = (await post_patient(client, token))["id"]
    assert await call(client, "PUT", f"/api/patients/{pk}/", token, json={"first_name": "OnlyFirst"}) == (
        400, {"last_name": ["This field is required."], "admission_date": ["This field is required."]})
    assert await call(client, "PATCH", f"/api/patients/{pk}/", token, json=[1]) == (
        400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
    assert await call(client, "PATCH", f"/api/patients/{pk}/", token, data="null",
                      headers={"Content-Type": "application/json"}) == (
        400, {"non_field_errors": ["No data provided"]})
    assert await call(client, "POST", "/api/patients/", token) == (
        400, {"first_name": ["This field is required."], "last_name": ["This field is required."],
              "admission_date": ["This field is required."]})
    # The object's absence outranks bad data, as on /ws/.
    assert await call(client, "PATCH", "/api/patients/987654/", token, json={"first_name": ""}) == (404, NOT_FOUND)


@pytest.mark.parametrize("pk", ["0", "-1", "99999999999999999999"])
async def test_a_pk_that_names_no_row_is_404(client, token: str, pk: str) -> None:
    assert await call(client, "GET", f"/api/patients/{pk}/", token) == (404, NOT_FOUND)


@pytest.mark.parametrize("pk", ["abc", "1.0", "+1", "1_0", "%201", "%EF%BC%91"])
async def test_a_pk_that_is_no_number_is_drfs_generic_404(client, token: str, pk: str) -> None:
    await post_patient(client, token)
    for method in ("GET", "PUT", "PATCH", "DELETE"):  # before the body is even read, as DRF's get_object
        assert await call(client, method, f"/api/patients/{pk}/", token, json={}) == (
            404, {"detail": "Not found."}), method


async def test_methods_not_allowed_name_the_allowed_ones(client, token: str) -> None:
    async with client.post("/api/patients/1/", json={}, headers={"Authorization": f"Token {token}"}) as response:
        assert response.status == 405 and response.headers["Allow"] == "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
        assert await response.json() == {"detail": 'Method "POST" not allowed.'}
    async with client.put("/api/patients/", json={}, headers={"Authorization": f"Token {token}"}) as response:
        assert response.status == 405 and response.headers["Allow"] == "GET, POST, HEAD, OPTIONS"
        assert await response.json() == {"detail": 'Method "PUT" not allowed.'}
    # Authentication comes first, as in DRF.
    assert await call(client, "POST", "/api/patients/1/", json={}) == (
        401, {"detail": "Authentication credentials were not provided."})
    async with client.head("/api/patients/", headers={"Authorization": f"Token {token}"}) as response:
        assert response.status == 200 and await response.read() == b""
    async with client.get("/api/auth/token/") as response:
        assert response.status == 405 and await response.json() == {"detail": 'Method "GET" not allowed.'}
        assert response.headers["Allow"] == "POST, OPTIONS"


async def test_unknown_api_paths_are_a_json_404(client, token: str) -> None:
    for path in ("/api/nope/", "/api/nope", "/api/patients/1/extra/", "/api/patients.JSON"):
        assert await call(client, "GET", path, token) == (404, {"detail": "Not found."}), path
    assert await call(client, "GET", "/api/nope/") == (404, {"detail": "Not found."})


async def test_bodies_that_are_not_json_objects(client, token: str) -> None:
    json_header = {"Content-Type": "application/json"}
    assert await call(client, "POST", "/api/patients/", token, data="this is {not json", headers=json_header) == (
        400, {"detail": "JSON parse error - Expecting value: line 1 column 1 (char 0)"})
    assert await call(client, "POST", "/api/patients/", token, data='{"a": NaN}', headers=json_header) == (
        400, {"detail": "JSON parse error - Out of range float values are not JSON compliant: 'NaN'"})
    assert await call(client, "POST", "/api/patients/", token, data="x", headers={"Content-Type": "text/plain"}) == (
        415, {"detail": 'Unsupported media type "text/plain" in request.'})
    # The one decoder of both transports: beyond a double is no JSON number, as on /ws/.
    assert await call(client, "POST", "/api/vitals/", token, data='{"value": 1e999}', headers=json_header) == (
        400, {"detail": "JSON parse error - Out of range float values are not JSON compliant: '1e999'"})
    deep = "[" * 200_000 + "]" * 200_000
    for path in ("/api/patients/", "/api/auth/token/", "/api/auth/login/"):  # a 400, not a RecursionError's 500
        assert await call(client, "POST", path, token, data=deep, headers=json_header) == (
            400, {"detail": "JSON parse error - Nested too deeply (at most 32 levels)"}), path
    # Deep enough to hurt later (the schema, the reply), not deep enough to stop the parser: refused as well.
    assert await call(client, "POST", "/api/patients/", token, data='{"first_name": ' + "[" * 40 + "]" * 40 + "}",
                      headers=json_header) == (400, {"detail": "JSON parse error - Nested too deeply (at most 32 levels)"})


async def test_a_form_body_works_like_curl_d(client, token: str) -> None:
    form = {"first_name": "Ada", "last_name": "Lovelace", "admission_date": "2026-11-01T08:30:00Z",
            "dismissal_date": ""}
    status, body = await call(client, "POST", "/api/patients/", token, data=form)
    assert (status, body) == (201, patient())  # an empty nullable field is null, as in DRF


@pytest.mark.parametrize(("header", "body"), [
    (None, {"detail": "Authentication credentials were not provided."}),
    ("Token not-a-real-token", {"detail": "Invalid token."}),
    ("Token 0000000000000000000000000000000000000000", {"detail": "Invalid token."}),
    ("Token", {"detail": "Invalid token header. No credentials provided."}),
])
async def test_unauthenticated_requests_get_401(client, token: str, header: str | None, body: dict) -> None:
    async with client.get("/api/patients/", headers={"Authorization": header} if header else {}) as response:
        assert response.status == 401 and await response.json() == body
        assert response.headers["WWW-Authenticate"] == "Token"


async def test_bearer_works_and_query_tokens_are_for_websockets_only(client, token: str) -> None:
    assert await call(client, "GET", "/api/patients/", headers={"Authorization": f"Bearer {token}"}) == (200, [])
    assert await call(client, "GET", f"/api/patients/?token={token}") == (
        401, {"detail": "Authentication credentials were not provided."})


async def test_pagination_is_drf_limit_offset(client, token: str) -> None:
    rows = [await post_patient(client, token, first_name=f"P{i}") for i in range(5)]
    base = str(client.make_url("/api/patients/"))
    assert await call(client, "GET", "/api/patients/?limit=2&offset=1", token) == (200, {
        "count": 5, "next": f"{base}?limit=2&offset=3", "previous": f"{base}?limit=2", "results": rows[1:3]})
    assert await call(client, "GET", "/api/patients/?offset=4&limit=2&ordering=id", token) == (200, {
        "count": 5, "next": None, "previous": f"{base}?limit=2&offset=2&ordering=id", "results": rows[4:]})
    assert await call(client, "GET", "/api/patients/?limit=2", token) == (200, {
        "count": 5, "next": f"{base}?limit=2&offset=2", "previous": None, "results": rows[:2]})
    assert await call(client, "GET", "/api/patients/?limit=0", token) == (
        400, {"limit": ["Ensure this value is greater than or equal to 1."]})


async def test_ordering_and_filters_from_the_query_string(client, token: str) -> None:
    ada = await post_patient(client, token)
    grace = await post_patient(client, token, first_name="Grace", last_name="Hopper",
                               admission_date="2026-11-20T09:00:00Z")
    gone = await post_patient(client, token, first_name="Alan", last_name="Turing",
                              admission_date="2026-11-21T09:00:00Z", dismissal_date="2026-11-25T09:00:00Z")
    get = lambda query: call(client, "GET", f"/api/patients/?{query}", token)  # noqa: E731
    assert await get("ordering=-admission_date") == (200, [gone, grace, ada])
    assert await get("dismissal_date__isnull=true&admission_date__gte=2026-11-10T00:00:00Z") == (200, [grace])
    assert await get("dismissal_date__isnull=false") == (200, [gone])
    assert await get(f"id__gt={ada['id']}&last_name__icontains=o") == (200, [grace])
    assert await get(f"id={grace['id']}") == (200, [grace])
    assert await get("first_name=Ada&format=json") == (200, [ada])
    assert await get("bogus=1&ordering=nope&last_name__startswith=L") == (400, {
        "ordering": ['Cannot order by "nope"; use one of: id, first_name, last_name, admission_date, '
                     'dismissal_date, updated_at, created_at.'],
        "filters": ['Unknown filter operator "startswith" in "last_name__startswith"; '
                    'use none, gt, gte, lt, lte, isnull or icontains.']})
    assert await get("admission_date__gt=yesterday") == (
        400, {"filters": [f'Invalid value for "admission_date__gt": {WRONG_DATETIME}']})


async def test_json_is_rendered_like_drf(client, token: str) -> None:
    async with client.post("/api/patients/", json={**ADA, "first_name": "Zoë 漢字"},
                           headers={"Authorization": f"Token {token}"}) as response:
        text = await response.text()
    assert response.status == 201 and response.content_type == "application/json"
    assert text.startswith('{"id":') and '"first_name":"Zoë 漢字","last_name":"Lovelace"' in text


async def test_both_transports_share_the_same_objects(client, token: str, ws: Socket) -> None:
    created = await post_patient(client, token)
    assert (await ws.request("retrieve", pk=created["id"]))["data"] == created
    patched = await ws.request("patch", pk=created["id"], data={"last_name": "Byron"})
    assert await call(client, "GET", f"/api/patients/{created['id']}/", token) == (200, patched["data"])


async def test_a_fault_is_a_logged_json_500(client, token: str, caplog: pytest.LogCaptureFixture) -> None:
    admin(client.app_database_url, "ALTER TABLE patients RENAME COLUMN last_name TO surname")
    with caplog.at_level(logging.ERROR):
        assert await call(client, "GET", "/api/patients/", token) == (500, {"detail": "Internal server error"})
    assert "Traceback" in caplog.text and "UndefinedColumn" in caplog.text
