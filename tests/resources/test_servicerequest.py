"""Eligibility for a second opinion, as a table of (what is wrong → rejection reason)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from resources.coverage import PlanBenefits, in_force, member_number, plan_benefits
from resources.servicerequest import (
    case_task_id,
    check_eligibility,
    is_second_opinion_request,
    new_case_task,
)

B = "https://consilium.health/fhir"
CSC = f"{B}/CodeSystem/covered-serious-conditions"
SCT = "http://snomed.info/sct"
TODAY = date(2026, 11, 25)
S = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0336", "code": "S"}]}

SR: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "status": "active",
    "subject": {"reference": "Patient/p1"},
    "requester": {"reference": "PractitionerRole/t1"},
    "reasonCode": [S],
    "supportingInfo": [{"reference": "DiagnosticReport/d1"}],
}
COVERAGE: dict[str, Any] = {
    "resourceType": "Coverage",
    "status": "active",
    "beneficiary": {"reference": "Patient/p1"},
    "payor": [{"reference": "Organization/ins"}],
    "period": {"start": "2026-01-01", "end": "2026-12-31"},
    "identifier": [
        {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}
                ]
            },
            "value": "M-7",
        }
    ],
}
CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "code": {"coding": [{"system": CSC, "code": "multiple-sclerosis"}]},
    "verificationStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed",
            }
        ]
    },
    "subject": {"reference": "Patient/p1"},
}
BENEFITS = PlanBenefits(included=True, opinions_per_year=2, opinions_used=1, turnaround_days=10)

Args = tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, PlanBenefits | None]
Edit = Callable[[Args], Args]


def ok(a: Args) -> Args:
    return a


def cov(**changes: Any) -> Edit:
    return lambda a: (a[0], {**(a[1] or {}), **changes}, a[2], a[3])


def cond_code(system: str, code: str) -> Edit:
    return lambda a: (
        a[0],
        a[1],
        {**(a[2] or {}), "code": {"coding": [{"system": system, "code": code}]}},
        a[3],
    )


CASES: list[tuple[str, Edit, tuple[bool, str | None]]] = [
    ("eligible", ok, (True, None)),
    ("no coverage", lambda a: (a[0], None, a[2], a[3]), (False, "member-not-found")),
    (
        "someone else's coverage",
        cov(beneficiary={"reference": "Patient/p2"}),
        (False, "member-not-found"),
    ),
    ("cancelled coverage", cov(status="cancelled"), (False, "coverage-not-in-force")),
    (
        "period ended",
        cov(period={"start": "2024-01-01", "end": "2025-12-31"}),
        (False, "coverage-not-in-force"),
    ),
    ("period not started", cov(period={"start": "2027-01-01"}), (False, "coverage-not-in-force")),
    ("open-ended period", cov(period={"start": "2020-01"}), (True, None)),
    ("garbage period", cov(period={"start": "soon"}), (False, "coverage-not-in-force")),
    ("no payor", cov(payor=[]), (False, "coverage-not-in-force")),
    (
        "no benefit",
        lambda a: (a[0], a[1], a[2], PlanBenefits(included=False)),
        (False, "benefit-not-included"),
    ),
    ("no plan known", lambda a: (a[0], a[1], a[2], None), (False, "benefit-not-included")),
    (
        "benefit used up",
        lambda a: (a[0], a[1], a[2], PlanBenefits(True, opinions_per_year=2, opinions_used=2)),
        (False, "benefit-exhausted"),
    ),
    ("unlimited benefit", lambda a: (a[0], a[1], a[2], PlanBenefits(True, None, 99)), (True, None)),
    ("uncovered condition", cond_code(SCT, "195967001"), (False, "condition-not-covered")),
    ("covered by SNOMED root", cond_code(SCT, "24700007"), (True, None)),
    (
        "undecidable SNOMED descendant",
        cond_code(SCT, "254837009"),
        (False, "condition-not-covered"),
    ),
    (
        "covered via the request's reason code",
        lambda a: (
            {**a[0], "reasonCode": [S, {"coding": [{"system": CSC, "code": "cancer"}]}]},
            a[1],
            {**(a[2] or {}), "code": {"text": "tumour"}},
            a[3],
        ),
        (True, None),
    ),
    (
        "no investigation results",
        lambda a: ({k: v for k, v in a[0].items() if k != "supportingInfo"}, a[1], a[2], a[3]),
        (False, "investigations-incomplete"),
    ),
    (
        "provisional diagnosis",
        lambda a: (
            a[0],
            a[1],
            {
                **(a[2] or {}),
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "provisional",
                        }
                    ]
                },
            },
            a[3],
        ),
        (False, "investigations-incomplete"),
    ),
]


@pytest.mark.parametrize(("name", "edit", "expected"), CASES, ids=[c[0] for c in CASES])
def test_check_eligibility(name: str, edit: Edit, expected: tuple[bool, str | None]) -> None:
    sr, coverage, condition, benefits = edit(
        (copy.deepcopy(SR), copy.deepcopy(COVERAGE), copy.deepcopy(CONDITION), BENEFITS)
    )
    assert check_eligibility(sr, coverage, condition, benefits, today=TODAY) == expected


def test_is_second_opinion_request() -> None:
    assert is_second_opinion_request(SR)
    assert not is_second_opinion_request({**SR, "reasonCode": [{"text": "S"}]})
    assert not is_second_opinion_request({"resourceType": "Task", "reasonCode": [S]})
    assert not is_second_opinion_request(None)


def test_new_case_task_opens_a_received_case() -> None:
    t = new_case_task(SR, "sr-1")
    assert t["id"] == case_task_id("sr-1") != case_task_id("sr-2")
    assert (t["status"], t["businessStatus"]["coding"][0]["code"]) == ("requested", "received")
    assert t["focus"] == t["basedOn"][0] == {"reference": "ServiceRequest/sr-1"}
    assert t["for"] == SR["subject"]


def test_plan_benefits_from_insurance_plan() -> None:
    plan = {
        "resourceType": "InsurancePlan",
        "coverage": [
            {
                "type": {"text": "Consultation"},
                "benefit": [
                    {
                        "type": S,
                        "limit": [
                            {
                                "value": {
                                    "value": 2,
                                    "system": "http://unitsofmeasure.org",
                                    "code": "{opinion}/a",
                                }
                            },
                            {
                                "value": {
                                    "value": 10,
                                    "system": "http://unitsofmeasure.org",
                                    "code": "d",
                                }
                            },
                        ],
                    }
                ],
            }
        ],
    }
    assert plan_benefits(plan, used=1) == PlanBenefits(True, 2, 1, 10)
    assert plan_benefits({"resourceType": "InsurancePlan"}) == PlanBenefits(False)
    assert plan_benefits(None) == PlanBenefits(False)


def test_coverage_helpers() -> None:
    assert member_number(COVERAGE) == "M-7"
    assert in_force(COVERAGE, TODAY)
    assert not in_force(COVERAGE, date(2027, 1, 1))
    assert in_force({**COVERAGE, "period": {"end": "2026-11"}}, TODAY)


def test_plan_benefit_limits_written_as_decimals_count() -> None:
    """Stored resources hold exact decimals: a limit sent as ``2.0`` is a Decimal, not a float."""
    from decimal import Decimal

    limit = {"value": Decimal("2.0"), "system": "http://unitsofmeasure.org", "code": "{opinion}/a"}
    plan = {
        "resourceType": "InsurancePlan",
        "coverage": [{"benefit": [{"type": S, "limit": [{"value": limit}]}]}],
    }
    assert plan_benefits(plan) == PlanBenefits(True, 2, 0, None)
