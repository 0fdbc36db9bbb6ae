"""``$eligibility``: the demo cases, every rejection reason, the stored request/response pair."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.server.operations.conftest import FHIR_JSON, parameters, put, read

DAY = {"name": "date", "valueDate": "2026-11-25"}
CBS = "https://consilium.health/fhir/CodeSystem/case-business-status"


def check(client: TestClient, sr: str, *params: dict[str, Any]) -> dict[str, Any]:
    r = client.post(
        f"/fhir/ServiceRequest/{sr}/$eligibility",
        json=parameters(DAY, *params),
        headers=FHIR_JSON,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def reason(response: dict[str, Any]) -> str | None:
    errors = response.get("error") or []
    return errors[0]["code"]["coding"][0]["code"] if errors else None


def item(response: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = response["insurance"][0]["item"][0]
    return found


def test_eligible_request_has_no_error(demo: TestClient) -> None:
    response = check(demo, "sr-okafor")
    assert reason(response) is None
    assert response["outcome"] == "complete"
    assert response["disposition"].startswith("Eligible")


def test_eligible_response_states_purpose_and_cover(demo: TestClient) -> None:
    response = check(demo, "sr-okafor")
    assert response["purpose"] == ["validation", "benefits"]
    assert response["insurance"][0]["coverage"] == {"reference": "Coverage/cov-okafor"}
    assert response["insurance"][0]["inforce"] is True
    assert response["insurer"] == {"reference": "Organization/ins-maple-mutual"}


def test_eligible_response_has_the_consultation_benefit(demo: TestClient) -> None:
    found = item(check(demo, "sr-okafor"))
    assert found["category"]["coding"][0]["code"] == "3"
    assert found["excluded"] is False
    assert found["benefit"][0]["allowedUnsignedInt"] == 2
    assert found["benefit"][0]["usedUnsignedInt"] == 0


def test_lapsed_cover_is_not_in_force(demo: TestClient) -> None:
    response = check(demo, "sr-reid")  # demo data: the Pennine scheme lapsed in 2025
    assert reason(response) == "coverage-not-in-force"
    assert response["insurance"][0]["inforce"] is False


def test_rejection_has_code_system_and_disposition(demo: TestClient) -> None:
    response = check(demo, "sr-reid")
    assert response["error"][0]["code"]["coding"][0]["system"] == CBS
    assert "Coverage not in force" in response["disposition"]


def test_plan_without_the_benefit_is_excluded(demo: TestClient) -> None:
    cov = read(demo, "Coverage/cov-okafor")
    cov["class"][1]["value"] = "MM-BASIC"
    put(demo, cov)
    response = check(demo, "sr-okafor")
    assert reason(response) == "benefit-not-included"
    assert item(response)["excluded"] is True


def test_second_request_in_the_policy_year_exhausts_the_benefit(demo: TestClient) -> None:
    sr = read(demo, "ServiceRequest/sr-hughes")  # AHA-CORE: one opinion a year
    sr["id"] = "sr-hughes-earlier"
    sr["authoredOn"] = "2026-05-01T09:00:00Z"
    sr.pop("identifier")
    put(demo, sr)
    response = check(demo, "sr-hughes")
    assert reason(response) == "benefit-exhausted"
    assert item(response)["benefit"][0]["usedUnsignedInt"] == 1


def test_request_of_a_previous_policy_year_does_not_count(demo: TestClient) -> None:
    sr = read(demo, "ServiceRequest/sr-hughes")  # the cover's policy year starts 1 April
    sr["id"] = "sr-hughes-last-year"
    sr["authoredOn"] = "2026-03-15T09:00:00Z"
    sr.pop("identifier")
    put(demo, sr)
    assert reason(check(demo, "sr-hughes")) is None


def test_revoked_request_does_not_count(demo: TestClient) -> None:
    sr = read(demo, "ServiceRequest/sr-hughes")
    sr.update(id="sr-hughes-revoked", status="revoked", authoredOn="2026-05-01T09:00:00Z")
    sr.pop("identifier")
    put(demo, sr)
    assert reason(check(demo, "sr-hughes")) is None


def test_provisional_diagnosis_is_not_firm(demo: TestClient) -> None:
    cond = read(demo, "Condition/cond-okafor")
    cond["verificationStatus"]["coding"][0]["code"] = "provisional"
    put(demo, cond)
    assert reason(check(demo, "sr-okafor")) == "diagnosis-not-firm"


def test_coverage_of_another_member_is_member_not_found(demo: TestClient) -> None:
    sr = read(demo, "ServiceRequest/sr-okafor")
    sr["insurance"] = [{"reference": "Coverage/cov-tremblay"}]
    put(demo, sr)
    assert reason(check(demo, "sr-okafor")) == "member-not-found"


def test_missing_coverage_is_member_not_found(loose_demo: TestClient) -> None:
    sr = read(loose_demo, "ServiceRequest/sr-okafor")
    sr["insurance"] = [{"reference": "Coverage/never-stored"}]
    put(loose_demo, sr)
    response = check(loose_demo, "sr-okafor")
    assert reason(response) == "member-not-found"
    assert "insurance" not in response


def test_response_is_stored(demo: TestClient) -> None:
    response = check(demo, "sr-okafor")
    assert read(demo, f"CoverageEligibilityResponse/{response['id']}")["outcome"] == "complete"


def test_stored_request_points_at_the_service_request(demo: TestClient) -> None:
    response = check(demo, "sr-okafor")
    question = read(demo, response["request"]["reference"])
    assert question["item"][0]["detail"] == [{"reference": "ServiceRequest/sr-okafor"}]


def test_type_level_takes_the_request_parameter(demo: TestClient) -> None:
    r = demo.post(
        "/fhir/ServiceRequest/$eligibility",
        json=parameters(
            DAY, {"name": "request", "valueReference": {"reference": "ServiceRequest/sr-reid"}}
        ),
        headers=FHIR_JSON,
    )
    assert r.status_code == 200, r.text
    assert reason(r.json()) == "coverage-not-in-force"


def test_type_level_without_request_is_400(demo: TestClient) -> None:
    r = demo.post("/fhir/ServiceRequest/$eligibility", json=parameters(DAY), headers=FHIR_JSON)
    assert r.status_code == 400


def test_instance_level_refuses_a_request_parameter(demo: TestClient) -> None:
    ref = {"name": "request", "valueReference": {"reference": "ServiceRequest/sr-reid"}}
    r = demo.post(
        "/fhir/ServiceRequest/sr-okafor/$eligibility", json=parameters(ref), headers=FHIR_JSON
    )
    assert r.status_code == 400


def test_partial_date_is_400(demo: TestClient) -> None:
    r = demo.post(
        "/fhir/ServiceRequest/sr-okafor/$eligibility",
        json=parameters({"name": "date", "valueDate": "2026-11"}),
        headers=FHIR_JSON,
    )
    assert r.status_code == 400


def test_not_a_second_opinion_request_is_422(demo: TestClient) -> None:
    sr = {
        "resourceType": "ServiceRequest",
        "id": "sr-plain",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pat-okafor"},
    }
    put(demo, sr)
    r = demo.post(
        "/fhir/ServiceRequest/sr-plain/$eligibility", json=parameters(), headers=FHIR_JSON
    )
    assert r.status_code == 422


def test_unknown_request_is_404(demo: TestClient) -> None:
    r = demo.post("/fhir/ServiceRequest/nope/$eligibility", json=parameters(), headers=FHIR_JSON)
    assert r.status_code == 404
