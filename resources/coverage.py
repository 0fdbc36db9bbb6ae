"""Coverage: reading a second-opinion cover (group policy, certificate number, plan, period).

Pure helpers used by the eligibility rules (resources/eligibility.py); day and period arithmetic
and the business-day due date live in resources/calendar.py. Coverage has no write-time domain
rule beyond its profile (``second-opinion-coverage``), so this module registers no hooks
(``HOOKS`` is empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from resources.calendar import business_days_after, period_covers
from resources.domain import V2_0336, HookTable, has_coding

COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
UCUM = "http://unitsofmeasure.org"
PER_YEAR = "{opinion}/a"  # UCUM: opinions per annum
DAYS = "d"
BENEFIT_URL = "https://consilium.health/fhir/StructureDefinition/second-opinion-benefit"

# DOMAIN.md: a sensible default SLA is a report within 5 business days (p50) of a complete file.
DEFAULT_TURNAROUND_DAYS = 5

HOOKS: HookTable = []


def class_value(coverage: dict[str, Any], class_code: str) -> str | None:
    for c in coverage.get("class", []):
        if has_coding(c.get("type"), COVERAGE_CLASS, class_code) and isinstance(
            c.get("value"), str
        ):
            return str(c["value"])
    return None


def member_number(coverage: dict[str, Any]) -> str | None:
    """The certificate (member) number: the identifier typed v2-0203 ``MB``."""
    for ident in coverage.get("identifier", []):
        if has_coding(ident.get("type"), V2_0203, "MB") and isinstance(ident.get("value"), str):
            return str(ident["value"])
    return None


def in_force(coverage: dict[str, Any], today: date) -> bool:
    """Active, and its period (open ends allowed) covers ``today``."""
    return coverage.get("status") == "active" and period_covers(coverage.get("period"), today)


@dataclass(frozen=True)
class PlanBenefits:
    """The second-opinion benefit of a member's plan, and how much of it is used."""

    included: bool
    opinions_per_year: int | None = None  # None: unlimited
    opinions_used: int = 0
    turnaround_days: int | None = None


def _is_second_opinion_benefit(benefit: dict[str, Any]) -> bool:
    return has_coding(benefit.get("type"), V2_0336, "S")


def plan_benefits(insurance_plan: dict[str, Any] | None, *, used: int = 0) -> PlanBenefits:
    """Read the second-opinion benefit from an InsurancePlan (see seed/data for the shape).

    The benefit is ``coverage[].benefit[]`` typed v2-0336 ``S``; its limits are quantities in
    UCUM ``{opinion}/a`` (opinions per year) and ``d`` (turnaround in days).
    """
    if not insurance_plan:
        return PlanBenefits(included=False)
    for cov in insurance_plan.get("coverage", []):
        for benefit in cov.get("benefit", []):
            if not _is_second_opinion_benefit(benefit):
                continue
            per_year: int | None = None
            turnaround: int | None = None
            for limit in benefit.get("limit", []):
                q = limit.get("value") or {}
                if q.get("system") == UCUM and isinstance(q.get("value"), int | float | Decimal):
                    if q.get("code") == PER_YEAR:
                        per_year = int(q["value"])
                    elif q.get("code") == DAYS:
                        turnaround = int(q["value"])
            return PlanBenefits(True, per_year, used, turnaround)
    return PlanBenefits(included=False)


def _quantity(ext: dict[str, Any], code: str) -> int | None:
    q = ext.get("valueQuantity") or {}
    if q.get("system") == UCUM and q.get("code") == code:
        value = q.get("value")
        if isinstance(value, int | float | Decimal) and value >= 0:
            return int(value)
    return None


def class_benefits(coverage: dict[str, Any] | None, *, used: int = 0) -> PlanBenefits | None:
    """The second-opinion benefit carried on a Coverage class (extension ``BENEFIT_URL``), for
    a roster that names no InsurancePlan here; None when no class carries it.

    ``allowance`` in UCUM ``{opinion}/a`` (absent: unlimited), ``turnaround`` in ``d``, as on
    an InsurancePlan benefit's limits.
    """
    for cls in (coverage or {}).get("class") or []:
        for ext in cls.get("extension") or [] if isinstance(cls, dict) else []:
            if not isinstance(ext, dict) or ext.get("url") != BENEFIT_URL:
                continue
            parts = {e.get("url"): e for e in ext.get("extension") or [] if isinstance(e, dict)}
            per_year = _quantity(parts.get("allowance") or {}, PER_YEAR)
            turnaround = _quantity(parts.get("turnaround") or {}, DAYS)
            return PlanBenefits(True, per_year, used, turnaround)
    return None


def benefits_of(
    insurance_plan: dict[str, Any] | None, coverage: dict[str, Any] | None, *, used: int = 0
) -> PlanBenefits:
    """The member's benefit: the InsurancePlan's when one was found (it takes precedence),
    else the one carried on the Coverage's class, else not included."""
    if insurance_plan is None:
        carried = class_benefits(coverage, used=used)
        if carried is not None:
            return carried
    return plan_benefits(insurance_plan, used=used)


def due_date(submitted: date, benefits: PlanBenefits | None) -> date:
    """The case due date: the plan's turnaround in business days after submission.

    Plans state turnaround in days (UCUM ``d``) and mean working days, as the services do
    ("a report within 5-7 working days"); without a stated turnaround the default SLA applies.
    """
    days = benefits.turnaround_days if benefits and benefits.turnaround_days is not None else None
    return business_days_after(submitted, DEFAULT_TURNAROUND_DAYS if days is None else days)
