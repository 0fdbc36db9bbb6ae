"""Reading a second-opinion cover: member number, in force, plan benefits."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from resources.coverage import PlanBenefits, due_date, in_force, member_number, plan_benefits

TODAY = date(2026, 11, 25)
S = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0336", "code": "S"}]}
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


def test_plan_benefit_limits_written_as_decimals_count() -> None:
    """Stored resources hold exact decimals: a limit sent as ``2.0`` is a Decimal, not a float."""
    from decimal import Decimal

    limit = {"value": Decimal("2.0"), "system": "http://unitsofmeasure.org", "code": "{opinion}/a"}
    plan = {
        "resourceType": "InsurancePlan",
        "coverage": [{"benefit": [{"type": S, "limit": [{"value": limit}]}]}],
    }
    assert plan_benefits(plan) == PlanBenefits(True, 2, 0, None)


def test_coverage_helpers() -> None:
    assert member_number(COVERAGE) == "M-7"
    assert in_force(COVERAGE, TODAY)
    assert not in_force(COVERAGE, date(2027, 1, 1))
    assert in_force({**COVERAGE, "period": {"end": "2026-11"}}, TODAY)


@pytest.mark.parametrize(
    ("benefits", "due"),
    [
        (PlanBenefits(True, turnaround_days=7), date(2026, 12, 4)),
        (PlanBenefits(True, turnaround_days=0), date(2026, 11, 25)),
        (PlanBenefits(True), date(2026, 12, 2)),  # the default: 5 business days
        (None, date(2026, 12, 2)),
    ],
)
def test_due_date_counts_business_days(benefits: PlanBenefits | None, due: date) -> None:
    assert due_date(TODAY, benefits) == due
