"""Eligibility of a second-opinion request: the facts, read on the server's own account, and
the business records (CoverageEligibilityRequest + Response) of the decision.

Facts are read unrestricted (``Repository.unrestricted``) because they decide a case, not what
the caller sees: a clinic cannot read the insurer's plan or another clinic's earlier requests,
yet the member's cover and utilisation are what eligibility is about. Only the decision leaves
the server (on the Task, and as the stored CoverageEligibilityResponse the insurer reads).

*Insurer-held* Coverage: ``acl.attested`` (auth/acl.py) is true only when the insurer's own
client or a trusted feed wrote the version; a Coverage the clinic asserted in its own bundle is
not evidence of cover (rule ``coverage-unverified``). Versions stored before that flag existed
count as attested: they were loaded by trusted seeding in every deployment we know of.

Utilisation counts the member's *other* second-opinion requests on the same Coverage, authored in
the policy year of the date of service, that are active/on-hold/completed and whose case (when
the server holds one) was accepted: a rejected or cancelled case used nothing. Third opinions
are free (the Medicare-Part-B-style rule of the seed material).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from profiles.conformance import CS_BUSINESS_STATUS, CS_OUTCOME, lookup
from resources.coverage import PlanBenefits, benefits_of, class_value, in_force
from resources.domain import SNOMED, codes_in, local_id
from resources.eligibility import Eligibility, EligibilityFacts, evaluate
from resources.servicerequest import is_second_opinion_request
from server.operations.links import local_key
from server.repository import Repository

ALTERNATIVE_OUTCOMES = frozenset({"alternative-diagnosis", "alternative-treatment"})
USED_REQUEST_STATUSES = frozenset({"active", "on-hold", "completed"})
USED_TASK_STATUSES = frozenset(
    {"accepted", "ready", "in-progress", "on-hold", "completed", "failed"}
)
RESULT_TYPES = ("DiagnosticReport", "Observation", "DocumentReference", "ImagingStudy", "Media")
BENEFIT_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/ex-benefitcategory",
            "code": "3",
            "display": "Consultation",
        }
    ]
}
CONSULTATION = {"coding": [{"system": SNOMED, "code": "11429006", "display": "Consultation"}]}
BENEFIT_TYPE_VISIT = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/benefit-type", "code": "visit"}],
    "text": "Second opinions per policy year",
}
PURPOSE = ["validation", "benefits"]
PROVIDER_TYPES = ("Practitioner", "PractitionerRole", "Organization")


@dataclass(frozen=True)
class Checked:
    """An eligibility decision with the keys of what it was decided on."""

    result: Eligibility
    facts: EligibilityFacts
    coverage_key: str | None
    condition_key: str | None
    plan: dict[str, Any] | None


# ------------------------------------------------------------------------------ pure helpers
def policy_year(coverage: dict[str, Any] | None, day: date) -> tuple[date, date]:
    """The benefit period containing ``day``: anniversaries of ``Coverage.period.start``,
    else the calendar year."""
    start_text = ((coverage or {}).get("period") or {}).get("start")
    try:
        anchor = date.fromisoformat(start_text[:10]) if isinstance(start_text, str) else None
    except ValueError:
        anchor = None
    if anchor is None:
        return date(day.year, 1, 1), date(day.year, 12, 31)

    def anniversary(year: int) -> date:
        try:
            return anchor.replace(year=year)
        except ValueError:  # 29 February
            return date(year, 2, 28)

    start = anniversary(day.year)
    if start > day:
        start = anniversary(day.year - 1)
    nxt = anniversary(start.year + 1)
    return start, date.fromordinal(nxt.toordinal() - 1)


@cache
def reason_display(code: str) -> str:
    def walk(concepts: list[dict[str, Any]]) -> str | None:
        for c in concepts:
            if c.get("code") == code:
                return str(c.get("display") or code)
            found = walk(c.get("concept") or [])
            if found:
                return found
        return None

    cs = lookup(CS_BUSINESS_STATUS, "CodeSystem") or {}
    return walk(cs.get("concept") or []) or code


def _day_of(value: Any) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if isinstance(value, str) else None
    except ValueError:
        return None


def service_day(request: dict[str, Any], today: date) -> date:
    """The date of service: when the request was authored (a file sent on the last day of cover
    is judged on that day), else today."""
    return _day_of(request.get("authoredOn")) or today


def first_key(values: Any, rtype: str, base: str | None = None) -> str | None:
    for value in values if isinstance(values, list) else [values]:
        key = local_key(value, base)
        if key and key.startswith(f"{rtype}/"):
            return key
    return None


# ---------------------------------------------------------------------------------- reads
def _doc(repo: Repository, key: str | None) -> dict[str, Any] | None:
    if key is None:
        return None
    rtype, rid = key.split("/")
    return next(repo.find_visible(rtype, {"_id": rid}, limit=1), None)


def find_plan(repo: Repository, coverage: dict[str, Any] | None) -> dict[str, Any] | None:
    """The InsurancePlan whose identifier equals the coverage's ``plan`` class value (the
    payor's own plan first when several insurers use the same plan code)."""
    plan_code = class_value(coverage, "plan") if coverage else None
    if not plan_code:
        return None
    found = repo.find_visible(
        "InsurancePlan", {"idx.identifier": plan_code}, sort=[("_id", 1)], limit=50
    )
    candidates = [d["resource"] for d in found]
    payors = {
        p.get("reference") for p in (coverage or {}).get("payor") or [] if isinstance(p, dict)
    }
    for plan in candidates:
        owners = {(plan.get(k) or {}).get("reference") for k in ("ownedBy", "administeredBy")}
        if owners & payors:
            return dict(plan)
    return dict(candidates[0]) if candidates else None


def final_outcomes(repo: Repository, request_id: str) -> set[str]:
    """Outcome codes of the request's final (or amended/corrected) second-opinion reports."""
    out: set[str] = set()
    for doc in repo.find_visible(
        "DiagnosticReport", {"idx.based-on": f"ServiceRequest/{request_id}"}, limit=100
    ):
        report = doc["resource"]
        if report.get("status") in ("final", "amended", "corrected"):
            out.update(codes_in(report.get("conclusionCode"), CS_OUTCOME))
    return out


def is_third_opinion(repo: Repository, request: dict[str, Any]) -> bool:
    """Does the request replace a first opinion whose final outcome disagreed (an alternative
    diagnosis or treatment)?"""
    for ref in request.get("replaces") or []:
        rid = local_id(ref, "ServiceRequest")
        if rid and final_outcomes(repo, rid) & ALTERNATIVE_OUTCOMES:
            return True
    return False


def opinions_used(
    repo: Repository,
    request: dict[str, Any],
    coverage_key: str,
    day: date,
    coverage: dict[str, Any],
) -> int:
    patient = local_key(request.get("subject"))
    if not patient:
        return 0
    start, end = policy_year(coverage, day)
    used = 0
    for doc in repo.find_visible(
        "ServiceRequest",
        {"idx.subject": patient, "_id": {"$ne": request.get("id")}},
        limit=10_000,
    ):
        other = doc["resource"]
        if not is_second_opinion_request(other):
            continue
        if coverage_key not in {local_key(i) for i in other.get("insurance") or []}:
            continue
        when = _day_of(other.get("authoredOn"))
        if when is None or not start <= when <= end:
            continue
        if other.get("status") not in USED_REQUEST_STATUSES:
            continue
        statuses = {
            t["resource"].get("status")
            for t in repo.find_visible(
                "Task", {"idx.focus": f"ServiceRequest/{doc['_id']}"}, limit=50
            )
            if not t["resource"].get("partOf")
        }
        if statuses and not statuses & USED_TASK_STATUSES:
            continue  # rejected, or withdrawn before review
        if not is_third_opinion(repo, other):
            used += 1
    return used


def check(repo: Repository, request: dict[str, Any], day: date) -> Checked:
    """Gather the facts of ``request`` (through ``repo``: pass an unrestricted one to decide a
    case) and evaluate the eligibility rules."""
    coverage_key = first_key(request.get("insurance"), "Coverage")
    condition_key = first_key(request.get("reasonReference"), "Condition")
    coverage_doc = _doc(repo, coverage_key)
    condition_doc = _doc(repo, condition_key)
    coverage = coverage_doc["resource"] if coverage_doc else None
    attested = bool((coverage_doc or {}).get("acl", {}).get("attested", True))
    supporting_keys = [
        k
        for k in (local_key(r) for r in request.get("supportingInfo") or [])
        if k and k.split("/")[0] in RESULT_TYPES
    ]
    supporting = [doc["resource"] for _, doc in repo.fetch_visible(supporting_keys)]
    plan = find_plan(repo, coverage)
    benefits: PlanBenefits | None = None
    if coverage is not None and coverage_key is not None:
        used = opinions_used(repo, request, coverage_key, day, coverage)
        benefits = benefits_of(plan, coverage, used=used)
    facts = EligibilityFacts(
        request=request,
        coverage=coverage,
        coverage_attested=attested,
        condition=condition_doc["resource"] if condition_doc else None,
        supporting=supporting,
        benefits=benefits,
        day=day,
        third_opinion=is_third_opinion(repo, request),
    )
    return Checked(
        evaluate(facts),
        facts,
        coverage_key if coverage else None,
        condition_key if condition_doc else None,
        plan,
    )


# -------------------------------------------------------------------------------- records
def insurer_of(coverage: dict[str, Any] | None, plan: dict[str, Any] | None) -> dict[str, Any]:
    for candidate in [*((coverage or {}).get("payor") or []), (plan or {}).get("ownedBy")]:
        if local_id(candidate, "Organization"):
            return {"reference": candidate["reference"]}
    return {"display": "unknown insurer (no coverage found)"}


def build_request(request_key: str, checked: Checked, created: str) -> dict[str, Any]:
    request = checked.facts.request
    item: dict[str, Any] = {
        "category": BENEFIT_CATEGORY,
        "productOrService": CONSULTATION,
        "detail": [{"reference": request_key}],
    }
    if checked.condition_key:
        item["diagnosis"] = [{"diagnosisReference": {"reference": checked.condition_key}}]
    out: dict[str, Any] = {
        "resourceType": "CoverageEligibilityRequest",
        "status": "active",
        "purpose": PURPOSE,
        "patient": request["subject"],
        "servicedDate": checked.facts.day.isoformat(),
        "created": created,
        "insurer": insurer_of(checked.facts.coverage, checked.plan),
        "item": [item],
    }
    requester = request.get("requester")
    if isinstance(requester, dict) and any(local_id(requester, t) for t in PROVIDER_TYPES):
        out["provider"] = {"reference": requester["reference"]}
    if checked.coverage_key:
        out["insurance"] = [{"focal": True, "coverage": {"reference": checked.coverage_key}}]
    return out


def build_response(question_key: str, question: dict[str, Any], checked: Checked) -> dict[str, Any]:
    result, facts = checked.result, checked.facts
    day = facts.day
    out: dict[str, Any] = {
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": PURPOSE,
        "patient": question["patient"],
        "servicedDate": day.isoformat(),
        "created": question["created"],
        "request": {"reference": question_key},
        "outcome": "complete",
        "disposition": (
            "Eligible for a second medical opinion."
            if result.eligible
            else "Not eligible for a second medical opinion: "
            + " ".join(f"{reason_display(f.code)}: {f.explanation}" for f in result.failures)
        ),
        "insurer": question["insurer"],
    }
    if "provider" in question:
        out["requestor"] = question["provider"]
    coverage, benefits = facts.coverage, facts.benefits
    if coverage is not None and checked.coverage_key:
        item: dict[str, Any] = {
            "category": BENEFIT_CATEGORY,
            "productOrService": CONSULTATION,
            "name": "Second medical opinion",
            "excluded": benefits is None or not benefits.included,
        }
        if benefits is not None and benefits.included:
            benefit: dict[str, Any] = {"type": BENEFIT_TYPE_VISIT}
            if benefits.opinions_per_year is None:
                benefit["allowedString"] = "unlimited"
            else:
                benefit["allowedUnsignedInt"] = benefits.opinions_per_year
            benefit["usedUnsignedInt"] = benefits.opinions_used
            item["benefit"] = [benefit]
            if benefits.turnaround_days is not None:
                item["description"] = f"Report within {benefits.turnaround_days} business days"
        insurance: dict[str, Any] = {
            "coverage": {"reference": checked.coverage_key},
            "inforce": in_force(coverage, day),
        }
        if insurance["inforce"]:
            start, end = policy_year(coverage, day)
            insurance["benefitPeriod"] = {"start": start.isoformat(), "end": end.isoformat()}
        insurance["item"] = [item]
        out["insurance"] = [insurance]
    if result.failures:
        out["error"] = [
            {
                "code": {
                    "coding": [
                        {
                            "system": CS_BUSINESS_STATUS,
                            "code": f.code,
                            "display": reason_display(f.code),
                        }
                    ],
                    "text": f.explanation,
                }
            }
            for f in result.failures
        ]
    return out


def store_records(
    repo: Repository, request_key: str, checked: Checked, created: str
) -> dict[str, Any]:
    """Write the CoverageEligibilityRequest and Response (in ``repo``'s transaction); returns
    the stored response."""
    question = build_request(request_key, checked, created)
    stored_q = repo.create("CoverageEligibilityRequest", question)
    answer = build_response(f"CoverageEligibilityRequest/{stored_q.id}", question, checked)
    stored = repo.create("CoverageEligibilityResponse", answer)
    assert stored.resource is not None
    return stored.resource
