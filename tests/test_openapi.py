"""/api/openapi.json: a valid OpenAPI 3 document that lists every /api/ route the app serves."""
from __future__ import annotations

from openapi_spec_validator import validate

from tests.test_rest import call


async def test_the_document_validates_and_lists_every_route(client) -> None:
    status, document = await call(client, "GET", "/api/openapi.json")  # public, like the login form
    assert status == 200
    validate(document)
    served = {(route.resource.canonical, route.method.lower()) for route in client.app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/api/")
              and route.method not in ("*", "HEAD")}
    described = {(path, method) for path, operations in document["paths"].items()
                 for method in operations if method != "parameters"}
    assert served == described
    assert ("/api/patients/{pk}/", "patch") in served and ("/api/auth/token/", "post") in served
    assert ("/api/vitals/", "post") in served and ("/api/vitals/{pk}/", "delete") in served


async def test_the_document_comes_from_the_declarations(client) -> None:
    document = (await call(client, "GET", "/api/openapi.json"))[1]
    patient = document["components"]["schemas"]["Patient"]
    assert list(patient["properties"]) == ["id", "first_name", "last_name", "admission_date", "dismissal_date",
                                           "updated_at", "created_at"]
    assert patient["required"] == ["admission_date", "first_name", "last_name"]
    assert patient["properties"]["first_name"] == {"type": "string", "maxLength": 240, "minLength": 1,
                                                   "pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"}
    assert patient["properties"]["created_at"] == {"type": "string", "format": "date-time", "readOnly": True}
    assert "required" not in document["components"]["schemas"]["PatchedPatient"]
    listing = document["paths"]["/api/patients/"]["get"]
    assert listing["summary"] == "list (editor or viewer)"
    assert document["paths"]["/api/patients/"]["post"]["summary"] == "create (editor)"
    names = [parameter["name"] for parameter in listing["parameters"]]
    assert names[:3] == ["limit", "offset", "ordering"]
    assert {"dismissal_date__isnull", "admission_date__gte", "last_name__icontains", "id__lt"} <= set(names)
    assert "admission_date__icontains" not in names


async def test_a_second_resource_is_described_from_its_declaration_alone(client) -> None:
    document = (await call(client, "GET", "/api/openapi.json"))[1]
    vital = document["components"]["schemas"]["Vital"]
    assert list(vital["properties"]) == ["id", "patient", "kind", "value", "unit", "measured_at", "created_at"]
    assert vital["properties"]["patient"] == {"type": "integer", "description": "the id of an object of /api/patients/"}
    assert vital["properties"]["kind"] == {"type": "string", "enum": [
        "heart_rate", "spo2", "temperature", "systolic_bp", "diastolic_bp", "resp_rate",
        "supplemental_oxygen", "consciousness"]}
    assert vital["properties"]["value"] == {"type": "number", "format": "double"}
    parameters = {parameter["name"]: parameter["schema"] for parameter in document["paths"]["/api/vitals/"]["get"]["parameters"]}
    assert parameters["kind"] == vital["properties"]["kind"] and parameters["kind__isnull"] == {"type": "boolean"}
    assert "kind__gt" not in parameters and "unit" not in parameters
    assert parameters["measured_at__gte"] == {"type": "string", "format": "date-time"}
