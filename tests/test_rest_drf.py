"""The REST mirror where DRF and Django shape HTTP: OPTIONS, Allow, the API root, slashes, Accept, formats, media types."""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADA
from tests.test_rest import NOT_FOUND, call, post_patient
from tests.processes import raw_request as raw_request_to

LIST_ALLOW = "GET, POST, HEAD, OPTIONS"
ITEM_ALLOW = "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
PARSES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]

# What DRF's SimpleMetadata emits for the old stack's PatientSerializer, recorded from
# ../shared/peer-django (OPTIONS /api/patients/ as a user who may write); only "description",
# the old view's docstring, is ours.
PATIENT_FIELDS = {
    "id": {"type": "integer", "required": False, "read_only": True, "label": "ID"},
    "first_name": {"type": "string", "required": True, "read_only": False, "label": "First name", "max_length": 240},
    "last_name": {"type": "string", "required": True, "read_only": False, "label": "Last name", "max_length": 240},
    "admission_date": {"type": "datetime", "required": True, "read_only": False, "label": "Admission date"},
    "dismissal_date": {"type": "datetime", "required": False, "read_only": False, "label": "Dismissal date"},
    "updated_at": {"type": "datetime", "required": False, "read_only": True, "label": "Updated at"},
    "created_at": {"type": "datetime", "required": False, "read_only": True, "label": "Created at"},
}
PATIENTS_DESCRIPTION = 'The "patients" stream of /ws/ over HTTP: /api/patients/[<pk>/].'


def described(name: str, **actions: Any) -> dict[str, Any]:
    body = {"name": name, "description": PATIENTS_DESCRIPTION, "renders": ["application/json"], "parses": PARSES}
    return {**body, "actions": actions} if actions else body


async def raw_request(client, head: bytes) -> tuple[bytes, bytes]:
    """Bytes no HTTP client library would send (a method of our own, a latin-1 header); (head, body)."""
    answer = await raw_request_to(client.server.port, head + b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
    status_and_headers, _, body = answer.partition(b"\r\n\r\n")
    return status_and_headers, body


async def test_options_is_drfs_metadata(client, token: str, token_for: Any) -> None:
    assert await call(client, "OPTIONS", "/api/patients/", token) == (
        200, described("Patient List", POST=PATIENT_FIELDS))
    pk = (await post_patient(client, token))["id"]
    assert await call(client, "OPTIONS", f"/api/patients/{pk}/", token) == (
        200, described("Patient Instance", PUT=PATIENT_FIELDS))
    # No PUT for an object that is not there, nor any write for a viewer: DRF lists what may be sent.
    assert await call(client, "OPTIONS", f"/api/patients/{pk + 1}/", token) == (200, described("Patient Instance"))
    viewer = await token_for(client, "visitor", "viewer")
    assert await call(client, "OPTIONS", "/api/patients/", viewer) == (200, described("Patient List"))
    assert await call(client, "OPTIONS", "/api/patients/") == (401, {"detail": "Authentication credentials were not provided."})
    assert await call(client, "OPTIONS", "/api/") == (401, {"detail": "Authentication credentials were not provided."})
    assert await call(client, "OPTIONS", "/api/", token) == (200, {
        "name": "Api Root", "description": "The default basic root view for DefaultRouter",
        "renders": ["application/json"], "parses": PARSES})


async def test_options_describes_choices_and_related_fields(client, token: str) -> None:
    status, body = await call(client, "OPTIONS", "/api/vitals/", token)
    assert status == 200 and body["name"] == "Vital List"
    assert body["actions"]["POST"] == {
        "id": {"type": "integer", "required": False, "read_only": True, "label": "ID"},
        "patient": {"type": "field", "required": True, "read_only": False, "label": "Patient"},
        "kind": {"type": "choice", "required": True, "read_only": False, "label": "Kind", "choices": [
            {"value": kind, "display_name": kind}
            # The old stack's six kinds, then the two NEWS2 needs (issue 16), which it never had.
            for kind in ("heart_rate", "spo2", "temperature", "systolic_bp", "diastolic_bp", "resp_rate",
                         "supplemental_oxygen", "consciousness")]},
        "value": {"type": "float", "required": True, "read_only": False, "label": "Value"},
        "unit": {"type": "string", "required": True, "read_only": False, "label": "Unit", "max_length": 16},
        "measured_at": {"type": "datetime", "required": True, "read_only": False, "label": "Measured at"},
        "created_at": {"type": "datetime", "required": False, "read_only": True, "label": "Created at"},
    }


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/api/patients/", LIST_ALLOW), ("POST", "/api/patients/", LIST_ALLOW),
    ("GET", "/api/patients/1/", ITEM_ALLOW), ("DELETE", "/api/patients/abc/", ITEM_ALLOW),
    ("PUT", "/api/patients/", LIST_ALLOW), ("GET", "/api/", "GET, HEAD, OPTIONS"),
])
@pytest.mark.parametrize("signed_in", [True, False])
async def test_every_answer_carries_allow(client, token: str, method: str, path: str, allow: str,
                                          signed_in: bool) -> None:
    headers = {"Authorization": f"Token {token}"} if signed_in else {}
    async with client.request(method, path, json=ADA, headers=headers) as response:
        assert response.headers["Allow"] == allow, (response.status, await response.text())


async def test_a_method_the_parser_knows_is_a_json_405(client, token: str) -> None:
    # aiohttp's HTTP parser (llhttp) refuses a method outside the HTTP registry (FOO) with a plain
    # 400 before the application sees it (docs/rest.md); a registered one reaches the view.
    head, body = await raw_request(client, f"PROPFIND /api/patients/ HTTP/1.1\r\nAuthorization: Token {token}\r\n".encode())
    assert head.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: GET, POST, HEAD, OPTIONS" in head
    assert json.loads(body) == {"detail": 'Method "PROPFIND" not allowed.'}
    head, body = await raw_request(client, b"PROPFIND /api/patients/1/ HTTP/1.1\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")  # authentication first, as DRF


async def test_an_authorization_header_that_is_not_utf8(client) -> None:
    head, body = await raw_request(client, b"GET /api/patients/ HTTP/1.1\r\nAuthorization: Token \xe9\xe9\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert json.loads(body) == {"detail": "Invalid token header. Token string should not contain invalid characters."}
    head, body = await raw_request(client, "GET /api/patients/ HTTP/1.1\r\nAuthorization: Token é\r\n".encode())
    assert json.loads(body) == {"detail": "Invalid token."}  # UTF-8, only not a token


async def test_no_trailing_slash_is_djangos_301(client, token: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        async with client.request(method, "/api/patients?limit=2&x=%C3%A9", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (301, "/api/patients/?limit=2&x=%C3%A9")
            assert response.headers["Content-Type"] == "text/html; charset=utf-8" and await response.read() == b""
    for path, target in (("/api/patients/1", "/api/patients/1/"), ("/api", "/api/"), ("/api/auth/token", "/api/auth/token/")):
        async with client.get(path, allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (301, target), path
    assert await call(client, "GET", "/api/nope", token) == (404, {"detail": "Not found."})


async def test_the_api_root_lists_every_resource(client, token: str) -> None:
    base = str(client.make_url("/api/"))
    assert await call(client, "GET", "/api/", token) == (
        200, {"patients": f"{base}patients/", "vitals": f"{base}vitals/"})
    assert await call(client, "GET", "/api/.json", token) == (
        200, {"patients": f"{base}patients.json", "vitals": f"{base}vitals.json"})
    assert await call(client, "GET", "/api/") == (401, {"detail": "Authentication credentials were not provided."})
    assert await call(client, "POST", "/api/", token) == (405, {"detail": 'Method "POST" not allowed.'})


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png", "text/*", "*/xml"])
async def test_an_accept_json_cannot_satisfy_is_406(client, token: str, accept: str) -> None:
    headers = {"Accept": accept}
    assert await call(client, "GET", "/api/patients/", token, headers=headers) == (
        406, {"detail": "Could not satisfy the request Accept header."})
    # Negotiation comes before authentication, as in DRF.
    assert await call(client, "GET", "/api/patients/", headers=headers) == (
        406, {"detail": "Could not satisfy the request Accept header."})


async def test_accept_json_in_any_form_and_indent(client, token: str) -> None:
    created = await post_patient(client, token)
    for accept in ("*/*", "application/*", "application/json", "text/html, application/json;q=0.1", "*/json"):
        assert await call(client, "GET", "/api/patients/", token, headers={"Accept": accept}) == (200, [created])
    cases = {"application/json; indent=4": 4, "*/*; indent=2": 2, "application/json; indent=20": 8,
             "application/json; indent=0": None, "application/json; indent=x": None,
             "*/*; indent=2, application/json": None, "application/json; indent=3, */*": 3}
    for accept, indent in cases.items():
        async with client.get(f"/api/patients/{created['id']}/", headers={
                "Authorization": f"Token {token}", "Accept": accept}) as response:
            assert response.content_type == "application/json"
            expected = json.dumps(created, indent=indent, separators=(",", ": ") if indent else (",", ":"))
            assert await response.text() == expected, accept
    async with client.get("/api/patients/0/", headers={"Authorization": f"Token {token}", "Accept": "*/*; indent=2"}) as response:
        assert await response.text() == '{\n  "detail": "No Patient matches the given query."\n}'  # errors too


async def test_format_query_and_suffix(client, token: str) -> None:
    created = await post_patient(client, token)
    pk = created["id"]
    for path in ("/api/patients/?format=json", "/api/patients.json", "/api/patients.json/"):
        assert await call(client, "GET", path, token) == (200, [created]), path
    for path in (f"/api/patients/{pk}.json", f"/api/patients/{pk}.json/", f"/api/patients/{pk}/?format=json"):
        assert await call(client, "GET", path, token) == (200, created), path
    status, patched = await call(client, "PATCH", f"/api/patients/{pk}.json", token, json={"last_name": "King"})
    assert (status, patched) == (200, {**created, "last_name": "King", "updated_at": patched["updated_at"]})
    for path in ("/api/patients/?format=xml", "/api/patients.xml", f"/api/patients/{pk}.api/", f"/api/patients/{pk}.0/"):
        assert await call(client, "GET", path, token) == (404, {"detail": "Not found."}), path
    # ?format only picks among the renderers: Accept must still admit JSON (DRF's order).
    assert await call(client, "GET", "/api/patients/?format=json", token, headers={"Accept": "text/html"}) == (
        406, {"detail": "Could not satisfy the request Accept header."})
    assert await call(client, "GET", f"/api/patients/{pk + 1}.json", token) == (404, NOT_FOUND)


async def test_unknown_query_parameters_are_ignored(client, token: str) -> None:
    created = await post_patient(client, token)
    for query in ("_=1733091234567", "page=2", "search=x", "format=json&_=1", "first_name=Ada&callback=x"):
        assert await call(client, "GET", f"/api/patients/?{query}", token) == (200, [created]), query
    assert await call(client, "GET", f"/api/patients/{created['id']}/?_=123&page=2", token) == (200, created)


async def test_body_media_types_as_drfs_parsers(client, token: str) -> None:
    body = json.dumps(ADA).encode()
    for content_type in ("application/json; charset=bogus", "application/json; charset=utf-8",
                         "application/json;charset=UTF8"):
        status, created = await call(client, "POST", "/api/patients/", token, data=body,
                                     headers={"Content-Type": content_type})
        assert (status, created["first_name"]) == (201, "Ada"), content_type
    latin = json.dumps({**ADA, "first_name": "Zoë"}, ensure_ascii=False).encode("latin-1")
    status, created = await call(client, "POST", "/api/patients/", token, data=latin,
                                 headers={"Content-Type": "application/json; charset=latin-1"})
    assert (status, created["first_name"]) == (201, "Zoë")
    for content_type in ("application/vnd.api+json", "application/merge-patch+json"):
        assert await call(client, "POST", "/api/patients/", token, data=body, headers={"Content-Type": content_type}) == (
            415, {"detail": f'Unsupported media type "{content_type}" in request.'})


async def test_line_separators_are_escaped_as_drf_writes_them(client, token: str) -> None:
    async with client.post("/api/patients/", json={**ADA, "first_name": "A\u2028B\u2029C"},
                           headers={"Authorization": f"Token {token}"}) as response:
        assert '"first_name":"A\\u2028B\\u2029C"' in await response.text()


async def test_the_token_endpoint_is_a_drf_view_too(client, token: str) -> None:
    # Recorded from ../shared/peer-django: OPTIONS /api/auth/token/ (obtain_auth_token).
    text = lambda label, read_only=False: {  # noqa: E731
        "type": "string", "required": not read_only, "read_only": read_only, "label": label}
    async with client.options("/api/auth/token/") as response:
        assert response.status == 200 and response.headers["Allow"] == "POST, OPTIONS"
        assert await response.json() == {
            "name": "Obtain Auth Token", "description": "", "renders": ["application/json"],
            "parses": ["application/x-www-form-urlencoded", "multipart/form-data", "application/json"],
            "actions": {"POST": {"username": text("Username"), "password": text("Password"),
                                 "token": text("Token", read_only=True)}}}
    assert await call(client, "POST", "/api/auth/token/", data={"username": "x", "password": "y"},
                      headers={"Accept": "text/html"}) == (406, {"detail": "Could not satisfy the request Accept header."})
    async with client.post("/api/auth/token/", data={"username": "x", "password": "y"}) as response:
        assert response.status == 400 and response.headers["Allow"] == "POST, OPTIONS"
    assert await call(client, "DELETE", "/api/auth/token/") == (405, {"detail": 'Method "DELETE" not allowed.'})
