"""Pure helpers of $eligibility: the policy year and the response shape."""

from __future__ import annotations

from datetime import date

import pytest

from resources.coverage import PlanBenefits
from resources.eligibility import Eligibility, EligibilityFacts, Failure
from server.cases.coverage_check import Checked, build_response, policy_year, reason_display


@pytest.mark.parametrize(
    ("start", "day", "expected"),
    [
        ("2026-04-01", date(2026, 11, 25), (date(2026, 4, 1), date(2027, 3, 31))),
        ("2026-04-01", date(2027, 3, 31), (date(2026, 4, 1), date(2027, 3, 31))),
        ("2025-01-01", date(2026, 11, 25), (date(2026, 1, 1), date(2026, 12, 31))),
        ("2024-02-29", date(2025, 3, 1), (date(2025, 2, 28), date(2026, 2, 27))),
        (None, date(2026, 6, 1), (date(2026, 1, 1), date(2026, 12, 31))),
        ("garbage", date(2026, 6, 1), (date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_policy_year(start: str | None, day: date, expected: tuple[date, date]) -> None:
    coverage = {"period": {"start": start}} if start else {}
    assert policy_year(coverage, day) == expected


def test_reason_display_comes_from_the_code_system() -> None:
    assert reason_display("benefit-exhausted") == "Benefit exhausted"


QUESTION = {
    "patient": {"reference": "Patient/p"},
    "created": "2026-11-25T00:00:00.000Z",
    "insurer": {"reference": "Organization/i"},
}
COVERAGE = {"status": "active", "period": {"start": "2026-01-01"}}


def checked(
    coverage: dict[str, object] | None,
    benefits: PlanBenefits | None,
    failures: tuple[Failure, ...] = (),
) -> Checked:
    facts = EligibilityFacts(
        request={"subject": {"reference": "Patient/p"}},
        coverage=coverage,
        coverage_attested=True,
        condition=None,
        supporting=[],
        benefits=benefits,
        day=date(2026, 5, 1),
    )
    return Checked(
        Eligibility(not failures, failures, None),
        facts,
        "Coverage/c" if coverage else None,
        None,
        None,
    )


def test_unlimited_benefit_is_allowed_as_string() -> None:
    response = build_response(
        "CoverageEligibilityRequest/q", QUESTION, checked(COVERAGE, PlanBenefits(True, None, 3))
    )
    benefit = response["insurance"][0]["item"][0]["benefit"][0]
    assert benefit["allowedString"] == "unlimited"
    assert benefit["usedUnsignedInt"] == 3


def test_no_coverage_means_no_insurance_element() -> None:
    missing = Failure("member-not-found", "No cover found.", "ServiceRequest.insurance")
    response = build_response(
        "CoverageEligibilityRequest/q", QUESTION, checked(None, None, (missing,))
    )
    assert "insurance" not in response
    assert response["error"][0]["code"]["coding"][0]["code"] == "member-not-found"


def test_every_failure_is_an_error_with_its_explanation() -> None:
    failures = (
        Failure("coverage-not-in-force", "The cover ended.", "Coverage.period"),
        Failure("diagnosis-not-firm", "Not confirmed.", "Condition.verificationStatus"),
    )
    response = build_response(
        "CoverageEligibilityRequest/q", QUESTION, checked(COVERAGE, None, failures)
    )
    assert [e["code"]["coding"][0]["code"] for e in response["error"]] == [
        "coverage-not-in-force",
        "diagnosis-not-firm",
    ]
    assert [e["code"]["text"] for e in response["error"]] == ["The cover ended.", "Not confirmed."]
    assert "Coverage not in force" in response["disposition"]
