"""``ServiceRequest/[id]/$eligibility`` and ``ServiceRequest/$eligibility`` (our canonical).

Runs the pure rule ``resources.servicerequest.check_eligibility`` on what the caller's
repository returns for the request, its Coverage, its Condition and the InsurancePlan named by
the coverage's ``plan`` class (matched on ``InsurancePlan.identifier``), and answers with a
CoverageEligibilityResponse.

Stored, not only returned — why: the decision is a business record. The insurer tracks
eligibility and utilisation (DOMAIN.md) and sees CoverageEligibility* resources through their
``insurer`` (auth/acl.py ``payors``) without seeing the clinical request; writing through the
repository makes the check audited, versioned and access-controlled like every other write; and
R4 requires ``CoverageEligibilityResponse.request``, so the question is stored too, as a
CoverageEligibilityRequest (item.detail → the ServiceRequest, item.diagnosis → the Condition).
Both are written in one transaction. Hence ``affectsState: true``: POST only.

Utilisation (``benefit.used``) counts the member's *other* second-opinion requests on the same
Coverage that are active/on-hold/completed and authored in the policy year that contains the
date of service. That count deliberately does not apply the caller's access filter: a clinic
cannot see another clinic's requests, yet the benefit is the member's; only the number leaves
the server, never the requests (``Repository.unrestricted``). Every other read goes through the
caller's ``Repository.find_visible``/``read``, with redaction like any search.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from profiles.conformance import CS_BUSINESS_STATUS, lookup
from resources.coverage import PlanBenefits, class_value, in_force, plan_benefits
from resources.domain import SNOMED, local_id
from resources.servicerequest import check_eligibility, is_second_opinion_request
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.operations.links import local_key
from server.repository import Repository
from server.timeutil import fhir_instant, now

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
USED_STATUSES = frozenset({"active", "on-hold", "completed"})
PROVIDER_TYPES = ("Practitioner", "PractitionerRole", "Organization")
REDACTED = "REDACTED"


# ------------------------------------------------------------------------------ pure helpers
def parse_day(value: Any) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise FhirError(
            400,
            "invalid",
            "date must be a full date (YYYY-MM-DD)",
            expression=["Parameters.parameter('date')"],
        )
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise FhirError(400, "invalid", f"invalid date {value!r}") from exc


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


def _ref(key: str) -> dict[str, str]:
    return {"reference": key}


def insurer_of(coverage: dict[str, Any] | None, plan: dict[str, Any] | None) -> dict[str, Any]:
    for candidate in [*((coverage or {}).get("payor") or []), (plan or {}).get("ownedBy")]:
        if local_id(candidate, "Organization"):
            return {"reference": candidate["reference"]}
    return {"display": "unknown insurer (no coverage found)"}


def build_request(
    sr_key: str,
    service_request: dict[str, Any],
    coverage_key: str | None,
    condition_key: str | None,
    insurer: dict[str, Any],
    day: date,
    created: str,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "category": BENEFIT_CATEGORY,
        "productOrService": CONSULTATION,
        "detail": [_ref(sr_key)],
    }
    if condition_key:
        item["diagnosis"] = [{"diagnosisReference": _ref(condition_key)}]
    out: dict[str, Any] = {
        "resourceType": "CoverageEligibilityRequest",
        "status": "active",
        "purpose": PURPOSE,
        "patient": service_request["subject"],
        "servicedDate": day.isoformat(),
        "created": created,
        "insurer": insurer,
        "item": [item],
    }
    requester = service_request.get("requester")
    if isinstance(requester, dict) and any(local_id(requester, t) for t in PROVIDER_TYPES):
        out["provider"] = {"reference": requester["reference"]}
    if coverage_key:
        out["insurance"] = [{"focal": True, "coverage": _ref(coverage_key)}]
    return out


def build_response(
    request_key: str,
    question: dict[str, Any],
    coverage: dict[str, Any] | None,
    coverage_key: str | None,
    benefits: PlanBenefits | None,
    verdict: tuple[bool, str | None],
    day: date,
) -> dict[str, Any]:
    eligible, reason = verdict
    out: dict[str, Any] = {
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": PURPOSE,
        "patient": question["patient"],
        "servicedDate": day.isoformat(),
        "created": question["created"],
        "request": _ref(request_key),
        "outcome": "complete",
        "disposition": (
            "Eligible for a second medical opinion."
            if eligible
            else f"Not eligible for a second medical opinion: {reason_display(reason or '')}."
        ),
        "insurer": question["insurer"],
    }
    if "provider" in question:
        out["requestor"] = question["provider"]
    if coverage is not None and coverage_key:
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
                item["description"] = f"Report within {benefits.turnaround_days} days"
        insurance: dict[str, Any] = {
            "coverage": _ref(coverage_key),
            "inforce": in_force(coverage, day),
        }
        if insurance["inforce"]:
            start, end = policy_year(coverage, day)
            insurance["benefitPeriod"] = {"start": start.isoformat(), "end": end.isoformat()}
        insurance["item"] = [item]
        out["insurance"] = [insurance]
    if not eligible and reason:
        out["error"] = [
            {
                "code": {
                    "coding": [
                        {
                            "system": CS_BUSINESS_STATUS,
                            "code": reason,
                            "display": reason_display(reason),
                        }
                    ]
                }
            }
        ]
    return out


# ---------------------------------------------------------------------------------- reads
def _redacted(resource: dict[str, Any]) -> bool:
    security = (resource.get("meta") or {}).get("security") or []
    return any(isinstance(s, dict) and s.get("code") == REDACTED for s in security)


def _read_optional(repo: Repository, key: str | None) -> dict[str, Any] | None:
    """The linked resource, or None when unknown, deleted or not visible (scope refusals,
    403, propagate: a caller who may not read coverage may not run the check)."""
    if key is None:
        return None
    rtype, rid = key.split("/")
    try:
        resource = repo.read(rtype, rid).resource
    except FhirError as exc:
        if exc.status in (404, 410):
            return None
        raise
    if resource is not None and _redacted(resource):
        raise FhirError(
            403,
            "forbidden",
            f"the eligibility check needs the full {rtype}; you see a redacted view",
        )
    return resource


def _first_key(values: Any, rtype: str, base: str) -> str | None:
    for value in values or []:
        key = local_key(value, base)
        if key and key.startswith(f"{rtype}/"):
            return key
    return None


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
    plan: dict[str, Any]
    for plan in candidates:
        owners = {(plan.get(k) or {}).get("reference") for k in ("ownedBy", "administeredBy")}
        if owners & payors:
            return plan
    return candidates[0] if candidates else None


def opinions_used(
    repo: Repository,
    sr_id: str,
    patient_key: str | None,
    coverage_key: str,
    day: date,
    coverage: dict[str, Any],
) -> int:
    """Other second-opinion requests of the member on this cover in the policy year (see the
    module docstring for why this count is not narrowed by the caller's access filter)."""
    if not patient_key:
        return 0
    start, end = policy_year(coverage, day)
    cursor = repo.unrestricted().find_visible(
        "ServiceRequest",
        {"idx.subject": patient_key, "_id": {"$ne": sr_id}},
        fields=["resource"],
    )
    used = 0
    for doc in cursor:
        sr = doc.get("resource") or {}
        if sr.get("status") not in USED_STATUSES or not is_second_opinion_request(sr):
            continue
        if coverage_key not in {local_key(i) for i in sr.get("insurance") or []}:
            continue
        authored = sr.get("authoredOn")
        try:
            when = date.fromisoformat(authored[:10]) if isinstance(authored, str) else None
        except ValueError:
            when = None
        if when is not None and start <= when <= end:
            used += 1
    return used


# -------------------------------------------------------------------------------- handler
def _target(call: Invocation) -> str:
    given = call.params.first("request")
    if call.level == "instance":
        if given is not None:
            raise FhirError(
                400,
                "invalid",
                "at the instance level the request is in the URL; drop the 'request' parameter",
                expression=["Parameters.parameter('request')"],
            )
        assert call.rid is not None
        return call.rid
    key = local_key(given, call.base)
    if key is None or not key.startswith("ServiceRequest/"):
        raise FhirError(
            400,
            "required",
            "give the 'request' parameter: a Reference to a ServiceRequest on this server",
            expression=["Parameters.parameter('request')"],
        )
    return key.split("/")[1]


def eligibility(call: Invocation) -> dict[str, Any]:
    repo, base = call.repo, call.base
    sr_id = _target(call)
    day_param = call.params.first("date")
    day = parse_day(day_param) if day_param is not None else datetime.now(UTC).date()
    service_request = _read_optional(repo, f"ServiceRequest/{sr_id}")
    if service_request is None:
        repo.read("ServiceRequest", sr_id)  # re-raise the 404/410 as such
        raise AssertionError("unreachable")
    if not is_second_opinion_request(service_request):
        raise FhirError(
            422,
            "business-rule",
            f"ServiceRequest/{sr_id} is not a second-opinion request (reasonCode v2-0336 S)",
        )
    if local_id(service_request.get("subject"), "Patient") is None:
        raise FhirError(422, "business-rule", f"ServiceRequest/{sr_id} has no Patient subject")
    coverage_key = _first_key(service_request.get("insurance"), "Coverage", base)
    condition_key = _first_key(service_request.get("reasonReference"), "Condition", base)
    coverage = _read_optional(repo, coverage_key)
    condition = _read_optional(repo, condition_key)
    if coverage is None:
        coverage_key = None
    if condition is None:
        condition_key = None
    plan = find_plan(repo, coverage)
    benefits: PlanBenefits | None = None
    if coverage is not None and coverage_key is not None:
        used = opinions_used(
            repo,
            sr_id,
            local_key(service_request.get("subject")),
            coverage_key,
            day,
            coverage,
        )
        benefits = plan_benefits(plan, used=used)
    verdict = check_eligibility(service_request, coverage, condition, benefits, today=day)

    sr_key = f"ServiceRequest/{sr_id}"
    created = fhir_instant(now())
    insurer = insurer_of(coverage, plan)
    question = build_request(
        sr_key, service_request, coverage_key, condition_key, insurer, day, created
    )
    request_id = str(uuid.uuid4())
    answer = build_response(
        f"CoverageEligibilityRequest/{request_id}",
        question,
        coverage,
        coverage_key,
        benefits,
        verdict,
        day,
    )

    def write(tx: Repository) -> dict[str, Any]:
        tx.create("CoverageEligibilityRequest", question, rid=request_id)
        stored = tx.create("CoverageEligibilityResponse", answer)
        assert stored.resource is not None
        return stored.resource

    return repo.transaction(write)


OPERATION = Operation(load_definition("eligibility.json"), eligibility)
