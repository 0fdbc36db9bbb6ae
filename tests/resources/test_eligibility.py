"""Eligibility rules: every failing rule, in the member's-journey order, with its fix.

Guide codes only (the covered-serious-conditions CodeSystem), so these tests do not depend on
the ICD-10/SNOMED maps of the terminology.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from resources.coverage import PlanBenefits
from resources.eligibility import (
    RULE_ORDER,
    UNEXPLAINED_URL,
    EligibilityFacts,
    evaluate,
    service_day,
)
from tests.resources.case_samples import CONDITION, COVERAGE, CSC, REQUEST, VER, S

DAY = date(2026, 11, 25)
NOT_COVERED = {"coding": [{"system": "http://example.org/local-codes", "code": "common-cold"}]}
UNEXPLAINED = [{"url": UNEXPLAINED_URL, "valueBoolean": True}]
RESULT = {"resourceType": "DiagnosticReport", "status": "final"}
LETTER = {"resourceType": "DocumentReference", "status": "current"}
BENEFITS = PlanBenefits(included=True, opinions_per_year=2, opinions_used=1, turnaround_days=5)

FACTS = EligibilityFacts(
    request=REQUEST,
    coverage=COVERAGE,
    coverage_attested=True,
    condition=CONDITION,
    supporting=[RESULT, LETTER],
    benefits=BENEFITS,
    day=DAY,
)

Edit = Callable[[EligibilityFacts], EligibilityFacts]


def facts(**changes: Any) -> Edit:
    return lambda f: dataclasses.replace(f, **changes)


def request(**changes: Any) -> Edit:
    return lambda f: dataclasses.replace(f, request={**f.request, **changes})


def coverage(**changes: Any) -> Edit:
    return lambda f: dataclasses.replace(f, coverage={**(f.coverage or {}), **changes})


def condition(**changes: Any) -> Edit:
    return lambda f: dataclasses.replace(f, condition={**(f.condition or {}), **changes})


def verification(code: str) -> Edit:
    return condition(verificationStatus={"coding": [{"system": VER, "code": code}]})


def without(kind: str, key: str) -> Edit:
    def edit(f: EligibilityFacts) -> EligibilityFacts:
        resource = {k: v for k, v in getattr(f, kind).items() if k != key}
        return dataclasses.replace(f, **{kind: resource})

    return edit


def both(*edits: Edit) -> Edit:
    def edit(f: EligibilityFacts) -> EligibilityFacts:
        for e in edits:
            f = e(f)
        return f

    return edit


# (name, edit, expected failure codes in order)
CASES: list[tuple[str, Edit, tuple[str, ...]]] = [
    ("eligible", facts(), ()),
    ("no coverage", facts(coverage=None), ("member-not-found",)),
    (
        "someone else's coverage",
        coverage(beneficiary={"reference": "Patient/p2"}),
        ("member-not-found",),
    ),
    ("request without a patient", without("request", "subject"), ("member-not-found",)),
    ("coverage written by the clinic", facts(coverage_attested=False), ("coverage-unverified",)),
    ("cancelled coverage", coverage(status="cancelled"), ("coverage-not-in-force",)),
    (
        "period ended",
        coverage(period={"start": "2024-01-01", "end": "2025-12-31"}),
        ("coverage-not-in-force",),
    ),
    ("period not started", coverage(period={"start": "2027-01-01"}), ("coverage-not-in-force",)),
    ("garbage period", coverage(period={"start": "soon"}), ("coverage-not-in-force",)),
    ("open-ended partial period", coverage(period={"start": "2020-01"}), ()),
    ("no payor", coverage(payor=[]), ("coverage-not-in-force",)),
    (
        "cancelled, lapsed and no payor: one failure",
        coverage(status="cancelled", payor=[], period={"end": "2025"}),
        ("coverage-not-in-force",),
    ),
    ("plan without the benefit", facts(benefits=PlanBenefits(False)), ("benefit-not-included",)),
    ("plan not found", facts(benefits=None), ("benefit-not-included",)),
    (
        "benefit used up",
        facts(benefits=PlanBenefits(True, opinions_per_year=2, opinions_used=2)),
        ("benefit-exhausted",),
    ),
    (
        "third opinion when the benefit is used up",
        facts(benefits=PlanBenefits(True, 2, 2), third_opinion=True),
        (),
    ),
    ("unlimited benefit", facts(benefits=PlanBenefits(True, None, 99)), ()),
    (
        "third opinion still needs the benefit",
        facts(benefits=PlanBenefits(False), third_opinion=True),
        ("benefit-not-included",),
    ),
    ("uncovered condition", condition(code=NOT_COVERED), ("condition-not-covered",)),
    (
        "covered via the request's reason code",
        both(
            condition(code={"text": "tumour"}),
            request(reasonCode=[S, {"coding": [{"system": CSC, "code": "cancer"}]}]),
        ),
        (),
    ),
    (
        "the second-opinion reason is not a condition",
        both(condition(code={"text": "tumour"}), request(reasonCode=[S])),
        ("condition-not-covered",),
    ),
    ("no investigation results", facts(supporting=[]), ("investigations-incomplete",)),
    ("letters only", facts(supporting=[LETTER]), ("investigations-incomplete",)),
    (
        "preliminary results only",
        facts(supporting=[{"resourceType": "Observation", "status": "preliminary"}, LETTER]),
        ("investigations-incomplete",),
    ),
    (
        "an amended observation",
        facts(supporting=[{"resourceType": "Observation", "status": "amended"}]),
        (),
    ),
    ("provisional diagnosis", verification("provisional"), ("diagnosis-not-firm",)),
    ("no verification status", without("condition", "verificationStatus"), ("diagnosis-not-firm",)),
    (
        "unexplained after investigations, flagged on the request",
        both(verification("provisional"), request(extension=UNEXPLAINED)),
        (),
    ),
    (
        "unexplained after investigations, flagged on the condition",
        both(verification("unconfirmed"), condition(extension=UNEXPLAINED)),
        (),
    ),
    (
        "unexplained flag false is no flag",
        both(
            verification("provisional"),
            request(extension=[{"url": UNEXPLAINED_URL, "valueBoolean": False}]),
        ),
        ("diagnosis-not-firm",),
    ),
    (
        "no condition, covered by reason code",
        both(facts(condition=None), request(reasonCode=[S, CONDITION["code"]])),
        ("diagnosis-not-firm",),
    ),
    (
        "no condition, no code",
        facts(condition=None),
        ("condition-not-covered", "diagnosis-not-firm"),
    ),
    (
        "no member: coverage rules skipped, clinical rules still run",
        both(facts(coverage=None, supporting=[LETTER]), verification("provisional")),
        ("member-not-found", "investigations-incomplete", "diagnosis-not-firm"),
    ),
    (
        "unverified: its status and benefits are not judged",
        both(
            facts(coverage_attested=False, benefits=PlanBenefits(False)),
            coverage(status="cancelled"),
        ),
        ("coverage-unverified",),
    ),
    (
        "no benefit: nothing to exhaust",
        facts(benefits=PlanBenefits(False, opinions_per_year=0)),
        ("benefit-not-included",),
    ),
    (
        "everything wrong at once",
        both(
            coverage(status="cancelled"),
            facts(benefits=PlanBenefits(True, 1, 1), supporting=[LETTER]),
            condition(code=NOT_COVERED),
            verification("differential"),
        ),
        (
            "coverage-not-in-force",
            "benefit-exhausted",
            "condition-not-covered",
            "investigations-incomplete",
            "diagnosis-not-firm",
        ),
    ),
]


@pytest.mark.parametrize(("name", "edit", "expected"), CASES, ids=[c[0] for c in CASES])
def test_evaluate(name: str, edit: Edit, expected: tuple[str, ...]) -> None:
    verdict = evaluate(edit(copy.deepcopy(FACTS)))
    assert verdict.codes == expected
    assert verdict.eligible is (expected == ())


@pytest.mark.parametrize(("name", "edit", "expected"), CASES, ids=[c[0] for c in CASES])
def test_failures_follow_the_journey_order(
    name: str, edit: Edit, expected: tuple[str, ...]
) -> None:
    codes = evaluate(edit(copy.deepcopy(FACTS))).codes
    assert list(codes) == sorted(codes, key=RULE_ORDER.index)


@pytest.mark.parametrize(
    ("edit", "expression"),
    [
        (facts(coverage=None), "ServiceRequest.insurance"),
        (coverage(beneficiary={"reference": "Patient/p2"}), "Coverage.beneficiary"),
        (facts(coverage_attested=False), "ServiceRequest.insurance"),
        (coverage(period={"end": "2025-06-30"}), "Coverage.period"),
        (coverage(payor=[]), "Coverage.payor"),
        (condition(code=NOT_COVERED), "Condition.code"),
        (facts(supporting=[]), "ServiceRequest.supportingInfo"),
        (verification("refuted"), "Condition.verificationStatus"),
    ],
)
def test_failure_points_at_the_offending_element(edit: Edit, expression: str) -> None:
    (failure,) = evaluate(edit(copy.deepcopy(FACTS))).failures
    assert failure.expression == expression


def test_explanation_says_when_the_cover_ended() -> None:
    (failure,) = evaluate(coverage(period={"end": "2025-06-30"})(FACTS)).failures
    assert "2025-06-30" in failure.explanation and "2026-11-25" in failure.explanation


def test_every_failure_explains_itself() -> None:
    verdict = evaluate(CASES[-1][1](copy.deepcopy(FACTS)))
    assert all(len(f.explanation) > 40 for f in verdict.failures)


def test_condition_is_the_first_covered_match() -> None:
    f = request(reasonCode=[S, {"coding": [{"system": CSC, "code": "cancer"}]}])(FACTS)
    match = evaluate(f).condition
    assert match is not None and (match.condition, match.via) == ("multiple-sclerosis", "guide")


def test_condition_falls_back_to_the_reason_code() -> None:
    f = both(
        condition(code=NOT_COVERED),
        request(reasonCode=[S, {"coding": [{"system": CSC, "code": "cancer"}]}]),
    )(FACTS)
    match = evaluate(f).condition
    assert match is not None and match.source == f"{CSC}|cancer"


def test_no_covered_match_no_condition() -> None:
    assert evaluate(condition(code=NOT_COVERED)(FACTS)).condition is None


@pytest.mark.parametrize(
    ("authored", "day"),
    [
        ("2026-03-04T10:00:00Z", date(2026, 3, 4)),
        ("2026-03-04", date(2026, 3, 4)),
        (None, DAY),
        ("garbage", DAY),
    ],
)
def test_service_day(authored: str | None, day: date) -> None:
    sr = {**REQUEST, "authoredOn": authored} if authored else REQUEST
    assert service_day(sr, DAY) == day
