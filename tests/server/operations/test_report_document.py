"""``DiagnosticReport/[id]/$document``: the second-opinion report as a referral-feedback document."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.documents import document_problems
from tests.server.cases.kit import Case, Kit, ok
from tests.server.operations.conftest import put, read

LEAD = "exp-oncology-ca"
SNOMED = "http://snomed.info/sct"
BSER_STATUS = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"


def document(client: TestClient, rid: str, headers: dict[str, str] | None = None) -> Any:
    return client.get(f"/fhir/DiagnosticReport/{rid}/$document", headers=headers or {})


def doc(client: TestClient, rid: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = document(client, rid, headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def keys(bundle: dict[str, Any]) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]]


def action_status(bundle: dict[str, Any]) -> dict[str, Any]:
    [obs] = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"].get("coding", [{}])[0].get("code") == "385641008"
    ]
    return dict(obs)


def summary_refs(bundle: dict[str, Any]) -> list[str]:
    first = bundle["entry"][0]["resource"]["section"][0]
    assert first["code"]["coding"][0]["code"] == "RSRFS"
    return [e["reference"] for e in first["entry"]]


# ------------------------------------------------------------------------------ demo data
def test_report_document_is_a_valid_document(demo: TestClient) -> None:
    assert document_problems(doc(demo, "so-report-tremblay")) == []


def test_composition_is_a_final_consult_note_by_the_expert(demo: TestClient) -> None:
    comp = doc(demo, "so-report-tremblay")["entry"][0]["resource"]
    assert comp["type"]["coding"][0]["code"] == "11488-4"
    assert comp["status"] == "final"
    assert comp["author"] == [
        {"reference": "http://testserver/fhir/PractitionerRole/exp-oncology-ca"}
    ]
    assert comp["subject"]["reference"].endswith("/Patient/pat-tremblay")
    assert comp["date"] == "2026-09-12T16:30:00Z"


def test_feedback_summary_points_back_to_the_request(demo: TestClient) -> None:
    bundle = doc(demo, "so-report-tremblay")
    refs = summary_refs(bundle)
    assert refs[0] == "http://testserver/fhir/ServiceRequest/sr-tremblay"
    assert "ServiceRequest/sr-tremblay" in keys(bundle)


def test_findings_hold_the_report(demo: TestClient) -> None:
    findings = doc(demo, "so-report-tremblay")["entry"][0]["resource"]["section"][1]
    assert [e["reference"] for e in findings["entry"]] == [
        "http://testserver/fhir/DiagnosticReport/so-report-tremblay"
    ]
    assert "invasive ductal carcinoma" in findings["text"]["div"]


def test_action_status_is_generated_from_the_case_task(demo: TestClient) -> None:
    bundle = doc(demo, "so-report-tremblay")
    obs = action_status(bundle)
    assert obs["status"] == "final"
    assert obs["code"]["coding"][0] == {
        "system": SNOMED,
        "code": "385641008",
        "display": "Action status",
    }
    codes = {(c["system"], c["code"]) for c in obs["valueCodeableConcept"]["coding"]}
    assert (BSER_STATUS, "7.0") in codes
    assert obs["focus"] == [{"reference": "http://testserver/fhir/Task/task-tremblay"}]
    assert obs["basedOn"] == [{"reference": "http://testserver/fhir/ServiceRequest/sr-tremblay"}]
    assert any(r.startswith("urn:uuid:") for r in summary_refs(bundle))


def test_results_of_the_report_are_included(demo: TestClient) -> None:
    put(
        demo,
        {
            "resourceType": "Observation",
            "id": "obs-so-tremblay",
            "status": "final",
            "code": {"text": "Ki-67 index (reviewed)"},
            "subject": {"reference": "Patient/pat-tremblay"},
            "valueString": "15%",
        },
    )
    report = read(demo, "DiagnosticReport/so-report-tremblay")
    report["result"] = [{"reference": "Observation/obs-so-tremblay"}]
    report["status"] = "amended"  # a final report changes only as amended
    put(demo, report)
    bundle = doc(demo, "so-report-tremblay")
    assert "Observation/obs-so-tremblay" in keys(bundle)
    assert bundle["entry"][0]["resource"]["status"] == "amended"
    assert document_problems(bundle) == []


def test_the_coverage_of_the_request_is_a_summary(demo: TestClient) -> None:
    bundle = doc(demo, "so-report-tremblay")
    [cover] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage"
    ]
    assert "identifier" not in cover and "subscriberId" not in cover


def test_an_investigation_report_is_422(demo: TestClient) -> None:
    r = document(demo, "dr-inv-tremblay")
    assert r.status_code == 422
    assert r.json()["resourceType"] == "OperationOutcome"


def test_unknown_report_is_404(demo: TestClient) -> None:
    r = document(demo, "no-such-report")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


def test_deleted_report_is_410(loose_demo: TestClient) -> None:
    # a final second-opinion report cannot be deleted; a deleted report is 410 before any check
    assert loose_demo.delete("/fhir/DiagnosticReport/dr-inv-whitfield").status_code == 204
    assert document(loose_demo, "dr-inv-whitfield").status_code == 410


def test_dangling_result_is_omitted(loose_demo: TestClient) -> None:
    report = read(loose_demo, "DiagnosticReport/so-report-tremblay")
    report["result"] = [{"reference": "Observation/never-stored"}]
    report["status"] = "amended"
    put(loose_demo, report)
    bundle = doc(loose_demo, "so-report-tremblay")
    assert document_problems(bundle) == []
    assert "Observation/never-stored" not in keys(bundle)
    sections = bundle["entry"][0]["resource"]["section"]
    assert sections[-1]["code"]["coding"][0]["code"] == "omissions"


def test_post_is_allowed_too(demo: TestClient) -> None:
    r = demo.post(
        "/fhir/DiagnosticReport/so-report-tremblay/$document",
        json={"resourceType": "Parameters"},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 200, r.text


def test_the_operation_is_published(demo: TestClient) -> None:
    rest = demo.get("/fhir/metadata").json()["rest"][0]
    ops = {r["type"]: r.get("operation", []) for r in rest["resource"]}
    assert {
        "name": "document",
        "definition": "https://consilium.health/fhir/OperationDefinition/DiagnosticReport-document",
    } in ops["DiagnosticReport"]


# ------------------------------------------------------------------------------ parties


def reported(kit: Kit, status: str = "final") -> tuple[Case, str]:
    case = kit.new_case()
    expert = kit.p.expert(LEAD)
    ok(kit.pull(case, expert))
    report = ok(kit.report(case, expert, status=status), 201)
    return case, str(report["id"])


@pytest.mark.parametrize("party", ["expert", "clinic", "coordinator"])
def test_whoever_reads_the_report_gets_a_valid_document(kit: Kit, party: str) -> None:
    _, rid = reported(kit)
    headers = {
        "expert": kit.p.expert(LEAD),
        "clinic": kit.p.clinic,
        "coordinator": kit.p.coordinator,
    }[party]
    bundle = doc(kit.http, rid, headers)
    assert document_problems(bundle) == []
    codes = {c["code"] for c in action_status(bundle)["valueCodeableConcept"]["coding"]}
    assert {"7.0", "report-issued"} <= codes


def test_a_preliminary_report_is_a_preliminary_document_of_a_case_in_review(kit: Kit) -> None:
    _, rid = reported(kit, status="preliminary")
    bundle = doc(kit.http, rid, kit.p.clinic)
    assert bundle["entry"][0]["resource"]["status"] == "preliminary"
    codes = {c["code"] for c in action_status(bundle)["valueCodeableConcept"]["coding"]}
    assert {"3.0", "interim-report"} <= codes


def test_an_insurer_gets_403(kit: Kit) -> None:
    _, rid = reported(kit)
    r = document(kit.http, rid, kit.p.insurer)
    assert r.status_code == 403
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("party", ["clinic_b", "other_expert"])
def test_another_party_cannot_get_the_document(kit: Kit, party: str) -> None:
    _, rid = reported(kit)
    headers = kit.p.clinic_b if party == "clinic_b" else kit.p.expert("exp-cardiology")
    assert document(kit.http, rid, headers).status_code in (403, 404)


def test_the_experts_document_leaves_out_the_coverage(kit: Kit) -> None:
    _, rid = reported(kit)
    bundle = doc(kit.http, rid, kit.p.expert(LEAD))
    assert not [k for k in keys(bundle) if k.startswith("Coverage/")]
    assert document_problems(bundle) == []
