"""Bugs schemathesis and hypothesis found, pinned."""
from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import Socket, create, ok


async def test_a_carriage_return_in_a_filter_value_cannot_end_a_sql_comment(client: TestClient, ws: Socket,
                                                                            token: str) -> None:
    """Named queries were sent with their comments; one named {where}, so a value with \\r broke out of it."""
    ada = await create(ws)
    for value in ("\r", "x\r) OR true --", "\n' OR '1'='1", "\r\n--"):
        assert await ws.request("list", filters={"first_name": value}) == ok([], "list")
        assert await ws.request("list", filters={"last_name__icontains": value}) == ok([], "list")
        response = await client.get("/api/patients/", params={"first_name": value},
                                    headers={"Authorization": f"Token {token}"})
        assert (response.status, await response.json()) == (200, [])
    assert await ws.request("list") == ok([ada], "list")


async def test_the_openapi_document_states_what_the_server_accepts(client: TestClient) -> None:
    document = await (await client.get("/api/openapi.json")).json()
    parameters = {p["name"]: p["schema"] for p in document["paths"]["/api/patients/"]["get"]["parameters"]}
    assert parameters["id__gte"] == {"type": "integer", "minimum": -(2**63 - 1), "maximum": 2**63 - 1}
    assert parameters["offset"]["maximum"] == 2**63 - 1
    assert parameters["ordering"]["pattern"].startswith(r"^(\s*-?(id|first_name|")
    first_name = document["components"]["schemas"]["Patient"]["properties"]["first_name"]
    assert first_name["minLength"] == 1 and first_name["maxLength"] == 240
    assert first_name["pattern"] == r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


async def test_a_malformed_multipart_body_is_a_400_not_a_500(client: TestClient) -> None:
    body = (b'--b\r\nContent-Disposition: form-data; name="\xc3\xb9\x0cX"\r\n\r\nx\r\n--b--\r\n')
    response = await client.post("/api/auth/token/", data=body,
                                 headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert (response.status, await response.json()) == (
        400, {"detail": "Multipart form parse error - InvalidHeader"})
