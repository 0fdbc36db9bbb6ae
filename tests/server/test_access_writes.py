"""Writes under the policy: ownership is recorded at create and checked on every write,
including each entry of a transaction (one refusal rolls back the whole Bundle)."""

from __future__ import annotations

import json
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
        "coordinator": {"org": "network-s", "role": "coordinator"},
        "trusted": {},
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


def refused_by(r: Any, rule: str) -> bool:
    return r.status_code == 403 and f"rule {rule}:" in r.json()["issue"][0]["diagnostics"]


def test_specialist_cannot_update_a_case_not_assigned(c: TestClient) -> None:
    task = c.get("/fhir/Task/task-b", headers=bearer(ADMIN)).json()
    task["status"] = "in-progress"
    r = c.put("/fhir/Task/task-b", json=task, headers=bearer(token(c, "expert-1")))
    assert refused_by(r, "task-server-managed")


def test_specialist_cannot_reassign_its_task_away(c: TestClient) -> None:
    task = c.get("/fhir/Task/task-a", headers=bearer(ADMIN)).json()
    task["owner"] = {"reference": "PractitionerRole/expert-2"}
    r = c.put("/fhir/Task/task-a", json=task, headers=bearer(token(c, "expert-1")))
    assert refused_by(r, "task-server-managed")
    assert c.get("/fhir/Task/task-a", headers=bearer(ADMIN)).json()["owner"] == {
        "reference": "PractitionerRole/expert-1"
    }


# ------------------------------------------------------- Tasks are moved by the server only
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
START = [{"op": "replace", "path": "/status", "value": "in-progress"}]


def task_write(c: TestClient, method: str, tok: str) -> Any:
    """One direct write of the case Task ``task-a`` (a new Task for POST)."""
    headers = bearer(tok)
    if method == "POST":
        body = {**c.get("/fhir/Task/task-a", headers=bearer(ADMIN)).json(), "id": None}
        body.pop("id")
        body.pop("meta", None)
        return c.post("/fhir/Task", json=body, headers=headers)
    if method == "PUT":
        body = c.get("/fhir/Task/task-a", headers=bearer(ADMIN)).json()
        return c.put("/fhir/Task/task-a", json={**body, "status": "in-progress"}, headers=headers)
    if method == "PATCH":
        return c.patch(
            "/fhir/Task/task-a", content=json.dumps(START), headers={**headers, **JSON_PATCH}
        )
    return c.delete("/fhir/Task/task-a", headers=headers)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("who", ["clinic-a", "insurer-x", "expert-1", "coordinator"])
def test_no_party_writes_a_case_task_directly(c: TestClient, who: str, method: str) -> None:
    r = task_write(c, method, token(c, who))
    assert refused_by(r, "task-server-managed"), r.text
    assert "$reassign" in r.json()["issue"][0]["diagnostics"]
    assert c.get("/fhir/Task/task-a", headers=bearer(ADMIN)).json()["status"] == "ready"


@pytest.mark.parametrize(("method", "status"), [("POST", 201), ("PUT", 200), ("PATCH", 200)])
def test_trusted_integrations_still_write_tasks(c: TestClient, method: str, status: int) -> None:
    r = task_write(c, method, token(c, "trusted"))
    assert r.status_code == status, r.text


def test_trusted_integrations_still_delete_tasks(c: TestClient) -> None:
    assert task_write(c, "DELETE", token(c, "trusted")).status_code in (200, 204)


# ------------------------------------------------------------------------------ Provenance
PROVENANCE = {
    "resourceType": "Provenance",
    "id": "prov-a",
    "target": [{"reference": "Task/task-a"}, {"reference": "Patient/pat-a"}],
    "recorded": "2026-01-02T03:04:05Z",
    "agent": [{"who": {"reference": "Organization/network-s"}}],
}


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("clinic-a", 200),
        ("clinic-b", 404),
        ("expert-1", 200),
        ("coordinator", 200),
        ("insurer-x", 403),
    ],
)
def test_provenance_of_a_case_is_read_by_its_parties(c: TestClient, who: str, status: int) -> None:
    put = c.put("/fhir/Provenance/prov-a", json=PROVENANCE, headers=bearer(ADMIN))
    assert put.status_code == 201, put.text
    assert c.get("/fhir/Provenance/prov-a", headers=bearer(token(c, who))).status_code == status


@pytest.mark.parametrize("who", ["clinic-a", "expert-1", "coordinator", "insurer-x"])
def test_no_party_writes_provenance(c: TestClient, who: str) -> None:
    body = {k: v for k, v in PROVENANCE.items() if k != "id"}
    r = c.post("/fhir/Provenance", json=body, headers=bearer(token(c, who)))
    assert refused_by(r, "provenance-server-managed"), r.text


# ----------------------------------------------------------------------------- coordinator
def test_coordinator_adds_data_to_any_clinics_patient(c: TestClient) -> None:
    r = c.post(
        "/fhir/Observation", json=observation("pat-b"), headers=bearer(token(c, "coordinator"))
    )
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    assert (
        c.get(f"/fhir/Observation/{oid}", headers=bearer(token(c, "clinic-b"))).status_code == 200
    )
    assert (
        c.get(f"/fhir/Observation/{oid}", headers=bearer(token(c, "clinic-a"))).status_code == 404
    )


def test_coordinator_registers_a_patient_for_a_clinic(c: TestClient) -> None:
    body = {
        "resourceType": "Patient",
        "name": [{"family": "Caller"}],
        "managingOrganization": {"reference": "Organization/clinic-a"},
    }
    r = c.post("/fhir/Patient", json=body, headers=bearer(token(c, "coordinator")))
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert c.get(f"/fhir/Patient/{pid}", headers=bearer(token(c, "clinic-a"))).status_code == 200
    assert c.get(f"/fhir/Patient/{pid}", headers=bearer(token(c, "clinic-b"))).status_code == 404


def test_coordinator_cannot_write_the_directory(c: TestClient) -> None:
    body = {"resourceType": "Organization", "name": "x"}
    r = c.post("/fhir/Organization", json=body, headers=bearer(token(c, "coordinator")))
    assert refused_by(r, "directory-read-only")


# ------------------------------------------------------------------- insurer-held Coverage
def stored_acl(c: TestClient, rtype: str, rid: str) -> dict[str, Any]:
    doc = c.app.state.consilium.store.resources(rtype).find_one({"_id": rid})  # type: ignore[attr-defined]
    assert doc is not None
    return dict(doc["acl"])


def test_coverage_attestation_follows_the_writer_of_each_version(c: TestClient) -> None:
    assert stored_acl(c, "Coverage", "cov-a")["attested"] is True  # loaded by the admin
    cov = c.get("/fhir/Coverage/cov-a", headers=bearer(ADMIN)).json()
    cov.pop("meta", None)
    r = c.put(
        "/fhir/Coverage/cov-a",
        json={**cov, "subscriberId": "typed-by-the-clinic"},
        headers=bearer(token(c, "clinic-a")),
    )
    assert r.status_code == 200, r.text
    assert stored_acl(c, "Coverage", "cov-a")["attested"] is False
    r = c.put("/fhir/Coverage/cov-a", json=cov, headers=bearer(token(c, "insurer-x")))
    assert r.status_code == 200, r.text
    assert stored_acl(c, "Coverage", "cov-a")["attested"] is True


def test_a_coordinators_coverage_is_visible_to_the_insurer_but_not_insurer_held(
    c: TestClient,
) -> None:
    cov = {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": "Patient/pat-b"},
        "payor": [{"reference": "Organization/insurer-x"}],
    }
    r = c.post("/fhir/Coverage", json=cov, headers=bearer(token(c, "coordinator")))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert stored_acl(c, "Coverage", cid)["attested"] is False
    assert c.get(f"/fhir/Coverage/{cid}", headers=bearer(token(c, "insurer-x"))).status_code == 200


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
