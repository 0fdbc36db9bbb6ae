"""The ``$operation`` router: dispatch, levels, methods, Parameters validation, capability."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from server.operations import registry
from tests.server.operations.conftest import FHIR_JSON, parameters


def issue_code(r: object) -> str:
    body = r.json()  # type: ignore[attr-defined]
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["code"])


@pytest.mark.parametrize("path", ["/fhir/$nope", "/fhir/Patient/$nope", "/fhir/Patient/p1/$nope"])
def test_unknown_operation_is_404_not_supported(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert issue_code(r) == "not-supported"


def test_unknown_operation_on_post_is_404(client: TestClient) -> None:
    r = client.post("/fhir/Patient/p1/$nope", json=parameters(), headers=FHIR_JSON)
    assert r.status_code == 404


def test_operation_on_the_wrong_type_is_404(client: TestClient) -> None:
    r = client.get("/fhir/Observation/o1/$case-bundle")
    assert r.status_code == 404
    assert "ServiceRequest" in r.json()["issue"][0]["diagnostics"]


def test_operation_at_the_wrong_level_is_404(client: TestClient) -> None:
    assert client.get("/fhir/ServiceRequest/$case-bundle").status_code == 404


def test_instance_operation_at_system_level_is_404(client: TestClient) -> None:
    assert client.get("/fhir/$everything").status_code == 404


def test_unknown_resource_type_is_404(client: TestClient) -> None:
    assert client.get("/fhir/Nonsense/x/$everything").status_code == 404


def test_invalid_id_is_400(client: TestClient) -> None:
    assert client.get("/fhir/Patient/bad id!/$everything").status_code == 400


def test_get_on_a_state_changing_operation_is_405(client: TestClient) -> None:
    r = client.get("/fhir/ServiceRequest/sr1/$eligibility")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client: TestClient, method: str) -> None:
    r = client.request(method, "/fhir/Patient/p1/$everything", headers=FHIR_JSON, content=b"{}")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"


def test_delete_on_type_level_operation_path_is_not_an_instance_delete(client: TestClient) -> None:
    assert client.delete("/fhir/ServiceRequest/$eligibility").status_code == 405


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        json.dumps({"resourceType": "Patient"}).encode(),
        json.dumps(["Parameters"]).encode(),
        json.dumps({"resourceType": "Parameters", "parameter": []}).encode(),
        json.dumps({"resourceType": "Parameters", "parameter": [{"valueCode": "Task"}]}).encode(),
        json.dumps(parameters({"name": "_type", "valueCode": "Task", "valueString": "x"})).encode(),
        json.dumps(parameters({"name": "_count", "valueString": "3"})).encode(),
        json.dumps(parameters({"name": "nonsense", "valueString": "3"})).encode(),
        json.dumps(parameters({"name": "_count", "valueInteger": "3"})).encode(),
        json.dumps(
            parameters({"name": "_count", "valueInteger": 3}, {"name": "_count", "valueInteger": 4})
        ).encode(),
        json.dumps(parameters({"name": "_type", "resource": {"resourceType": "Patient"}})).encode(),
    ],
    ids=[
        "not-json",
        "not-parameters",
        "array",
        "empty-parameter-array",
        "no-name",
        "two-values",
        "wrong-value-type",
        "unknown-name",
        "string-for-integer",
        "too-many",
        "resource-for-code",
    ],
)
def test_malformed_parameters_are_400(client: TestClient, body: bytes) -> None:
    r = client.post("/fhir/Patient/p1/$everything", content=body, headers=FHIR_JSON)
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_non_json_content_type_is_415(client: TestClient) -> None:
    r = client.post(
        "/fhir/Patient/p1/$everything",
        content=b"<Parameters/>",
        headers={"Content-Type": "application/fhir+xml"},
    )
    assert r.status_code == 415


def test_url_parameters_on_post_are_400(client: TestClient) -> None:
    r = client.post("/fhir/Patient/p1/$everything?_count=2", json=parameters(), headers=FHIR_JSON)
    assert r.status_code == 400


@pytest.mark.parametrize(
    "query", ["?nonsense=1", "?_count=abc", "?_count=1&_count=2", "?_since=yesterday", "?_count="]
)
def test_malformed_query_parameters_are_400(client: TestClient, query: str) -> None:
    assert client.get(f"/fhir/Patient/p1/$everything{query}").status_code == 400


def test_format_parameters_pass_through(client: TestClient) -> None:
    # the request gets past parameter checks to the handler (404: no such patient)
    assert client.get("/fhir/Patient/p1/$everything?_format=json&_pretty=true").status_code == 404


def test_capability_lists_instance_and_type_operations(client: TestClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    ops = {r["type"]: r.get("operation", []) for r in rest["resource"]}
    assert {
        "name": "everything",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    } in ops["Patient"]
    names = {o["name"] for o in ops["ServiceRequest"]}
    assert names == {"case-bundle", "eligibility", "validate"}  # $validate: every type


def test_capability_lists_exactly_the_system_level_operations(client: TestClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    system = {op.name for op in registry().values() if op.at("system")}
    assert {o["name"] for o in rest.get("operation", [])} == system


def test_registry_definitions_are_valid_operation_definitions() -> None:
    from resources.validation import validate_resource

    for op in registry().values():
        validate_resource(op.definition, "OperationDefinition")
