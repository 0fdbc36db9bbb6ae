"""``ServiceRequest/[id]/$case-bundle``: the case file as a FHIR document, policy-safe.

The demo network with auth off (``demo``, ``loose_demo``) for the shape and the omissions; bound
party tokens (``tests/server/cases/kit.py``) for what each party's document holds.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.documents import document_problems
from tests.server.cases.kit import FHIR, Kit, ok, ref
from tests.server.operations.conftest import FHIR_JSON, put, read

LOINC = "http://loinc.org"
GUIDE_SECTIONS = "https://consilium.health/fhir/CodeSystem/document-section"
WHITFIELD = {
    "ServiceRequest/sr-whitfield",
    "Patient/pat-whitfield",
    "Coverage/cov-whitfield",
    "Condition/cond-whitfield",
    "DiagnosticReport/dr-inv-whitfield",
    "DocumentReference/docref-whitfield",
    "Task/task-whitfield",
    "Communication/comm-whitfield-more-info",
}
SECTION_CODES = {
    "request": (LOINC, "42349-1"),
    "patient": (GUIDE_SECTIONS, "patient"),
    "coverage": (LOINC, "48768-6"),
    "problems": (LOINC, "11450-4"),
    "investigations": (LOINC, "30954-2"),
    "imaging": (LOINC, "18748-4"),
    "documents": (GUIDE_SECTIONS, "documents"),
    "treatment-plan": (LOINC, "18776-5"),
    "questions": (GUIDE_SECTIONS, "questions-and-answers"),
    "reports": (GUIDE_SECTIONS, "second-opinion-reports"),
}
OMISSIONS = (GUIDE_SECTIONS, "omissions")


# ------------------------------------------------------------------------------ helpers
def case(client: TestClient, sr: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = client.get(f"/fhir/ServiceRequest/{sr}/$case-bundle", headers=headers or {})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def held(bundle: dict[str, Any]) -> list[str]:
    """``Type/id`` of every entry after the Composition."""
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"][1:]]


def section(bundle: dict[str, Any], code: tuple[str, str]) -> dict[str, Any] | None:
    for s in bundle["entry"][0]["resource"]["section"]:
        if (s["code"]["coding"][0]["system"], s["code"]["coding"][0]["code"]) == code:
            return dict(s)
    return None


def section_keys(bundle: dict[str, Any], name: str) -> list[str]:
    s = section(bundle, SECTION_CODES[name])
    assert s is not None, name
    return ["/".join(e["reference"].split("/")[-2:]) for e in s.get("entry", [])]


def resource(bundle: dict[str, Any], key: str) -> dict[str, Any]:
    rtype, rid = key.split("/")
    return next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == rtype and e["resource"].get("id") == rid
    )


def omitted(bundle: dict[str, Any]) -> str:
    s = section(bundle, OMISSIONS)
    return str(s["text"]["div"]) if s else ""


# ------------------------------------------------------------------------------ the shape
def test_case_file_is_a_valid_document(demo: TestClient) -> None:
    assert document_problems(case(demo, "sr-whitfield")) == []


def test_document_has_identifier_and_timestamp_and_no_search_elements(demo: TestClient) -> None:
    bundle = case(demo, "sr-whitfield")
    assert bundle["type"] == "document"
    assert bundle["identifier"]["system"] == "urn:ietf:rfc:3986"
    assert bundle["identifier"]["value"].startswith("urn:uuid:")
    assert "timestamp" in bundle
    assert not {"total", "link"} & set(bundle)
    assert not [e for e in bundle["entry"] if "search" in e]


def test_each_call_is_a_new_document(demo: TestClient) -> None:
    first, second = case(demo, "sr-whitfield"), case(demo, "sr-whitfield")
    assert first["identifier"]["value"] != second["identifier"]["value"]


def test_composition_is_a_final_referral_note_by_the_requester(demo: TestClient) -> None:
    comp = case(demo, "sr-whitfield")["entry"][0]["resource"]
    assert comp["resourceType"] == "Composition"
    assert comp["status"] == "final"
    assert comp["type"]["coding"][0] == {
        "system": LOINC,
        "code": "57133-1",
        "display": "Referral note",
    }
    assert comp["subject"]["reference"].endswith("/Patient/pat-whitfield")
    assert comp["author"] == [
        {"reference": "http://testserver/fhir/PractitionerRole/role-doc-st-brigid-walsh"}
    ]
    assert comp["title"] and comp["date"]


def test_every_section_is_present_coded_and_has_narrative(demo: TestClient) -> None:
    bundle = case(demo, "sr-whitfield")
    for name, code in SECTION_CODES.items():
        s = section(bundle, code)
        assert s is not None, name
        assert s["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        assert ("entry" in s) != ("emptyReason" in s), name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("request", ["ServiceRequest/sr-whitfield", "Task/task-whitfield"]),
        ("patient", ["Patient/pat-whitfield"]),
        ("coverage", ["Coverage/cov-whitfield", "InsurancePlan/plan-aha-core"]),
        ("problems", ["Condition/cond-whitfield"]),
        ("investigations", ["DiagnosticReport/dr-inv-whitfield"]),
        ("documents", ["DocumentReference/docref-whitfield"]),
        ("questions", ["Communication/comm-whitfield-more-info"]),
        ("imaging", []),
        ("reports", []),
    ],
)
def test_sections_hold_the_case_resources(demo: TestClient, name: str, expected: list[str]) -> None:
    assert section_keys(case(demo, "sr-whitfield"), name) == expected


def test_an_empty_section_says_nil_known(demo: TestClient) -> None:
    s = section(case(demo, "sr-whitfield"), SECTION_CODES["imaging"])
    assert s is not None
    assert s["emptyReason"]["coding"][0]["code"] == "nilknown"


def test_document_holds_the_case_and_its_directory_closure(demo: TestClient) -> None:
    got = set(held(case(demo, "sr-whitfield")))
    assert got >= WHITFIELD
    assert {
        "PractitionerRole/role-doc-st-brigid-walsh",
        "Practitioner/doc-st-brigid-walsh",
        "Organization/clinic-st-brigid",
        "Organization/ins-albion-health",
        "PractitionerRole/exp-neurology",
    } <= got


def test_every_entry_is_held_once(demo: TestClient) -> None:
    urls = [e["fullUrl"] for e in case(demo, "sr-whitfield")["entry"]]
    assert len(urls) == len(set(urls))


def test_the_second_opinion_report_is_in_the_reports_section(demo: TestClient) -> None:
    assert section_keys(case(demo, "sr-tremblay"), "reports") == [
        "DiagnosticReport/so-report-tremblay"
    ]


def test_other_cases_stay_out(demo: TestClient) -> None:
    patients = [k for k in held(case(demo, "sr-tremblay")) if k.startswith("Patient/")]
    assert patients == ["Patient/pat-tremblay"]
    assert "Communication/comm-whitfield-more-info" not in held(case(demo, "sr-okafor"))


# ------------------------------------------------------------------------------ coverage
def test_coverage_summary_hides_member_and_group_identifiers(demo: TestClient) -> None:
    cover = resource(case(demo, "sr-whitfield"), "Coverage/cov-whitfield")
    for hidden in ("identifier", "subscriber", "subscriberId", "relationship", "dependent"):
        assert hidden not in cover, hidden
    assert "AHA-7781-0043" not in str(cover)  # the certificate number
    assert "AHA-G-7781" not in str(cover)  # the group policy number
    assert "Harbourside" not in str(cover)  # the employer's group scheme


def test_coverage_summary_keeps_payer_plan_and_period(demo: TestClient) -> None:
    cover = resource(case(demo, "sr-whitfield"), "Coverage/cov-whitfield")
    assert cover["payor"] == [{"reference": "Organization/ins-albion-health"}]
    assert cover["period"] == {"start": "2026-04-01", "end": "2028-03-31"}
    assert [c["value"] for c in cover["class"]] == ["AHA-CORE"]
    assert cover["status"] == "active"
    assert "SUBSETTED" in {t["code"] for t in cover["meta"]["tag"]}


def test_coverage_narrative_names_plan_and_period_only(demo: TestClient) -> None:
    s = section(case(demo, "sr-whitfield"), SECTION_CODES["coverage"])
    assert s is not None
    assert "AHA-CORE" in s["text"]["div"] and "2028-03-31" in s["text"]["div"]
    assert "AHA-7781-0043" not in s["text"]["div"]


# ------------------------------------------------------------------------------ links
def test_results_of_a_supporting_report_are_investigations(demo: TestClient) -> None:
    obs = read(demo, "Observation/obs-okafor")
    obs["id"] = "obs-okafor-troponin"
    obs.pop("meta", None)
    put(demo, obs)
    report = read(demo, "DiagnosticReport/dr-inv-okafor")
    report["result"] = [{"reference": "Observation/obs-okafor-troponin"}]
    put(demo, report)
    bundle = case(demo, "sr-okafor")
    assert "Observation/obs-okafor-troponin" in section_keys(bundle, "investigations")
    assert document_problems(bundle) == []


def test_task_found_through_focus_only(demo: TestClient) -> None:
    task = read(demo, "Task/task-okafor")
    task["id"] = "task-okafor-focus"
    for element in ("basedOn", "identifier", "meta"):
        task.pop(element)
    put(demo, task)
    assert "Task/task-okafor-focus" in section_keys(case(demo, "sr-okafor"), "request")


def test_treatment_plan_holds_the_patients_plan_medication_and_procedure(
    demo: TestClient,
) -> None:
    subject = {"reference": "Patient/pat-whitfield"}
    for body in (
        {
            "resourceType": "CarePlan",
            "id": "cp-whitfield",
            "status": "active",
            "intent": "plan",
            "title": "Relapse prevention",
            "subject": subject,
            "addresses": [{"reference": "Condition/cond-whitfield"}],
        },
        {
            "resourceType": "MedicationRequest",
            "id": "mr-whitfield",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Ocrelizumab 600 mg IV every 6 months"},
            "subject": subject,
            "requester": {"reference": "PractitionerRole/role-doc-st-brigid-walsh"},
        },
        {
            "resourceType": "Procedure",
            "id": "proc-whitfield",
            "status": "completed",
            "code": {"text": "Lumbar puncture"},
            "subject": subject,
        },
        {
            "resourceType": "Procedure",
            "id": "proc-whitfield-error",
            "status": "entered-in-error",
            "code": {"text": "Wrong patient"},
            "subject": subject,
        },
    ):
        put(demo, body)
    bundle = case(demo, "sr-whitfield")
    assert section_keys(bundle, "treatment-plan") == [
        "CarePlan/cp-whitfield",
        "MedicationRequest/mr-whitfield",
        "Procedure/proc-whitfield",
    ]
    assert document_problems(bundle) == []


def test_another_patients_plan_is_not_included(demo: TestClient) -> None:
    put(
        demo,
        {
            "resourceType": "CarePlan",
            "id": "cp-okafor",
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/pat-okafor"},
        },
    )
    assert "CarePlan/cp-okafor" not in held(case(demo, "sr-whitfield"))


# ------------------------------------------------------------------------------ omissions
def test_missing_supporting_link_is_omitted_and_listed(loose_demo: TestClient) -> None:
    sr = read(loose_demo, "ServiceRequest/sr-whitfield")
    sr["supportingInfo"].append({"reference": "ImagingStudy/never-stored"})
    put(loose_demo, sr)
    bundle = case(loose_demo, "sr-whitfield")
    assert document_problems(bundle) == []
    assert "ImagingStudy/never-stored" not in held(bundle)
    imaging = section(bundle, SECTION_CODES["imaging"])
    assert imaging is not None
    assert imaging["emptyReason"]["coding"][0]["code"] == "unavailable"
    assert "ServiceRequest.supportingInfo[2]" in imaging["text"]["div"]
    assert "ImagingStudy/never-stored" in omitted(bundle)


def test_the_omitted_link_becomes_a_display_only_reference(loose_demo: TestClient) -> None:
    sr = read(loose_demo, "ServiceRequest/sr-whitfield")
    sr["supportingInfo"].append({"reference": "ImagingStudy/never-stored"})
    put(loose_demo, sr)
    shown = resource(case(loose_demo, "sr-whitfield"), "ServiceRequest/sr-whitfield")
    assert shown["supportingInfo"][2] == {
        "display": "ImagingStudy/never-stored (not included in this document)"
    }


def test_deleted_supporting_link_is_omitted(loose_demo: TestClient) -> None:
    assert loose_demo.delete("/fhir/DocumentReference/docref-whitfield").status_code == 204
    bundle = case(loose_demo, "sr-whitfield")
    assert document_problems(bundle) == []
    assert "DocumentReference/docref-whitfield" not in held(bundle)
    assert "was deleted" in omitted(bundle)


def test_a_nested_dangling_link_is_omitted_too(loose_demo: TestClient) -> None:
    condition = read(loose_demo, "Condition/cond-whitfield")
    condition["asserter"] = {"reference": "Practitioner/gone-away"}
    put(loose_demo, condition)
    bundle = case(loose_demo, "sr-whitfield")
    assert document_problems(bundle) == []
    assert "Condition/cond-whitfield.asserter" in omitted(bundle)
    assert "reference" not in resource(bundle, "Condition/cond-whitfield")["asserter"]


def test_deleted_task_is_not_included(loose_demo: TestClient) -> None:
    assert loose_demo.delete("/fhir/Task/task-whitfield").status_code == 204
    bundle = case(loose_demo, "sr-whitfield")
    assert "Task/task-whitfield" not in held(bundle)
    assert document_problems(bundle) == []


def test_external_reference_is_reduced_not_followed(loose_demo: TestClient) -> None:
    sr = read(loose_demo, "ServiceRequest/sr-whitfield")
    sr["supportingInfo"].append({"reference": "https://elsewhere.example/fhir/Observation/1"})
    put(loose_demo, sr)
    bundle = case(loose_demo, "sr-whitfield")
    assert set(held(bundle)) >= WHITFIELD
    assert document_problems(bundle) == []
    assert "not a local reference" in omitted(bundle)


def test_no_omissions_section_when_nothing_is_left_out(demo: TestClient) -> None:
    assert section(case(demo, "sr-whitfield"), OMISSIONS) is None


# ------------------------------------------------------------------------------ errors
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
    assert set(held(r.json())) >= WHITFIELD


# ------------------------------------------------------------------------------ parties


def test_the_experts_document_holds_only_the_coverage_summary(kit: Kit) -> None:
    c = kit.new_case()
    bundle = case(kit.http, c.sr, kit.p.expert("exp-oncology-ca"))
    assert document_problems(bundle) == []
    [cover] = [k for k in section_keys(bundle, "coverage") if k.startswith("Coverage/")]
    summary = resource(bundle, cover)
    assert "identifier" not in summary and "subscriberId" not in summary
    assert summary["payor"] and summary["period"]
    assert not [k for k in held(bundle) if k.startswith("CoverageEligibility")]


def test_the_expert_still_cannot_read_the_coverage_itself(kit: Kit) -> None:
    c = kit.new_case()
    bundle = case(kit.http, c.sr, kit.p.expert("exp-oncology-ca"))
    [cover] = [k for k in section_keys(bundle, "coverage") if k.startswith("Coverage/")]
    r = kit.http.get(f"/fhir/{cover}", headers=kit.p.expert("exp-oncology-ca"))
    assert r.status_code in (403, 404)


def test_the_experts_first_pull_shows_the_started_review(kit: Kit) -> None:
    c = kit.new_case()
    bundle = case(kit.http, c.sr, kit.p.expert("exp-oncology-ca"))
    [task_key] = [k for k in section_keys(bundle, "request") if k.startswith("Task/")]
    assert resource(bundle, task_key)["status"] == "in-progress"


def test_the_clinics_document_holds_the_coverage_summary(kit: Kit) -> None:
    c = kit.new_case()
    bundle = case(kit.http, c.sr, kit.p.clinic)
    assert document_problems(bundle) == []
    [cover] = [k for k in section_keys(bundle, "coverage") if k.startswith("Coverage/")]
    assert "identifier" not in resource(bundle, cover)


def test_an_insurers_document_holds_no_clinical_resource(kit: Kit) -> None:
    c = kit.new_case()
    bundle = case(kit.http, c.sr, kit.p.insurer)
    assert document_problems(bundle) == []
    types = {k.split("/")[0] for k in held(bundle)}
    assert not types & {"Patient", "Condition", "Observation", "Communication"}
    assert "adenocarcinoma" not in str(bundle)
    assert "display" in bundle["entry"][0]["resource"]["subject"]  # the Patient is not held


def test_a_reply_attachment_is_in_the_documents_section(kit: Kit) -> None:
    c = kit.new_case()
    expert = kit.p.expert("exp-oncology-ca")
    ok(kit.pull(c, expert))
    question = ok(kit.ask(c, expert), 201)
    doc = ok(
        kit.http.post(
            "/fhir/DocumentReference",
            json={
                "resourceType": "DocumentReference",
                "status": "current",
                "subject": ref(f"Patient/{c.patient}"),
                "content": [{"attachment": {"contentType": "text/plain", "data": "TVJJ"}}],
            },
            headers={**FHIR, **kit.p.clinic},
        ),
        201,
    )
    ok(kit.answer(c, question["id"], kit.p.clinic, attach=f"DocumentReference/{doc['id']}"), 201)
    bundle = case(kit.http, c.sr, expert)
    assert f"DocumentReference/{doc['id']}" in section_keys(bundle, "documents")
    assert len(section_keys(bundle, "questions")) == 2
    assert document_problems(bundle) == []


def test_another_party_cannot_pull_the_case(kit: Kit) -> None:
    c = kit.new_case()
    for headers in (kit.p.clinic_b, kit.p.expert("exp-cardiology"), kit.p.insurer_b):
        r = kit.http.get(f"/fhir/ServiceRequest/{c.sr}/$case-bundle", headers=headers)
        assert r.status_code in (403, 404), r.text
