"""Second-opinion domain hooks over HTTP: case lifecycle, report outcome, opening cases."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from resources.servicerequest import case_task_id
from seed.loader import demo_resources
from tests.demo_copy import seed_demo

B = "https://consilium.health/fhir"
CBS = f"{B}/CodeSystem/case-business-status"
OUTCOME = f"{B}/CodeSystem/second-opinion-outcome"
DEMO = {f"{r['resourceType']}/{r['id']}": r for r in demo_resources()}


@pytest.fixture
def seeded(app: FastAPI) -> None:
    seed_demo(app.state.consilium)


def demo(key: str) -> dict[str, Any]:
    r = copy.deepcopy(DEMO[key])
    r.pop("meta", None)
    return r


def moved(task: dict[str, Any], status: str, code: str, **extra: Any) -> dict[str, Any]:
    out = {**task, "status": status, "businessStatus": {"coding": [{"system": CBS, "code": code}]}}
    out.update(extra)
    return out


def put(client: TestClient, resource: dict[str, Any]) -> Any:
    return client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)


def test_illegal_transition_is_422_business_rule(seeded: None, client: TestClient) -> None:
    task = demo("Task/task-nair")  # requested
    r = put(
        client,
        moved(
            task,
            "in-progress",
            "under-review",
            owner={"reference": "PractitionerRole/exp-oncology-in"},
        ),
    )
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert (issue["code"], issue["expression"]) == ("business-rule", ["Task.status"])
    assert client.get("/fhir/Task/task-nair").json()["status"] == "requested"


def test_terminal_case_stays_terminal(seeded: None, client: TestClient) -> None:
    task = demo("Task/task-tremblay")  # completed
    r = put(client, moved(task, "in-progress", "under-review"))
    assert r.status_code == 422
    assert "completed is terminal" in r.json()["issue"][0]["diagnostics"]


def test_the_whole_lifecycle_to_a_final_report(seeded: None, client: TestClient) -> None:
    task = demo("Task/task-nair")
    owner = {"owner": {"reference": "PractitionerRole/exp-oncology-in"}}
    steps = [
        moved(task, "requested", "eligibility-check"),
        moved(task, "accepted", "eligible"),
        moved(task, "ready", "expert-matched", **owner),
        moved(task, "in-progress", "case-retrieved", **owner),
        moved(task, "on-hold", "awaiting-information", **owner),
        moved(task, "in-progress", "under-review", **owner),
    ]
    for step in steps:
        assert put(client, step).status_code == 200, step["status"]
    report = {
        "resourceType": "DiagnosticReport",
        "id": "so-report-nair",
        "meta": {"profile": [f"{B}/StructureDefinition/second-opinion-report"]},
        "basedOn": [{"reference": "ServiceRequest/sr-nair"}],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "subject": {"reference": "Patient/pat-nair"},
        "performer": [{"reference": "PractitionerRole/exp-oncology-in"}],
        "conclusion": "Diagnosis confirmed.",
        "conclusionCode": [{"coding": [{"system": OUTCOME, "code": "confirm-diagnosis"}]}],
    }
    assert put(client, report).status_code == 201
    output = [
        {
            "type": {"text": "report"},
            "valueReference": {"reference": "DiagnosticReport/so-report-nair"},
        }
    ]
    done = moved(task, "completed", "report-issued", output=output, **owner)
    assert put(client, done).status_code == 200


def test_completed_needs_the_report_as_output(seeded: None, client: TestClient) -> None:
    task = demo("Task/task-okafor")  # in-progress
    r = put(client, moved(task, "completed", "report-issued"))
    assert r.status_code == 422
    assert ["Task.output"] in [i.get("expression") for i in r.json()["issue"]]


def test_completed_with_a_preliminary_report_is_refused(seeded: None, client: TestClient) -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "id": "interim-okafor",
        "basedOn": [{"reference": "ServiceRequest/sr-okafor"}],
        "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "subject": {"reference": "Patient/pat-okafor"},
        "performer": [{"reference": "PractitionerRole/exp-cardiology"}],
    }
    assert put(client, report).status_code == 201
    output = [
        {"type": {"text": "r"}, "valueReference": {"reference": "DiagnosticReport/interim-okafor"}}
    ]
    r = put(client, moved(demo("Task/task-okafor"), "completed", "report-issued", output=output))
    assert r.status_code == 422
    assert "final report" in r.text


def test_rejection_needs_a_reason(seeded: None, client: TestClient) -> None:
    task = demo("Task/task-nair")
    r = put(client, moved(task, "rejected", "condition-not-covered"))
    assert r.status_code == 422
    reason = {"coding": [{"system": CBS, "code": "condition-not-covered"}]}
    assert (
        put(
            client, moved(task, "rejected", "condition-not-covered", statusReason=reason)
        ).status_code
        == 200
    )


def test_unclaimed_task_of_a_second_opinion_request_is_checked(
    seeded: None, client: TestClient
) -> None:
    task = {
        "resourceType": "Task",
        "id": "side-task",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": "ServiceRequest/sr-nair"},
        "for": {"reference": "Patient/pat-nair"},
    }
    r = put(client, task)
    assert r.status_code == 422
    assert ["Task.businessStatus"] in [i.get("expression") for i in r.json()["issue"]]


def test_other_tasks_are_left_alone(client: TestClient) -> None:
    task = {"resourceType": "Task", "id": "chore", "status": "completed", "intent": "order"}
    assert put(client, task).status_code == 201
    assert put(client, {**task, "status": "requested"}).status_code == 200


def test_final_report_without_outcome_is_422(seeded: None, client: TestClient) -> None:
    report = demo("DiagnosticReport/so-report-tremblay")
    del report["conclusionCode"]
    report["status"] = "amended"  # a final report changes only as amended
    r = put(client, report)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert (issue["code"], issue["expression"]) == (
        "business-rule",
        ["DiagnosticReport.conclusionCode"],
    )


def test_preliminary_report_may_omit_outcome(seeded: None, client: TestClient) -> None:
    report = demo("DiagnosticReport/so-report-tremblay")
    report["id"] = "interim-okafor"  # the Okafor case is under review
    report["status"] = "preliminary"
    report["basedOn"] = [{"reference": "ServiceRequest/sr-okafor"}]
    report["subject"] = {"reference": "Patient/pat-okafor"}
    report["performer"] = [{"reference": "PractitionerRole/exp-cardiology"}]
    del report["conclusionCode"]
    assert put(client, report).status_code == 201


def test_posted_second_opinion_request_opens_a_case(seeded: None, client: TestClient) -> None:
    sr = demo("ServiceRequest/sr-nair")
    sr.pop("id")
    sr["status"] = "active"
    r = client.post("/fhir/ServiceRequest", json=sr)
    assert r.status_code == 201
    sr_id = r.json()["id"]
    task = client.get(f"/fhir/Task/{case_task_id(sr_id)}")
    assert task.status_code == 200
    body = task.json()
    # Decided in the same transaction: eligible (then matched) or rejected with its reasons.
    assert body["status"] in ("accepted", "rejected")
    assert body["focus"] == {"reference": f"ServiceRequest/{sr_id}"}
    assert any(i["type"]["text"] == "eligibility" for i in body["input"])


def test_put_second_opinion_request_opens_no_case(seeded: None, client: TestClient) -> None:
    sr = demo("ServiceRequest/sr-nair")
    sr["id"] = "sr-by-put"
    assert put(client, sr).status_code == 201
    assert client.get(f"/fhir/Task/{case_task_id('sr-by-put')}").status_code == 404


def test_illegal_transition_by_json_patch_is_422(seeded: None, client: TestClient) -> None:
    ops = [{"op": "replace", "path": "/status", "value": "requested"}]
    r = client.patch(
        "/fhir/Task/task-tremblay",
        content=json.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["code"] == "business-rule"
    assert client.get("/fhir/Task/task-tremblay").json()["status"] == "completed"


def test_transaction_bundle_rolls_back_on_business_rule(seeded: None, client: TestClient) -> None:
    patient = {"resourceType": "Patient", "id": "tx-patient", "name": [{"family": "Tx"}]}
    bad = moved(demo("Task/task-nair"), "completed", "report-issued")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient, "request": {"method": "PUT", "url": "Patient/tx-patient"}},
            {"resource": bad, "request": {"method": "PUT", "url": "Task/task-nair"}},
        ],
    }
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 422, r.text
    assert client.get("/fhir/Patient/tx-patient").status_code == 404
