"""``ServiceRequest/[id]/$case-bundle``: exactly the case's linked resources, policy-safe."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.server.operations.conftest import FHIR_JSON, keys, outcome, put, read

WHITFIELD = {
    "Patient/pat-whitfield",
    "Coverage/cov-whitfield",
    "Condition/cond-whitfield",
    "DiagnosticReport/dr-inv-whitfield",
    "DocumentReference/docref-whitfield",
    "Task/task-whitfield",
    "Communication/comm-whitfield-more-info",
}


def case(client: TestClient, sr: str) -> dict[str, Any]:
    r = client.get(f"/fhir/ServiceRequest/{sr}/$case-bundle")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_bundle_is_a_searchset_with_the_request_as_the_match(demo: TestClient) -> None:
    bundle = case(demo, "sr-whitfield")
    assert bundle["type"] == "searchset"
    assert keys(bundle, "match") == ["ServiceRequest/sr-whitfield"]


def test_bundle_holds_exactly_the_linked_resources(demo: TestClient) -> None:
    bundle = case(demo, "sr-whitfield")
    included = keys(bundle, "include")
    assert set(included) == WHITFIELD
    assert len(included) == len(WHITFIELD)
    assert outcome(bundle) == []


def test_bundle_holds_the_second_opinion_report(demo: TestClient) -> None:
    assert "DiagnosticReport/so-report-tremblay" in keys(case(demo, "sr-tremblay"), "include")


def test_bundle_leaves_out_other_cases(demo: TestClient) -> None:
    included = keys(case(demo, "sr-tremblay"), "include")
    assert all("tremblay" in k for k in included), included


def test_communication_of_another_case_is_not_included(demo: TestClient) -> None:
    assert "Communication/comm-whitfield-more-info" not in keys(case(demo, "sr-okafor"))


def test_task_found_through_focus_only(demo: TestClient) -> None:
    task = read(demo, "Task/task-okafor")
    task["id"] = "task-okafor-focus"
    task.pop("basedOn")
    task.pop("identifier")
    task.pop("meta")
    put(demo, task)
    assert "Task/task-okafor-focus" in keys(case(demo, "sr-okafor"), "include")


def test_results_of_a_supporting_report_are_included(demo: TestClient) -> None:
    obs = read(demo, "Observation/obs-okafor")
    obs["id"] = "obs-okafor-troponin"
    obs.pop("meta", None)
    put(demo, obs)
    report = read(demo, "DiagnosticReport/dr-inv-okafor")
    report["result"] = [{"reference": "Observation/obs-okafor-troponin"}]
    put(demo, report)
    assert "Observation/obs-okafor-troponin" in keys(case(demo, "sr-okafor"), "include")


def test_missing_supporting_link_is_skipped_with_a_warning(loose_demo: TestClient) -> None:
    sr = read(loose_demo, "ServiceRequest/sr-whitfield")
    sr["supportingInfo"].append({"reference": "ImagingStudy/never-stored"})
    put(loose_demo, sr)
    bundle = case(loose_demo, "sr-whitfield")
    assert "ImagingStudy/never-stored" not in keys(bundle)
    [issue] = outcome(bundle)
    assert issue["severity"] == "warning"
    assert issue["expression"] == ["ServiceRequest.supportingInfo[2]"]


def test_deleted_supporting_link_is_skipped(loose_demo: TestClient) -> None:
    assert loose_demo.delete("/fhir/DocumentReference/docref-whitfield").status_code == 204
    bundle = case(loose_demo, "sr-whitfield")
    assert "DocumentReference/docref-whitfield" not in keys(bundle)
    assert "was deleted" in outcome(bundle)[0]["diagnostics"]


def test_deleted_task_is_not_included(loose_demo: TestClient) -> None:
    assert loose_demo.delete("/fhir/Task/task-whitfield").status_code == 204
    assert "Task/task-whitfield" not in keys(case(loose_demo, "sr-whitfield"))


def test_external_reference_is_reported_not_followed(loose_demo: TestClient) -> None:
    sr = read(loose_demo, "ServiceRequest/sr-whitfield")
    sr["supportingInfo"].append({"reference": "https://elsewhere.example/fhir/Observation/1"})
    put(loose_demo, sr)
    bundle = case(loose_demo, "sr-whitfield")
    assert set(keys(bundle, "include")) == WHITFIELD
    assert outcome(bundle)[0]["severity"] == "information"


def test_unknown_request_is_404(demo: TestClient) -> None:
    r = demo.get("/fhir/ServiceRequest/no-such-request/$case-bundle")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


def test_deleted_request_is_410(loose_demo: TestClient) -> None:
    assert loose_demo.delete("/fhir/ServiceRequest/sr-nair").status_code == 204
    assert loose_demo.get("/fhir/ServiceRequest/sr-nair/$case-bundle").status_code == 410


def test_post_with_empty_parameters_is_allowed(demo: TestClient) -> None:
    r = demo.post(
        "/fhir/ServiceRequest/sr-whitfield/$case-bundle",
        json={"resourceType": "Parameters"},
        headers=FHIR_JSON,
    )
    assert r.status_code == 200
    assert set(keys(r.json(), "include")) == WHITFIELD
