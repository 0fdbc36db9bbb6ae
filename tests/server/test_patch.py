"""PATCH over HTTP: JSON Patch and FHIRPath Patch, version checks, validation of the result."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def existing(client: TestClient, patient_body: dict[str, Any]) -> str:
    r = client.put("/fhir/Patient/p1", json={**patient_body, "id": "p1"}, headers=FHIR)
    assert r.status_code == 201
    return "/fhir/Patient/p1"


def fhirpath(*ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "operation", "part": o} for o in ops],
    }


def test_json_patch_makes_a_new_version(client: TestClient, existing: str) -> None:
    r = client.patch(
        existing, json=[{"op": "replace", "path": "/gender", "value": "other"}], headers=JSON_PATCH
    )
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "other"
    assert r.headers["ETag"] == 'W/"2"'
    assert client.get(existing).json()["gender"] == "other"
    assert client.get(f"{existing}/_history/2").json()["gender"] == "other"


def test_fhirpath_patch(client: TestClient, existing: str) -> None:
    body = fhirpath(
        [
            {"name": "type", "valueCode": "replace"},
            {"name": "path", "valueString": "Patient.name.first().family"},
            {"name": "value", "valueString": "Eze"},
        ]
    )
    r = client.patch(existing, json=body, headers=FHIR)
    assert r.status_code == 200, r.text
    assert r.json()["name"][0]["family"] == "Eze"


def test_if_match_mismatch_is_412(client: TestClient, existing: str) -> None:
    r = client.patch(
        existing,
        json=[{"op": "remove", "path": "/gender"}],
        headers={**JSON_PATCH, "If-Match": 'W/"9"'},
    )
    assert r.status_code == 412
    assert client.get(existing).json()["meta"]["versionId"] == "1"


def test_if_match_current_version_applies(client: TestClient, existing: str) -> None:
    r = client.patch(
        existing,
        json=[{"op": "remove", "path": "/gender"}],
        headers={**JSON_PATCH, "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200


def test_failed_test_op_is_422_and_changes_nothing(client: TestClient, existing: str) -> None:
    ops = [
        {"op": "remove", "path": "/gender"},
        {"op": "test", "path": "/birthDate", "value": "1900-01-01"},
    ]
    r = client.patch(existing, json=ops, headers=JSON_PATCH)
    assert r.status_code == 422
    assert client.get(existing).json()["gender"] == "female"


def test_invalid_result_is_422(client: TestClient, existing: str) -> None:
    r = client.patch(
        existing, json=[{"op": "replace", "path": "/gender", "value": 42}], headers=JSON_PATCH
    )
    assert r.status_code == 422
    assert r.json()["resourceType"] == "OperationOutcome"


def test_patch_cannot_change_the_id(client: TestClient, existing: str) -> None:
    r = client.patch(
        existing, json=[{"op": "replace", "path": "/id", "value": "other"}], headers=JSON_PATCH
    )
    assert r.status_code == 422


def test_patch_cannot_inject_meta_version(client: TestClient, existing: str) -> None:
    r = client.patch(
        existing, json=[{"op": "add", "path": "/meta/versionId", "value": "99"}], headers=JSON_PATCH
    )
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] in ("1", "2")


def test_no_op_patch_makes_no_new_version(client: TestClient, existing: str) -> None:
    r = client.patch(
        existing, json=[{"op": "test", "path": "/gender", "value": "female"}], headers=JSON_PATCH
    )
    assert r.status_code == 200
    assert r.headers["ETag"] == 'W/"1"'


def test_patch_unknown_resource_is_404(client: TestClient) -> None:
    r = client.patch(
        "/fhir/Patient/none", json=[{"op": "remove", "path": "/gender"}], headers=JSON_PATCH
    )
    assert r.status_code == 404


def test_patch_deleted_resource_is_410(client: TestClient, existing: str) -> None:
    client.delete(existing)
    r = client.patch(existing, json=[{"op": "remove", "path": "/gender"}], headers=JSON_PATCH)
    assert r.status_code == 410


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ([{"op": "remove", "path": "/gender"}], {"Content-Type": "application/xml"}, 415),
        ({"op": "remove"}, JSON_PATCH, 400),
        ([{"op": "$set", "path": "/gender"}], JSON_PATCH, 400),
        ({"resourceType": "Patient"}, FHIR, 400),
        ([{"op": "remove", "path": "/gender"}], FHIR, 415),
    ],
)
def test_malformed_patches(
    client: TestClient, existing: str, body: Any, headers: dict[str, str], status: int
) -> None:
    r = client.patch(existing, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert client.get(existing).json()["meta"]["versionId"] == "1"


def test_prefer_minimal(client: TestClient, existing: str) -> None:
    r = client.patch(
        existing,
        json=[{"op": "remove", "path": "/gender"}],
        headers={**JSON_PATCH, "Prefer": "return=minimal"},
    )
    assert r.status_code == 200 and r.content == b""
