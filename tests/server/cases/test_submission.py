"""Submission: the case opens in the client's transaction, eligibility is decided and recorded,
and an eligible case is matched to an expert."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.cases.kit import CBS, CSC, FHIR, SNOMED, Kit, business, ok

ICD10 = "http://hl7.org/fhir/sid/icd-10"


def test_an_eligible_case_is_accepted_and_assigned(kit: Kit) -> None:
    case = kit.new_case()
    task = kit.task(case)
    assert task["status"] == "accepted"
    assert business(task) == "expert-assigned"
    assert task["owner"]["reference"] == "PractitionerRole/exp-oncology-ca"
    assert task["code"]["coding"][0]["code"] == "fulfill"
    assert task["focus"] == {"reference": f"ServiceRequest/{case.sr}"}
    assert task["basedOn"] == [{"reference": f"ServiceRequest/{case.sr}"}]
    assert task["requester"]["reference"] == "PractitionerRole/role-doc-lakeshore-patel"
    assert "authoredOn" in task


def test_the_due_date_is_the_plans_turnaround_in_business_days(kit: Kit) -> None:
    task = kit.task(kit.new_case())
    period = task["restriction"]["period"]
    assert period["start"] < period["end"]


def test_eligibility_is_recorded_on_the_task_and_stored(kit: Kit) -> None:
    task = kit.task(kit.new_case())
    [link] = [i for i in task["input"] if i["type"]["text"] == "eligibility"]
    response = kit.read(link["valueReference"]["reference"])
    assert response["resourceType"] == "CoverageEligibilityResponse"
    assert response["disposition"].startswith("Eligible")
    assert response["insurance"][0]["inforce"] is True


def test_the_transitions_are_recorded(kit: Kit) -> None:
    task = kit.task(kit.new_case())
    assert kit.timeline(task["id"]) == ["submitted", "eligible", "expert-assigned"]


def rejection(kit: Kit, **kw: Any) -> set[str]:
    task = kit.task(kit.new_case(**kw) if "patient" not in kw else kit.submit(**kw))
    assert task["status"] == "rejected", task
    return {c["code"] for c in task["statusReason"]["coding"]}


def test_lapsed_cover_is_rejected(kit: Kit) -> None:
    patient, coverage = kit.member(period={"start": "2020-01-01", "end": "2021-12-31"})
    task = kit.task(kit.submit(patient, coverage))
    assert task["status"] == "rejected"
    assert [c["code"] for c in task["statusReason"]["coding"]] == ["coverage-not-in-force"]
    assert "text" in task["statusReason"]


def test_cover_the_clinic_asserted_is_not_evidence(kit: Kit) -> None:
    patient, coverage = kit.member(writer=kit.p.clinic)
    task = kit.task(kit.submit(patient, coverage))
    assert task["status"] == "rejected"
    assert "coverage-unverified" in {c["code"] for c in task["statusReason"]["coding"]}


def test_another_members_cover_is_member_not_found(kit: Kit) -> None:
    patient, _ = kit.member()
    _, someone_elses = kit.member()
    task = kit.task(kit.submit(patient, someone_elses))
    assert [c["code"] for c in task["statusReason"]["coding"]] == ["member-not-found"]


def test_a_request_without_cover_is_refused_by_the_profile(kit: Kit) -> None:
    patient, _ = kit.member()
    r = kit.http.post("/fhir", json=kit.bundle(patient, None), headers={**FHIR, **kit.p.clinic})
    assert r.status_code in (400, 422), r.text
    assert "insurance" in r.text


def test_a_plan_without_the_benefit_is_rejected(kit: Kit) -> None:
    patient, coverage = kit.member(plan="MM-BASIC")
    task = kit.task(kit.submit(patient, coverage))
    assert "benefit-not-included" in {c["code"] for c in task["statusReason"]["coding"]}


def test_an_uncovered_condition_is_rejected(kit: Kit) -> None:
    patient, coverage = kit.member()
    code = [{"system": SNOMED, "code": "38341003", "display": "Hypertension"}]
    task = kit.task(kit.submit(patient, coverage, code=code, performer_type=None))
    assert "condition-not-covered" in {c["code"] for c in task["statusReason"]["coding"]}


def test_a_provisional_diagnosis_is_not_firm(kit: Kit) -> None:
    patient, coverage = kit.member()
    task = kit.task(kit.submit(patient, coverage, verification="provisional"))
    assert "diagnosis-not-firm" in {c["code"] for c in task["statusReason"]["coding"]}


def test_unexplained_after_investigations_counts_as_firm(kit: Kit) -> None:
    patient, coverage = kit.member()
    flag = [
        {
            "url": "https://consilium.health/fhir/StructureDefinition/unexplained-after-investigations",
            "valueBoolean": True,
        }
    ]
    task = kit.task(kit.submit(patient, coverage, verification="provisional", extensions=flag))
    assert task["status"] == "accepted", task


def test_preliminary_results_are_incomplete_investigations(kit: Kit) -> None:
    patient, coverage = kit.member()
    task = kit.task(kit.submit(patient, coverage, result_status="preliminary"))
    assert "investigations-incomplete" in {c["code"] for c in task["statusReason"]["coding"]}


def test_every_failing_rule_is_reported(kit: Kit) -> None:
    patient, coverage = kit.member(plan="MM-BASIC", writer=kit.p.clinic)
    code = [{"system": SNOMED, "code": "38341003", "display": "Hypertension"}]
    task = kit.task(
        kit.submit(
            patient,
            coverage,
            code=code,
            verification="provisional",
            with_result=False,
            performer_type=None,
        )
    )
    codes = {c["code"] for c in task["statusReason"]["coding"]}
    # An unverified cover says nothing about the plan: its benefit rules are not evaluated.
    assert codes == {
        "coverage-unverified",
        "condition-not-covered",
        "investigations-incomplete",
        "diagnosis-not-firm",
    }
    response_key = next(i for i in task["input"] if i["type"]["text"] == "eligibility")
    response = kit.read(response_key["valueReference"]["reference"])
    assert {e["code"]["coding"][0]["code"] for e in response["error"]} == codes


@pytest.mark.parametrize(
    "coding",
    [
        {"system": SNOMED, "code": "363406005", "display": "Malignant tumor of colon"},
        {"system": ICD10, "code": "C18.7", "display": "Malignant neoplasm of sigmoid colon"},
        {"system": SNOMED, "code": "363346000", "display": "Malignant neoplastic disease"},
        {"system": CSC, "code": "cancer", "display": "Cancer"},
    ],
    ids=["snomed-child", "icd10-subcode", "snomed-mapped", "guide-code"],
)
def test_a_covered_condition_is_recognised_in_any_code_system(
    kit: Kit, coding: dict[str, str]
) -> None:
    patient, coverage = kit.member()
    task = kit.task(kit.submit(patient, coverage, code=[coding]))
    assert task["status"] == "accepted", task.get("statusReason")


def test_the_benefit_is_exhausted_after_the_allowance(kit: Kit) -> None:
    patient, coverage = kit.member(plan="MM-GCI-PLUS")  # two opinions per policy year
    first = kit.task(kit.submit(patient, coverage))
    second = kit.task(kit.submit(patient, coverage))
    third = kit.task(kit.submit(patient, coverage))
    assert (first["status"], second["status"]) == ("accepted", "accepted")
    assert third["status"] == "rejected"
    assert {c["code"] for c in third["statusReason"]["coding"]} == {"benefit-exhausted"}


def test_a_rejected_case_does_not_use_the_benefit(kit: Kit) -> None:
    patient, coverage = kit.member(plan="MM-GCI-PLUS")
    rejected = kit.task(kit.submit(patient, coverage, verification="provisional"))
    assert rejected["status"] == "rejected"
    assert kit.task(kit.submit(patient, coverage))["status"] == "accepted"
    assert kit.task(kit.submit(patient, coverage))["status"] == "accepted"


def test_a_rejected_submission_still_stores_the_request(kit: Kit) -> None:
    patient, coverage = kit.member(period={"start": "2020-01-01", "end": "2021-12-31"})
    case = kit.submit(patient, coverage)
    assert kit.read(f"ServiceRequest/{case.sr}", kit.p.clinic)["status"] == "active"
    assert business(kit.task(case)) == "coverage-not-in-force"


def test_a_put_request_opens_no_case(kit: Kit) -> None:
    patient, coverage = kit.member()
    bundle = kit.bundle(patient, coverage)
    sr = bundle["entry"][0]["resource"]
    sr["id"] = f"sr-put-{patient[:8]}"
    condition = ok(
        kit.http.post(
            "/fhir/Condition",
            json=bundle["entry"][1]["resource"],
            headers={**FHIR, **kit.p.clinic},
        ),
        201,
    )
    sr["reasonReference"] = [{"reference": f"Condition/{condition['id']}"}]
    sr.pop("supportingInfo", None)
    ok(
        kit.http.put(
            f"/fhir/ServiceRequest/{sr['id']}",
            json=sr,
            headers={"Content-Type": "application/fhir+json", **kit.p.clinic},
        ),
        201,
    )
    found = ok(
        kit.http.get(f"/fhir/Task?focus=ServiceRequest/{sr['id']}", headers=kit.p.coordinator)
    )
    assert not found.get("entry")


def test_the_insurer_sees_the_decision_but_not_the_clinical_file(kit: Kit) -> None:
    case = kit.new_case()
    task = kit.task(case, kit.p.insurer)
    assert task["status"] == "accepted"
    link = next(i for i in kit.task(case)["input"] if i["type"]["text"] == "eligibility")
    assert (
        kit.http.get(
            f"/fhir/{link['valueReference']['reference']}", headers=kit.p.insurer
        ).status_code
        == 200
    )
    assert kit.http.get(
        f"/fhir/Condition/{case.ids['Condition']}", headers=kit.p.insurer
    ).status_code in (403, 404)
    assert kit.http.get(f"/fhir/Task/{task['id']}", headers=kit.p.insurer_b).status_code == 404


def test_business_status_codes_come_from_the_guide(kit: Kit) -> None:
    task = kit.task(kit.new_case())
    assert task["businessStatus"]["coding"][0]["system"] == CBS
