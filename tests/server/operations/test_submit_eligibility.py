"""``CoverageEligibilityRequest/$submit`` over HTTP with party tokens: the request alone, the
collection Bundle (member found on the stored insurer-held Coverage, never on the Bundle's),
who may ask, the stored records and hostile input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from auth.tokens import issue_access_token
from tests.server.cases.kit import CSC, FHIR, Kit, ok, ref
from tests.smart_helpers import bearer

URL = "/fhir/CoverageEligibilityRequest/$submit"
BASE = "http://testserver/fhir"
CBS = "https://consilium.health/fhir/CodeSystem/case-business-status"
MB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}
CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
MAPLE = "ins-maple-mutual"
ORG_SID = "https://consilium.health/fhir/sid/organization"


def request(
    patient: str | None,
    coverage: str | None = None,
    *,
    insurer: str = MAPLE,
    purpose: list[str] | None = None,
    diagnosis: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "CoverageEligibilityRequest",
        "identifier": [{"system": "urn:example:clinic-requests", "value": uuid.uuid4().hex}],
        "status": "active",
        "purpose": purpose or ["validation", "benefits"],
        "created": "2026-12-01T09:00:00Z",
        "servicedDate": "2026-12-01",
        "insurer": ref(f"Organization/{insurer}"),
    }
    if patient:
        body["patient"] = ref(f"Patient/{patient}")
    if coverage:
        body["insurance"] = [{"focal": True, "coverage": ref(f"Coverage/{coverage}")}]
    if diagnosis:
        body["item"] = [{"diagnosis": [{"diagnosisCodeableConcept": diagnosis}]}]
    return body


def certificate(kit: Kit, coverage: str) -> str:
    stored = kit.read(f"Coverage/{coverage}")
    return str(stored["identifier"][0]["value"])


def hint(number: str, *, group: str = "GP-1", payor: str = MAPLE) -> dict[str, Any]:
    """The Coverage as the front desk types it from the member card."""
    return {
        "resourceType": "Coverage",
        "status": "active",
        "identifier": [
            {
                "type": MB,
                "system": f"https://consilium.health/fhir/sid/certificate/{payor}",
                "value": number,
            }
        ],
        "beneficiary": ref("urn:uuid:patient"),
        "payor": [ref("urn:uuid:insurer")],
        "class": [{"type": {"coding": [{"system": CLASS, "code": "group"}]}, "value": group}],
    }


def collection(
    patient_url: str,
    cover: dict[str, Any] | None,
    *,
    birth_date: str = "1970-01-01",
    insurer: str = MAPLE,
) -> dict[str, Any]:
    req = request(None)
    req["patient"] = ref(patient_url)
    req["insurer"] = ref("urn:uuid:insurer")
    entries: list[dict[str, Any]] = [{"fullUrl": "urn:uuid:request", "resource": req}]
    entries.append(
        {
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "name": [{"family": "Card"}],
                "birthDate": birth_date,
            },
        }
    )
    entries.append(
        {
            "fullUrl": "urn:uuid:insurer",
            "resource": {
                "resourceType": "Organization",
                "identifier": [{"system": ORG_SID, "value": insurer}],
                "name": insurer,
            },
        }
    )
    if cover is not None:
        req["insurance"] = [{"focal": True, "coverage": ref("urn:uuid:coverage")}]
        entries.append({"fullUrl": "urn:uuid:coverage", "resource": cover})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def submit(kit: Kit, body: Any, headers: dict[str, str] | None = None) -> Any:
    return kit.http.post(URL, json=body, headers={**FHIR, **(headers or kit.p.clinic)})


def answer(kit: Kit, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return ok(submit(kit, body, headers))


def errors(response: dict[str, Any]) -> list[str]:
    return [e["code"]["coding"][0]["code"] for e in response.get("error") or []]


def item(response: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = response["insurance"][0]["item"][0]
    return found


# ---------------------------------------------------------------------- the request alone
def test_eligible_member_gets_a_complete_response(kit: Kit) -> None:
    patient, cov = kit.member()
    response = answer(kit, request(patient, cov))
    assert response["resourceType"] == "CoverageEligibilityResponse"
    assert response["outcome"] == "complete"
    assert errors(response) == []
    assert response["disposition"].startswith("Covered")


def test_response_names_insurer_patient_and_cover(kit: Kit) -> None:
    patient, cov = kit.member()
    response = answer(kit, request(patient, cov))
    assert response["insurer"] == ref(f"Organization/{MAPLE}")
    assert response["patient"] == ref(f"Patient/{patient}")
    assert response["insurance"][0]["coverage"] == ref(f"Coverage/{cov}")
    assert response["insurance"][0]["inforce"] is True


def test_response_has_the_benefit_allowance_used_and_turnaround(kit: Kit) -> None:
    patient, cov = kit.member()
    found = item(answer(kit, request(patient, cov)))
    assert found["category"]["coding"][0]["code"] == "3"
    assert found["excluded"] is False
    assert found["benefit"][0]["allowedUnsignedInt"] == 2
    assert found["benefit"][0]["usedUnsignedInt"] == 0
    assert "10 business days" in found["description"]


def test_purpose_is_echoed(kit: Kit) -> None:
    patient, cov = kit.member()
    assert answer(kit, request(patient, cov, purpose=["benefits"]))["purpose"] == ["benefits"]


def test_cover_found_from_the_patient_alone(kit: Kit) -> None:
    patient, cov = kit.member()
    response = answer(kit, request(patient), kit.p.insurer)
    assert response["insurance"][0]["coverage"] == ref(f"Coverage/{cov}")


def test_used_opinions_count_and_exhaust_the_benefit(kit: Kit) -> None:
    case = kit.new_case(plan="AHA-CORE", payor="ins-albion-health", country="GB", state="")
    assert kit.task(case)["status"] == "accepted"
    cov = kit.read(f"ServiceRequest/{case.sr}")["insurance"][0]["reference"].split("/")[1]
    response = answer(kit, request(case.patient, cov, insurer="ins-albion-health"))
    assert errors(response) == ["benefit-exhausted"]
    assert item(response)["benefit"][0]["usedUnsignedInt"] == 1


def test_plan_without_the_benefit_is_excluded(kit: Kit) -> None:
    patient, cov = kit.member(plan="MM-BASIC")
    response = answer(kit, request(patient, cov))
    assert errors(response) == ["benefit-not-included"]
    assert item(response)["excluded"] is True


def test_lapsed_cover_is_not_in_force(kit: Kit) -> None:
    patient, cov = kit.member(period={"start": "2020-01-01", "end": "2024-12-31"})
    response = answer(kit, request(patient, cov))
    assert errors(response) == ["coverage-not-in-force"]
    assert response["insurance"][0]["inforce"] is False


def test_cover_typed_in_by_a_clinic_is_unverified(kit: Kit) -> None:
    patient, cov = kit.member(writer=kit.p.clinic)
    assert errors(answer(kit, request(patient, cov))) == ["coverage-unverified"]


def test_error_carries_the_case_rejection_reason_system(kit: Kit) -> None:
    patient, cov = kit.member(plan="MM-BASIC")
    coding = answer(kit, request(patient, cov))["error"][0]["code"]["coding"][0]
    assert coding["system"] == CBS


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ({"system": CSC, "code": "cancer"}, []),
        ({"system": "http://hl7.org/fhir/sid/icd-10", "code": "J06.9"}, ["condition-not-covered"]),
    ],
)
def test_coded_diagnosis_is_checked_against_the_covered_conditions(
    kit: Kit, code: dict[str, str], expected: list[str]
) -> None:
    patient, cov = kit.member()
    response = answer(kit, request(patient, cov, diagnosis={"coding": [code]}))
    assert errors(response) == expected


def test_clinical_case_criteria_are_not_asked(kit: Kit) -> None:
    """No investigations, no Condition: a cover question, not a case file."""
    patient, cov = kit.member()
    assert not {"investigations-incomplete", "diagnosis-not-firm"} & set(
        errors(answer(kit, request(patient, cov)))
    )


def test_cover_of_someone_else_is_member_not_found(kit: Kit) -> None:
    patient, _ = kit.member()
    _, other = kit.member()
    response = answer(kit, request(patient, other), kit.p.coordinator)
    assert errors(response) == ["member-not-found"]
    assert "insurance" not in response


# ------------------------------------------------------------------------- stored records
def test_response_and_request_are_stored(kit: Kit) -> None:
    patient, cov = kit.member()
    response = answer(kit, request(patient, cov))
    stored = kit.read(f"CoverageEligibilityResponse/{response['id']}", kit.p.insurer)
    question = kit.read(stored["request"]["reference"], kit.p.insurer)
    assert question["insurance"][0]["coverage"] == ref(f"Coverage/{cov}")
    assert question["patient"] == ref(f"Patient/{patient}")


def test_stored_records_are_not_another_insurers(kit: Kit) -> None:
    patient, cov = kit.member()
    response = answer(kit, request(patient, cov))
    r = kit.http.get(f"/fhir/CoverageEligibilityResponse/{response['id']}", headers=kit.p.insurer_b)
    assert r.status_code == 404


def test_requester_identifier_is_kept_on_the_stored_request(kit: Kit) -> None:
    patient, cov = kit.member()
    body = request(patient, cov)
    stored = answer(kit, body)
    question = kit.read(stored["request"]["reference"])
    assert question["identifier"] == body["identifier"]


# --------------------------------------------------------------------- the collection Bundle
def test_bundle_member_found_by_certificate_and_group(kit: Kit) -> None:
    patient, cov = kit.member()
    body = collection(f"{BASE}/Patient/{patient}", hint(certificate(kit, cov)))
    response = answer(kit, body)
    assert errors(response) == []
    assert response["insurance"][0]["coverage"] == ref(f"Coverage/{cov}")
    assert response["insurer"] == ref(f"Organization/{MAPLE}")


def test_bundle_member_found_by_subscriber_id(kit: Kit) -> None:
    patient, cov = kit.member()
    stored = kit.read(f"Coverage/{cov}", kit.p.trusted)
    stored["subscriberId"] = stored["identifier"][0]["value"]
    ok(kit.http.put(f"/fhir/Coverage/{cov}", json=stored, headers={**FHIR, **kit.p.trusted}))
    cover = hint("ignored")
    cover["identifier"] = [{"value": "not-on-the-card"}]
    cover["subscriberId"] = stored["subscriberId"]
    response = answer(kit, collection("urn:uuid:patient", cover), kit.p.insurer)
    assert response["insurance"][0]["coverage"] == ref(f"Coverage/{cov}")
    assert response["patient"] == ref(f"Patient/{patient}")


def test_bundle_unknown_certificate_is_an_answer(kit: Kit) -> None:
    patient, _ = kit.member()
    response = answer(kit, collection(f"{BASE}/Patient/{patient}", hint("NO-SUCH-NUMBER")))
    assert errors(response) == ["member-not-found"]
    assert "insurance" not in response


def test_bundle_wrong_group_is_member_not_found(kit: Kit) -> None:
    patient, cov = kit.member()
    body = collection(f"{BASE}/Patient/{patient}", hint(certificate(kit, cov), group="GP-9"))
    assert errors(answer(kit, body)) == ["member-not-found"]


def test_bundle_wrong_birth_date_is_member_not_found(kit: Kit) -> None:
    patient, cov = kit.member()
    body = collection(
        f"{BASE}/Patient/{patient}", hint(certificate(kit, cov)), birth_date="1999-09-09"
    )
    assert errors(answer(kit, body)) == ["member-not-found"]


def test_bundle_cover_is_never_evidence(kit: Kit) -> None:
    """The Bundle says active and in force; the insurer's stored cover says lapsed."""
    patient, cov = kit.member(period={"start": "2020-01-01", "end": "2024-12-31"})
    cover = hint(certificate(kit, cov))
    cover["period"] = {"start": "2020-01-01", "end": "2099-12-31"}
    response = answer(kit, collection(f"{BASE}/Patient/{patient}", cover))
    assert errors(response) == ["coverage-not-in-force"]


def test_bundle_number_of_a_clinic_typed_cover_is_member_not_found(kit: Kit) -> None:
    patient, cov = kit.member(writer=kit.p.clinic)
    body = collection(f"{BASE}/Patient/{patient}", hint(certificate(kit, cov)))
    assert errors(answer(kit, body)) == ["member-not-found"]


def test_bundle_without_a_coverage_uses_the_patients_cover(kit: Kit) -> None:
    patient, cov = kit.member()
    response = answer(kit, collection(f"{BASE}/Patient/{patient}", None))
    assert response["insurance"][0]["coverage"] == ref(f"Coverage/{cov}")


def test_bundle_cover_is_not_stored(kit: Kit) -> None:
    patient, cov = kit.member()
    before = ok(
        kit.http.get(f"/fhir/Coverage?patient=Patient/{patient}", headers=kit.p.coordinator)
    )
    answer(kit, collection(f"{BASE}/Patient/{patient}", hint(certificate(kit, cov))))
    after = ok(kit.http.get(f"/fhir/Coverage?patient=Patient/{patient}", headers=kit.p.coordinator))
    assert len(after.get("entry", [])) == len(before.get("entry", [])) == 1


def test_parameters_body_is_accepted(kit: Kit) -> None:
    patient, cov = kit.member()
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": request(patient, cov)}],
    }
    assert errors(answer(kit, body)) == []


# ------------------------------------------------------------------------------ who may ask
def test_insurer_asks_about_its_member_by_certificate(kit: Kit) -> None:
    _, cov = kit.member()
    response = answer(
        kit, collection("urn:uuid:patient", hint(certificate(kit, cov))), kit.p.insurer
    )
    assert response["insurance"][0]["coverage"] == ref(f"Coverage/{cov}")


def test_other_insurers_member_number_is_member_not_found(kit: Kit) -> None:
    _, cov = kit.member()  # a Maple member, asked by Albion as if its own
    body = collection("urn:uuid:patient", hint(certificate(kit, cov)), insurer="ins-albion-health")
    assert errors(answer(kit, body, kit.p.insurer_b)) == ["member-not-found"]


def test_insurer_cannot_ask_in_another_insurers_name(kit: Kit) -> None:
    patient, cov = kit.member()
    r = submit(kit, request(patient, cov), kit.p.insurer_b)
    assert r.status_code == 403, r.text


def test_insurer_cannot_ask_about_a_patient_who_is_not_its_member(kit: Kit) -> None:
    patient, _ = kit.member()
    r = submit(kit, request(patient, insurer="ins-albion-health"), kit.p.insurer_b)
    assert r.status_code == 403, r.text


def test_clinic_cannot_ask_about_another_clinics_patient(kit: Kit) -> None:
    patient, cov = kit.member()
    r = submit(kit, request(patient, cov), kit.p.clinic_b)
    assert r.status_code == 422, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_clinic_must_name_its_patient_in_a_bundle(kit: Kit) -> None:
    _, cov = kit.member()
    r = submit(kit, collection("urn:uuid:patient", hint(certificate(kit, cov))))
    assert r.status_code == 422, r.text


def test_coordinator_may_ask(kit: Kit) -> None:
    patient, cov = kit.member()
    assert errors(answer(kit, request(patient, cov), kit.p.coordinator)) == []


def test_trusted_integration_may_ask(kit: Kit) -> None:
    patient, cov = kit.member()
    assert errors(answer(kit, request(patient, cov), kit.p.trusted)) == []


def test_specialist_is_refused(kit: Kit) -> None:
    patient, cov = kit.member()
    r = submit(kit, request(patient, cov), kit.p.expert("exp-oncology-ca"))
    assert r.status_code == 403, r.text


# ----------------------------------------------------------------------------- hostile input
def _bundle_with_first(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resourceType": "Patient", "name": [{"family": "X"}]}, 400),
        ({"resourceType": "Bundle", "type": "transaction", "entry": []}, 400),
        ({"resourceType": "Bundle", "type": "collection"}, 400),
        (_bundle_with_first({"resourceType": "Patient", "name": [{"family": "X"}]}), 400),
        ({"resourceType": "NoSuchType"}, 400),
        ([1, 2, 3], 400),
        ({"resourceType": "Parameters"}, 400),
    ],
)
def test_malformed_body_is_an_operation_outcome(kit: Kit, body: Any, status: int) -> None:
    r = submit(kit, body, kit.p.coordinator)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_request_without_patient_is_invalid(kit: Kit) -> None:
    r = submit(kit, request(None), kit.p.coordinator)
    assert r.status_code == 400, r.text


def test_non_json_body_is_a_400(kit: Kit) -> None:
    r = kit.http.post(URL, content=b"{not json", headers={**FHIR, **kit.p.coordinator})
    assert r.status_code == 400, r.text


def test_bundle_patient_reference_that_resolves_nowhere_is_422(kit: Kit) -> None:
    body = collection("urn:uuid:patient", None)
    body["entry"][0]["resource"]["patient"] = ref("urn:uuid:missing")
    r = submit(kit, body, kit.p.coordinator)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    "change",
    [
        {"patient": ref("Patient/no-such-patient")},
        {"insurer": ref("Organization/no-such-insurer")},
        {"insurer": ref("Patient/pat-tremblay")},
    ],
)
def test_unknown_references_are_422(kit: Kit, change: dict[str, Any]) -> None:
    patient, cov = kit.member()
    r = submit(kit, {**request(patient, cov), **change}, kit.p.coordinator)
    assert r.status_code == 422, r.text


def test_insurer_organization_matching_no_insurer_is_422(kit: Kit) -> None:
    body = collection("urn:uuid:patient", hint("X"))
    body["entry"][2]["resource"]["identifier"][0]["value"] = "nobody"
    assert submit(kit, body, kit.p.coordinator).status_code == 422


def test_cancelled_request_is_not_answered(kit: Kit) -> None:
    patient, cov = kit.member()
    assert submit(kit, {**request(patient, cov), "status": "cancelled"}).status_code == 422


def test_get_is_not_allowed(kit: Kit) -> None:
    r = kit.http.get(URL, headers=kit.p.coordinator)
    assert r.status_code == 405


def test_instance_level_is_not_served(kit: Kit) -> None:
    r = kit.http.post(
        "/fhir/CoverageEligibilityRequest/x/$submit",
        json=request("p"),
        headers={**FHIR, **kit.p.coordinator},
    )
    assert r.status_code == 404


def _dependant(kit: Kit, cov: str) -> tuple[str, str]:
    """(Patient, Coverage) of a dependant under the member's certificate number."""
    other, _ = kit.member()
    stored = kit.read(f"Coverage/{cov}", kit.p.trusted)
    body = {k: v for k, v in stored.items() if k not in ("id", "meta")}
    body.update(dependent="01", beneficiary=ref(f"Patient/{other}"))
    created = ok(kit.http.post("/fhir/Coverage", json=body, headers={**FHIR, **kit.p.trusted}), 201)
    return other, str(created["id"])


def test_dependants_sharing_a_number_need_the_dependent_number(kit: Kit) -> None:
    _, cov = kit.member()
    _dependant(kit, cov)
    body = collection("urn:uuid:patient", hint(certificate(kit, cov)))
    response = answer(kit, body, kit.p.insurer)
    assert errors(response) == ["member-not-found"]
    assert "dependent" in response["error"][0]["code"]["text"]


def test_dependent_number_selects_the_dependant(kit: Kit) -> None:
    _, cov = kit.member()
    other, dep = _dependant(kit, cov)
    cover = {**hint(certificate(kit, cov)), "dependent": "01"}
    response = answer(kit, collection("urn:uuid:patient", cover), kit.p.insurer)
    assert response["insurance"][0]["coverage"] == ref(f"Coverage/{dep}")
    assert response["patient"] == ref(f"Patient/{other}")


def test_capability_statement_lists_submit(kit: Kit) -> None:
    statement = ok(kit.http.get("/fhir/metadata"))
    resource = next(
        r for r in statement["rest"][0]["resource"] if r["type"] == "CoverageEligibilityRequest"
    )
    assert {
        "name": "submit",
        "definition": "https://consilium.health/fhir/OperationDefinition/submit",
    } in resource["operation"]


def _patient_app(kit: Kit, patient: str) -> dict[str, str]:
    """A patient's app: a patient-context token (no party role) for ``patient``."""
    token, _ = issue_access_token(
        kit.http.app.state.consilium.auth.keys,  # type: ignore[attr-defined]
        issuer="http://testserver/fhir",
        client_id="patient-app",
        scopes=["patient/*.rs"],
        lifetime=600,
        context={"patient": patient},
    )
    return bearer(token)


def test_patients_app_asks_about_its_patient(kit: Kit) -> None:
    patient, cov = kit.member()
    response = answer(kit, request(patient, cov), _patient_app(kit, patient))
    assert response["insurance"][0]["coverage"] == ref(f"Coverage/{cov}")


def test_patients_app_cannot_ask_about_another_patient(kit: Kit) -> None:
    patient, _ = kit.member()
    other, cov = kit.member()
    r = submit(kit, request(other, cov), _patient_app(kit, patient))
    assert r.status_code in (403, 422), r.text


def test_patients_app_cannot_look_up_numbers(kit: Kit) -> None:
    patient, _ = kit.member()
    _, cov = kit.member()
    r = submit(
        kit, collection("urn:uuid:patient", hint(certificate(kit, cov))), _patient_app(kit, patient)
    )
    assert r.status_code == 422, r.text
