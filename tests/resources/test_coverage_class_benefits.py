"""The second-opinion benefit carried on a Coverage class (``resources.coverage.class_benefits``)
and its precedence after an InsurancePlan (``benefits_of``)."""

from __future__ import annotations

from typing import Any

import pytest

from resources.coverage import BENEFIT_URL, PlanBenefits, benefits_of, class_benefits

UCUM = "http://unitsofmeasure.org"


def quantity(url: str, value: Any, code: str) -> dict[str, Any]:
    return {"url": url, "valueQuantity": {"value": value, "system": UCUM, "code": code}}


def cover(*parts: dict[str, Any], url: str = BENEFIT_URL) -> dict[str, Any]:
    ext: dict[str, Any] = {"url": url}
    if parts:
        ext["extension"] = list(parts)
    return {"class": [{"type": {"text": "plan"}, "value": "P", "extension": [ext]}]}


PLAN = {
    "coverage": [
        {
            "benefit": [
                {
                    "type": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v2-0336", "code": "S"}
                        ]
                    },
                    "limit": [{"value": {"value": 1, "system": UCUM, "code": "{opinion}/a"}}],
                }
            ]
        }
    ]
}


@pytest.mark.parametrize(
    ("coverage", "expected"),
    [
        (
            cover(quantity("allowance", 2, "{opinion}/a"), quantity("turnaround", 7, "d")),
            PlanBenefits(True, 2, 0, 7),
        ),
        (cover(quantity("turnaround", 7, "d")), PlanBenefits(True, None, 0, 7)),
        (cover(), PlanBenefits(True, None, 0, None)),
        (cover(quantity("allowance", 2, "wk")), PlanBenefits(True, None, 0, None)),
        (cover(quantity("allowance", -1, "{opinion}/a")), PlanBenefits(True, None, 0, None)),
        (cover(url="https://example.org/other"), None),
        ({"class": [{"value": "P"}]}, None),
        (None, None),
    ],
)
def test_class_benefits(coverage: dict[str, Any] | None, expected: PlanBenefits | None) -> None:
    assert class_benefits(coverage) == expected


def test_class_benefits_counts_used() -> None:
    got = class_benefits(cover(quantity("allowance", 2, "{opinion}/a")), used=1)
    assert got == PlanBenefits(True, 2, 1, None)


@pytest.mark.parametrize(
    ("plan", "coverage", "expected"),
    [
        (PLAN, cover(quantity("allowance", 5, "{opinion}/a")), PlanBenefits(True, 1, 0, None)),
        (None, cover(quantity("allowance", 5, "{opinion}/a")), PlanBenefits(True, 5, 0, None)),
        (None, {"class": []}, PlanBenefits(False)),
        ({"coverage": []}, cover(quantity("allowance", 5, "{opinion}/a")), PlanBenefits(False)),
    ],
)
def test_plan_takes_precedence_over_the_class(
    plan: dict[str, Any] | None, coverage: dict[str, Any], expected: PlanBenefits
) -> None:
    assert benefits_of(plan, coverage) == expected
