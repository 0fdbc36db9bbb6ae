"""Writes under the policy: ownership is recorded at create and checked on every write,
including each entry of a transaction (one refusal rolls back the whole Bundle)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.smart_helpers import ADMIN, backend_token, bearer, load_parties

RW = "system/*.cruds"


@pytest.fixture
def c(app_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on", admin_token=ADMIN)) as client:
        load_parties(client)
        yield client


def token(c: TestClient, who: str, scope: str = RW) -> str:
    binding: dict[str, Any] = {
        "clinic-a": {"org": "clinic-a", "role": "clinic"},
        "clinic-b": {"org": "clinic-b", "role": "clinic"},
        "insurer-x": {"org": "insurer-x", "role": "insurer"},
        "expert-1": {"org": "network-s", "role": "specialist", "practitioner_role": "expert-1"},
    }[who]
    return backend_token(c, scope, **binding)


def observation(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{pid}"},
    }


def test_created_patient_belongs_to_the_creating_clinic(c: TestClient) -> None:
    a, b = token(c, "clinic-a"), token(c, "clinic-b")
    r = c.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer(a))
    assert r.status_code == 201
    pid = r.json()["id"]
    assert c.get(f"/fhir/Patient/{pid}", headers=bearer(a)).status_code == 200
    assert c.get(f"/fhir/Patient/{pid}", headers=bearer(b)).status_code == 404


def test_clinic_cannot_attach_data_to_another_clinics_patient(c: TestClient) -> None:
    r = c.post("/fhir/Observation", json=observation("pat-b"), headers=bearer(token(c, "clinic-a")))
    assert r.status_code == 403
    assert r.json()["resourceType"] == "OperationOutcome"


def test_clinic_can_add_data_to_its_patient(c: TestClient) -> None:
    r = c.post("/fhir/Observation", json=observation("pat-a"), headers=bearer(token(c, "clinic-a")))
    assert r.status_code == 201


def test_clinic_cannot_update_another_clinics_resource(c: TestClient) -> None:
    cond = c.get("/fhir/Condition/cond-b", headers=bearer(ADMIN)).json()
    cond["code"] = {"text": "tampered"}
    r = c.put("/fhir/Condition/cond-b", json=cond, headers=bearer(token(c, "clinic-a")))
    assert r.status_code == 403
    assert (
        c.get("/fhir/Condition/cond-b", headers=bearer(ADMIN)).json()["code"]["text"] != "tampered"
    )


def test_clinic_cannot_delete_another_clinics_patient(c: TestClient) -> None:
    r = c.delete("/fhir/Patient/pat-b", headers=bearer(token(c, "clinic-a")))
    assert r.status_code == 403
    assert c.get("/fhir/Patient/pat-b", headers=bearer(ADMIN)).status_code == 200


def test_clinic_cannot_take_over_an_id_of_another_clinic_by_put(c: TestClient) -> None:
    body = {"resourceType": "Patient", "id": "pat-b", "name": [{"family": "Mine"}]}
    r = c.put("/fhir/Patient/pat-b", json=body, headers=bearer(token(c, "clinic-a")))
    assert r.status_code == 403


def test_directory_is_read_only_for_parties(c: TestClient) -> None:
    body = {"resourceType": "Organization", "name": "x"}
    r = c.post("/fhir/Organization", json=body, headers=bearer(token(c, "clinic-a")))
    assert r.status_code == 403


def test_insurer_writes_only_its_own_coverage(c: TestClient) -> None:
    tok = token(c, "insurer-x")
    cov = {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": "Patient/pat-b"},
        "payor": [{"reference": "Organization/insurer-y"}],
    }
    assert c.post("/fhir/Coverage", json=cov, headers=bearer(tok)).status_code == 403
    cov["payor"] = [{"reference": "Organization/insurer-x"}]
    assert c.post("/fhir/Coverage", json=cov, headers=bearer(tok)).status_code == 201


def test_insurer_cannot_write_clinical_data(c: TestClient) -> None:
    r = c.post(
        "/fhir/Observation", json=observation("pat-a"), headers=bearer(token(c, "insurer-x"))
    )
    assert r.status_code == 403


def test_specialist_cannot_update_a_case_not_assigned(c: TestClient) -> None:
    task = c.get("/fhir/Task/task-b", headers=bearer(ADMIN)).json()
    task["status"] = "in-progress"
    r = c.put("/fhir/Task/task-b", json=task, headers=bearer(token(c, "expert-1")))
    assert r.status_code == 403


def test_specialist_cannot_reassign_its_task_away(c: TestClient) -> None:
    task = c.get("/fhir/Task/task-a", headers=bearer(ADMIN)).json()
    task["owner"] = {"reference": "PractitionerRole/expert-2"}
    r = c.put("/fhir/Task/task-a", json=task, headers=bearer(token(c, "expert-1")))
    assert r.status_code == 403


def test_specialist_reports_on_an_assigned_case_and_the_clinic_sees_it(c: TestClient) -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "status": "preliminary",
        "code": {"text": "consult note"},
        "subject": {"reference": "Patient/pat-a"},
        "basedOn": [{"reference": "ServiceRequest/sr-a"}],
    }
    r = c.post("/fhir/DiagnosticReport", json=report, headers=bearer(token(c, "expert-1")))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert (
        c.get(f"/fhir/DiagnosticReport/{rid}", headers=bearer(token(c, "clinic-a"))).status_code
        == 200
    )
    assert (
        c.get(f"/fhir/DiagnosticReport/{rid}", headers=bearer(token(c, "clinic-b"))).status_code
        == 404
    )


def test_specialist_cannot_report_on_another_case(c: TestClient) -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "status": "preliminary",
        "code": {"text": "consult note"},
        "subject": {"reference": "Patient/pat-b"},
    }
    r = c.post("/fhir/DiagnosticReport", json=report, headers=bearer(token(c, "expert-1")))
    assert r.status_code == 403


def test_transaction_with_one_forbidden_entry_writes_nothing(c: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation("pat-a"), "request": {"method": "POST", "url": "Observation"}},
            {"resource": observation("pat-b"), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    before = c.app.state.consilium.store.db.Observation.count_documents({})  # type: ignore[attr-defined]
    r = c.post("/fhir", json=bundle, headers=bearer(token(c, "clinic-a")))
    assert r.status_code == 403, r.text
    after = c.app.state.consilium.store.db.Observation.count_documents({})  # type: ignore[attr-defined]
    assert after == before


def test_scope_without_write_letter_cannot_create(c: TestClient) -> None:
    tok = token(c, "clinic-a", "system/*.rs")
    r = c.post("/fhir/Observation", json=observation("pat-a"), headers=bearer(tok))
    assert r.status_code == 403


def test_transaction_entry_needs_the_create_scope(c: TestClient) -> None:
    tok = token(c, "clinic-a", "system/*.rs system/Patient.c")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation("pat-a"), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    assert c.post("/fhir", json=bundle, headers=bearer(tok)).status_code == 403


def test_clinic_transaction_creates_a_patient_and_its_data(c: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7f1c2a5e-0000-4000-8000-000000000001",
                "resource": {"resourceType": "Patient", "name": [{"family": "New"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    **observation("x"),
                    "subject": {"reference": "urn:uuid:7f1c2a5e-0000-4000-8000-000000000001"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    a = token(c, "clinic-a")
    r = c.post("/fhir", json=bundle, headers=bearer(a))
    assert r.status_code == 200, r.text
    obs = r.json()["entry"][1]["response"]["location"].split("/_history")[0]
    assert c.get(f"/fhir/{obs}", headers=bearer(a)).status_code == 200
    assert c.get(f"/fhir/{obs}", headers=bearer(token(c, "clinic-b"))).status_code == 404


def test_deleted_id_of_another_clinic_cannot_be_taken_over(c: TestClient) -> None:
    assert c.delete("/fhir/Condition/cond-b", headers=bearer(ADMIN)).status_code in (200, 204)
    body = {
        "resourceType": "Condition",
        "id": "cond-b",
        "subject": {"reference": "Patient/pat-a"},
        "code": {"text": "planted"},
    }
    r = c.put("/fhir/Condition/cond-b", json=body, headers=bearer(token(c, "clinic-a")))
    assert r.status_code == 403
