"""Eligibility for a second opinion: every rule a request fails, each with a way to fix it.

Pure: the engine (server/cases/) reads the request, its Coverage, Condition, supporting results
and plan benefits, and hands them over as ``EligibilityFacts``; ``evaluate`` answers with every
failing rule, so a clinic can fix the whole file at once instead of learning one problem per
round trip. Rule codes are the ``case-rejection-reason`` codes; the engine writes one
``Task.statusReason`` per failure.

The rules, in the member's journey order (DOMAIN.md, "Eligibility"):

1. ``member-not-found``: no Coverage, or it covers someone else (beneficiary ≠ the request's
   Patient subject).
2. ``coverage-unverified``: the Coverage was not written by the insurer's own client or a
   trusted feed (``coverage_attested``); a clinic cannot vouch for a member's cover.
3. ``coverage-not-in-force``: not ``active``, its period does not cover the date of service, or
   it names no payor.
4. ``benefit-not-included``: the plan is unknown or has no second-opinion benefit.
5. ``benefit-exhausted``: ``opinions_used >= opinions_per_year`` (never for a third opinion,
   which replaces a first opinion that ended in an alternative diagnosis or treatment: the plan
   pays for the tie-break, DOMAIN.md).
6. ``condition-not-covered``: no coding of ``Condition.code`` nor of the request's
   ``reasonCode`` (the v2-0336 ``S`` "second opinion" coding aside) is a covered serious
   condition per ``profiles.terminology.covered_condition``.
7. ``investigations-incomplete``: no DiagnosticReport or Observation among the supporting
   resources is a result (status final, amended, or amended's kinds corrected/appended). A
   DocumentReference alone is a letter or a scan, not a result the expert can rely on.
8. ``diagnosis-not-firm``: no Condition, or its verificationStatus is not ``confirmed`` —
   unless the treating consultant flagged the condition as unexplained after all relevant
   investigations (extension ``unexplained-after-investigations`` = true on the request or
   the Condition), which the plans accept in place of a firm diagnosis.

Rules skipped because an earlier failure makes them meaningless (each says why):

* After ``member-not-found``, rules 2 to 5 are skipped: they are facts about *the member's* cover,
  and there is none (or it is someone else's, whose status and benefits are none of this
  request's business).
* After ``coverage-unverified``, rules 3 to 5 are skipped: status, period, payor and the plan they
  lead to come from a record the insurer has not confirmed, so a verdict on them would present
  the submitter's own claims as the insurer's facts. The fix is the same either way (have the
  insurer confirm the cover) and the rules run again on the attested record.
* After ``benefit-not-included``, ``benefit-exhausted`` is skipped: there is no benefit to use up.
* ``coverage-not-in-force`` does not skip the benefit rules: a lapsed cover and a plan without
  the benefit are independent problems with different fixes, and both are worth knowing.
* Rules 6 to 8 concern the clinical file and always run.

Each rule yields at most one ``Failure`` (its explanation names every sub-cause, e.g. both a
cancelled status and a missing payor), so failure codes are unique and map one-to-one onto
``Task.statusReason``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from profiles.terminology import CoveredMatch, covered_condition
from resources.calendar import fhir_day, period_covers
from resources.coverage import PlanBenefits
from resources.domain import V2_0336, codings, local_id

UNEXPLAINED_URL = (
    "https://consilium.health/fhir/StructureDefinition/unexplained-after-investigations"
)
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
RESULT_TYPES = frozenset({"DiagnosticReport", "Observation"})
# R4 report/observation statuses that are a result: final, and amended with its kinds.
RESULT_STATUSES = frozenset({"final", "amended", "corrected", "appended"})

# Rule codes (case-rejection-reason), in the order they are evaluated and reported.
MEMBER_NOT_FOUND = "member-not-found"
COVERAGE_UNVERIFIED = "coverage-unverified"
COVERAGE_NOT_IN_FORCE = "coverage-not-in-force"
BENEFIT_NOT_INCLUDED = "benefit-not-included"
BENEFIT_EXHAUSTED = "benefit-exhausted"
CONDITION_NOT_COVERED = "condition-not-covered"
INVESTIGATIONS_INCOMPLETE = "investigations-incomplete"
DIAGNOSIS_NOT_FIRM = "diagnosis-not-firm"
RULE_ORDER: tuple[str, ...] = (
    MEMBER_NOT_FOUND,
    COVERAGE_UNVERIFIED,
    COVERAGE_NOT_IN_FORCE,
    BENEFIT_NOT_INCLUDED,
    BENEFIT_EXHAUSTED,
    CONDITION_NOT_COVERED,
    INVESTIGATIONS_INCOMPLETE,
    DIAGNOSIS_NOT_FIRM,
)


@dataclass(frozen=True)
class Failure:
    """One failed rule: its ``case-rejection-reason`` code, what to do, and where."""

    code: str
    explanation: str  # plain language, for the member/clinic: what is wrong and how to fix it
    expression: str  # FHIRPath of the offending element, e.g. "ServiceRequest.insurance"


@dataclass(frozen=True)
class EligibilityFacts:
    """Everything the rules read; the engine resolves the references before calling."""

    request: dict[str, Any]  # the ServiceRequest
    coverage: dict[str, Any] | None  # the Coverage it names (None: not found)
    coverage_attested: bool  # written by the insurer's own client or a trusted feed
    condition: dict[str, Any] | None  # the Condition in reasonReference
    supporting: list[dict[str, Any]]  # the resolved supportingInfo resources
    benefits: PlanBenefits | None  # opinions_used filled by the caller
    day: date  # the date of service (request authoredOn date or today)
    third_opinion: bool = False  # replaces a first opinion ending in an alternative


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    failures: tuple[Failure, ...]
    condition: CoveredMatch | None  # the first covered match: the engine matches an expert on it

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.failures)


def service_day(request: dict[str, Any], today: date) -> date:
    """The date of service: the day the request was authored, else ``today``.

    Why authoredOn: a request written while the cover was in force stays judged on that day
    when it is checked (or re-checked) later.
    """
    return fhir_day(request.get("authoredOn"), end=False) or today


def _member(facts: EligibilityFacts) -> Failure | None:
    coverage = facts.coverage
    if coverage is None:
        return Failure(
            MEMBER_NOT_FOUND,
            "The request names no insurance cover we can find. Add the member's Coverage "
            "(group policy and certificate number) to ServiceRequest.insurance.",
            "ServiceRequest.insurance",
        )
    patient = local_id(facts.request.get("subject"), "Patient")
    if patient is None:
        return Failure(
            MEMBER_NOT_FOUND,
            "The request does not say which patient it is for. Set ServiceRequest.subject to "
            "the member's Patient record.",
            "ServiceRequest.subject",
        )
    if local_id(coverage.get("beneficiary"), "Patient") != patient:
        return Failure(
            MEMBER_NOT_FOUND,
            "The insurance cover named on the request belongs to someone else. Name the cover "
            "of the patient the request is for.",
            "Coverage.beneficiary",
        )
    return None


def _attested(facts: EligibilityFacts) -> Failure | None:
    if facts.coverage_attested:
        return None
    return Failure(
        COVERAGE_UNVERIFIED,
        "The insurer has not confirmed this insurance cover: it was recorded by someone other "
        "than the insurer. Ask the insurer to confirm the member's cover, then submit again.",
        "ServiceRequest.insurance",
    )


def _in_force(coverage: dict[str, Any], day: date) -> Failure | None:
    problems: list[tuple[str, str]] = []
    status = coverage.get("status")
    if status != "active":
        problems.append((f"the cover is {status or 'of unknown status'}", "Coverage.status"))
    period = coverage.get("period")
    if not period_covers(period, day):
        start = fhir_day((period or {}).get("start"), end=False)
        end = fhir_day((period or {}).get("end"), end=True)
        if start is not None and day < start:
            what = f"the cover starts on {start.isoformat()}"
        elif end is not None and end < day:
            what = f"the cover ended on {end.isoformat()}"
        else:
            what = "the cover period cannot be read"
        problems.append((f"{what} (date of service {day.isoformat()})", "Coverage.period"))
    if not coverage.get("payor"):
        problems.append(("the cover names no insurer (payor)", "Coverage.payor"))
    if not problems:
        return None
    return Failure(
        COVERAGE_NOT_IN_FORCE,
        "The insurance cover is not in force on the date of service: "
        + "; ".join(p for p, _ in problems)
        + ". Check the member's cover with the insurer.",
        problems[0][1],
    )


def _benefits(facts: EligibilityFacts) -> Iterator[Failure]:
    benefits = facts.benefits
    if benefits is None or not benefits.included:
        yield Failure(
            BENEFIT_NOT_INCLUDED,
            "The member's plan does not include second opinions"
            + (" (we could not find the plan)" if benefits is None else "")
            + ". Check the plan named on the cover with the insurer.",
            "Coverage.class",
        )
        return
    per_year = benefits.opinions_per_year
    if not facts.third_opinion and per_year is not None and benefits.opinions_used >= per_year:
        yield Failure(
            BENEFIT_EXHAUSTED,
            f"The member has used all {per_year} second opinion(s) the plan pays for this "
            "policy year. A new request can be made in the next policy year, or the insurer "
            "may agree to an exception.",
            "ServiceRequest.insurance",
        )


def _coded(facts: EligibilityFacts) -> Iterator[dict[str, Any]]:
    """The diagnosis codings, Condition first (the clinic's coded diagnosis), then reasons."""
    if facts.condition is not None:
        yield from codings(facts.condition.get("code"))
    for c in codings(facts.request.get("reasonCode", [])):
        if not (c.get("system") == V2_0336 and c.get("code") == "S"):
            yield c


def covered_match(facts: EligibilityFacts) -> CoveredMatch | None:
    """The first coding (Condition.code, then reasonCode) that is a covered condition."""
    for c in _coded(facts):
        system, code = c.get("system"), c.get("code")
        if isinstance(system, str) and isinstance(code, str):
            match = covered_condition(system, code)
            if match is not None:
                return match
    return None


def _condition_covered(facts: EligibilityFacts, match: CoveredMatch | None) -> Failure | None:
    if match is not None:
        return None
    return Failure(
        CONDITION_NOT_COVERED,
        "The diagnosis is not one of the serious conditions the plan covers, or its code is "
        "not one we recognise. Code the diagnosis with the insurer's condition code, ICD-10 or "
        "SNOMED CT.",
        "Condition.code" if facts.condition is not None else "ServiceRequest.reasonCode",
    )


def _is_result(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") in RESULT_TYPES and resource.get("status") in (
        RESULT_STATUSES
    )


def _investigations(facts: EligibilityFacts) -> Failure | None:
    if any(_is_result(r) for r in facts.supporting if isinstance(r, dict)):
        return None
    return Failure(
        INVESTIGATIONS_INCOMPLETE,
        "The request has no final investigation results. Attach the final reports or results "
        "(DiagnosticReport or Observation) of the investigations to "
        "ServiceRequest.supportingInfo; letters and scanned documents alone are not enough.",
        "ServiceRequest.supportingInfo",
    )


def unexplained(resource: dict[str, Any] | None) -> bool:
    """Does the resource carry ``unexplained-after-investigations`` = true?"""
    return any(
        isinstance(e, dict) and e.get("url") == UNEXPLAINED_URL and e.get("valueBoolean") is True
        for e in (resource or {}).get("extension", [])
    )


def _firm(facts: EligibilityFacts) -> Failure | None:
    if unexplained(facts.request) or unexplained(facts.condition):
        return None
    hint = (
        " If the condition cannot be explained after all relevant tests, say so with the "
        "unexplained-after-investigations extension."
    )
    if facts.condition is None:
        return Failure(
            DIAGNOSIS_NOT_FIRM,
            "The request names no diagnosis. Reference the patient's confirmed Condition in "
            "ServiceRequest.reasonReference." + hint,
            "ServiceRequest.reasonReference",
        )
    status = {
        c.get("code")
        for c in codings(facts.condition.get("verificationStatus"))
        if c.get("system") == CONDITION_VERIFICATION
    }
    if "confirmed" in status:
        return None
    return Failure(
        DIAGNOSIS_NOT_FIRM,
        "The diagnosis is not confirmed"
        + (f" (it is {', '.join(sorted(str(s) for s in status))})" if status else "")
        + ". A second opinion reviews a firm diagnosis: set the Condition's verificationStatus "
        "to confirmed once the investigations support it." + hint,
        "Condition.verificationStatus",
    )


def evaluate(facts: EligibilityFacts) -> Eligibility:
    """Every failing rule, in ``RULE_ORDER``; eligible when there is none (module docstring)."""
    failures: list[Failure] = []
    member = _member(facts)
    if member is not None:
        failures.append(member)
    elif (attested := _attested(facts)) is not None:
        failures.append(attested)
    else:
        assert facts.coverage is not None
        in_force = _in_force(facts.coverage, facts.day)
        if in_force is not None:
            failures.append(in_force)
        failures.extend(_benefits(facts))
    match = covered_match(facts)
    for failure in (_condition_covered(facts, match), _investigations(facts), _firm(facts)):
        if failure is not None:
            failures.append(failure)
    return Eligibility(not failures, tuple(failures), match)
