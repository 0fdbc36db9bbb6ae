"""Writes that claim (or must meet) a Consilium profile are validated; unknown profiles pass."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from seed.loader import demo_resources
from tests.demo_copy import seed_demo

B = "https://consilium.health/fhir"
DEMO = {f"{r['resourceType']}/{r['id']}": r for r in demo_resources()}


@pytest.fixture
def seeded(app: FastAPI) -> None:
    seed_demo(app.state.consilium)


def demo(key: str) -> dict[str, Any]:
    return copy.deepcopy(DEMO[key])


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("meta", "id")}


def test_claimed_profile_violation_is_422_processing(seeded: None, client: TestClient) -> None:
    task = without_meta(demo("Task/task-nair"))
    task["meta"] = {"profile": [f"{B}/StructureDefinition/second-opinion-task"]}
    del task["businessStatus"]
    r = client.post("/fhir/Task", json=task)
    assert r.status_code == 422
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert {i["code"] for i in body["issue"]} == {"processing"}
    assert ["Task.businessStatus"] in [i.get("expression") for i in body["issue"]]


def test_conforming_claim_is_accepted(seeded: None, client: TestClient) -> None:
    coverage = without_meta(demo("Coverage/cov-nair"))
    coverage["meta"] = {"profile": [f"{B}/StructureDefinition/second-opinion-coverage|0.1.0"]}
    # another member's certificate: the insurer's numbers are unique (server/roster.py)
    for identifier in coverage["identifier"]:
        identifier["value"] = identifier["value"] + "-9"
    coverage["subscriberId"] = coverage["subscriberId"] + "-9"
    assert client.post("/fhir/Coverage", json=coverage).status_code == 201


def test_unknown_profile_is_accepted_unchecked(client: TestClient) -> None:
    patient = {
        "resourceType": "Patient",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "name": [{"family": "Doe"}],
    }
    assert client.post("/fhir/Patient", json=patient).status_code == 201


def test_our_profile_on_the_wrong_type_is_rejected(client: TestClient) -> None:
    patient = {
        "resourceType": "Patient",
        "meta": {"profile": [f"{B}/StructureDefinition/second-opinion-task"]},
    }
    r = client.post("/fhir/Patient", json=patient)
    assert r.status_code == 422
    assert "constrains Task" in r.json()["issue"][0]["diagnostics"]


def test_second_opinion_reason_requires_the_profile_unclaimed(
    seeded: None, client: TestClient
) -> None:
    sr = without_meta(demo("ServiceRequest/sr-nair"))
    del sr["insurance"]
    r = client.put("/fhir/ServiceRequest/sr-unclaimed", json={**sr, "id": "sr-unclaimed"})
    assert r.status_code == 422
    assert ["ServiceRequest.insurance"] in [i.get("expression") for i in r.json()["issue"]]
    assert client.get("/fhir/ServiceRequest/sr-unclaimed").status_code == 404


def test_unclaimed_second_opinion_request_that_conforms_is_accepted(
    seeded: None, client: TestClient
) -> None:
    sr = without_meta(demo("ServiceRequest/sr-nair"))
    assert client.put("/fhir/ServiceRequest/sr-ok", json={**sr, "id": "sr-ok"}).status_code == 201


def test_ordinary_service_request_is_not_profiled(seeded: None, client: TestClient) -> None:
    sr = {
        "resourceType": "ServiceRequest",
        "id": "plain",
        "status": "draft",
        "intent": "plan",
        "subject": {"reference": "Patient/pat-nair"},
        "reasonCode": [{"text": "second look"}],
    }
    assert client.put("/fhir/ServiceRequest/plain", json=sr).status_code == 201


def test_extensible_binding_miss_does_not_block(seeded: None, client: TestClient) -> None:
    role = without_meta(demo("PractitionerRole/exp-cardiology"))
    role["meta"] = {"profile": [f"{B}/StructureDefinition/second-opinion-expert"]}
    role["specialty"] = [{"text": "Sports cardiology"}]
    assert client.post("/fhir/PractitionerRole", json=role).status_code == 201


def test_capability_statement_lists_supported_profiles(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(by_type["Task"]["supportedProfile"]) == {
        f"{B}/StructureDefinition/second-opinion-task",
        f"{B}/StructureDefinition/coordination-task",
    }
    assert (
        f"{B}/StructureDefinition/second-opinion-request"
        in by_type["ServiceRequest"]["supportedProfile"]
    )
