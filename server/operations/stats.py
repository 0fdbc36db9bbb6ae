"""``GET|POST /$second-opinion-stats``: the service's figures for a period, as a MeasureReport.

Insurers track coverage, eligibility, turnaround and utilisation without clinical detail
(DOMAIN.md); coordinators watch the whole network. The figures are computed by the pure
``resources.stats`` from one ``CaseFacts`` per case; this module gathers those facts and writes
the report (Measure/second-opinion-stats, shipped in profiles/definitions).

Why the facts are read unrestricted (``Repository.unrestricted``) and then scoped here: the
figures need what no reporting party may read case by case (an insurer sees no Condition, no
report conclusion and no Provenance; a clinic no plan), and only counts leave the server. The
scope is applied on the case, before anything is counted:

* insurer: the cases whose Coverage (the request's ``insurance``) it pays (``Coverage.payor``);
  the report is its own (``reporter``), and condition and outcome cells below
  ``resources.stats.SUPPRESS_BELOW`` are masked (docs/stats.md says why);
* clinic: the cases it submitted (the request's stored ``acl.orgs``, what the policy uses);
* coordinator, trusted integration, administrator: the network; ``insurer=`` narrows it;
* specialist, and patient-context apps: 403 (reporting on other experts' cases is not theirs).

Nothing identifying leaves: no patient, member, case or expert ids, no free text; strata are
workflow codes, guide codes (covered condition, outcome) and the insurer's plan codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from profiles import definitions_dir
from profiles.conformance import (
    CS_BUSINESS_STATUS,
    CS_CONDITIONS,
    CS_OUTCOME,
    CS_STATS,
    CS_TRANSITION,
    MEASURE_STATS,
)
from resources.coverage import class_value, in_force, plan_benefits
from resources.domain import codes_in, local_id
from resources.servicerequest import is_second_opinion_request
from resources.stats import (
    Allowance,
    CaseFacts,
    Figures,
    compute,
    parse_period,
    period_bounds,
    suppress,
)
from resources.task import ACTIONS, business_status_code, is_second_opinion_task
from server.cases import coverage_check
from server.cases.workflow import ACTIVITY, condition_match
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.operations.links import local_key
from server.repository import Repository
from server.search import params as search_params
from server.search.query import and_merge, clause_filter
from server.timeutil import fhir_instant, now, parse_fhir_instant

MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
TASK_STATUS = "http://hl7.org/fhir/task-status"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
UCUM = "http://unitsofmeasure.org"
NETWORK = {"display": "Consilium second-opinion network"}
BATCH = 500  # keys per $in query
FINAL = frozenset({"final", "amended", "corrected"})
# The Task.status each recorded transition leaves the case in (None: unchanged), from the
# engine's own tables, so the timeline cannot disagree with the moves it records.
STATUS_AFTER: dict[str, str | None] = {
    "submitted": "requested",
    **{activity: ACTIONS[action].to_status for action, activity in ACTIVITY.items()},
}


@dataclass(frozen=True)
class Scope:
    """Whose cases are counted: the network, one insurer's members, or one clinic's cases."""

    insurer: str | None = None  # Organization id paying the case's Coverage
    clinic: str | None = None  # Organization id that submitted the case
    reporter: dict[str, Any] | None = None
    masked: bool = False  # small-number suppression of condition/outcome cells


# ---------------------------------------------------------------------------------- input
def _bad(message: str, name: str) -> FhirError:
    return FhirError(400, "invalid", message, expression=[f"Parameters.parameter('{name}')"])


def period_of(call: Invocation) -> tuple[date, date]:
    text, start, end = (call.params.first(n) for n in ("period", "periodStart", "periodEnd"))
    try:
        if text is not None:
            if start is not None or end is not None:
                raise _bad(
                    "give either 'period' or 'periodStart' and 'periodEnd', not both", "period"
                )
            return parse_period(str(text))
        if start is None or end is None:
            raise FhirError(
                400,
                "required",
                "give the reporting period: 'period' (e.g. 2026-11 or 2026-11-01/2026-11-30), "
                "or both 'periodStart' and 'periodEnd'",
                expression=["Parameters.parameter('period')"],
            )
        return period_bounds(str(start), str(end))
    except ValueError as exc:
        raise _bad(f"bad reporting period: {exc}", "period") from exc


def scope_of(call: Invocation) -> Scope:
    """Who is asking decides whose cases count (module docstring)."""
    repo = call.repo
    wanted: str | None = None
    given = call.params.first("insurer")
    if given is not None:
        key = local_key(given, call.base)
        if key is None or not key.startswith("Organization/"):
            raise _bad("'insurer' must reference an Organization on this server", "insurer")
        wanted = key.split("/", 1)[1]
    p = repo.principal
    if p is None or p.admin:
        return Scope(insurer=wanted, reporter=NETWORK)
    if p.role == "specialist":
        raise FhirError(
            403, "forbidden", "service statistics are for insurers, clinics and coordinators"
        )
    if p.permissions and all(q.context == "patient" for q in p.permissions):
        raise FhirError(
            403, "forbidden", "service statistics are not available in a patient context"
        )
    repo.authorize("search-type", "Task")  # the scopes must reach the cases counted
    org_ref = {"reference": f"Organization/{p.organization}"} if p.organization else NETWORK
    if p.role == "insurer":
        if not p.organization:
            raise FhirError(403, "forbidden", "an insurer client must be bound to its organization")
        if wanted is not None and wanted != p.organization:
            raise FhirError(403, "forbidden", "an insurer sees its own members' figures only")
        return Scope(insurer=p.organization, reporter=org_ref, masked=True)
    if p.role == "clinic":
        if not p.organization:
            raise FhirError(403, "forbidden", "a clinic client must be bound to its organization")
        return Scope(insurer=wanted, clinic=p.organization, reporter=org_ref)
    return Scope(insurer=wanted, reporter=org_ref)  # coordinator, trusted integration


# -------------------------------------------------------------------------------- gathering
def _chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(keys), BATCH):
        yield list(keys[i : i + BATCH])


def _tasks(repo: Repository, first: date, last: date) -> list[dict[str, Any]]:
    """Case Tasks authored in the period (the search index narrows, the day check decides)."""
    req = search_params.parse(
        "Task",
        [("authored-on", f"ge{first.isoformat()}"), ("authored-on", f"le{last.isoformat()}")],
        strict=True,
    )
    flt = and_merge([clause_filter(c) for c in req.clauses])
    out = []
    for doc in repo.find_visible("Task", flt, sort=[("_id", 1)]):
        task = doc["resource"]
        submitted = _instant(task.get("authoredOn"))
        if task.get("partOf") or not is_second_opinion_task(task) or submitted is None:
            continue
        if first <= submitted.astimezone(UTC).date() <= last:
            out.append(task)
    return out


def _docs(repo: Repository, rtype: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(ids))):
        for doc in repo.find_visible(rtype, {"_id": {"$in": chunk}}):
            found[str(doc["_id"])] = doc
    return found


def _pointing(repo: Repository, rtype: str, code: str, keys: Sequence[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(keys))):
        found += [d["resource"] for d in repo.find_visible(rtype, {f"idx.{code}": {"$in": chunk}})]
    return found


def _instant(value: Any) -> datetime | None:
    return parse_fhir_instant(value) if isinstance(value, str) else None


def _due(task: dict[str, Any]) -> datetime | None:
    """``restriction.period.end``: a date means the end of that day (UTC)."""
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    if not isinstance(end, str):
        return None
    if "T" in end:
        return _instant(end)
    day = _instant(end[:10])
    return day + timedelta(days=1) - timedelta(milliseconds=1) if day else None


def _payors(coverage: dict[str, Any] | None) -> set[str]:
    return {
        oid
        for p in (coverage or {}).get("payor") or []
        if (oid := local_id(p, "Organization")) is not None
    }


def _timeline(records: list[dict[str, Any]]) -> tuple[tuple[datetime, str], ...]:
    steps: list[tuple[datetime, str]] = []
    status = "requested"
    for record in sorted(records, key=lambda r: str(r.get("recorded"))):
        when = _instant(record.get("recorded"))
        if when is None:
            continue
        for activity in codes_in(record.get("activity"), CS_TRANSITION):
            status = STATUS_AFTER.get(activity) or status
        steps.append((when, status))
    return tuple(steps)


def _completed(task: dict[str, Any], records: list[dict[str, Any]]) -> datetime | None:
    if task.get("status") != "completed":
        return None
    finals = [
        when
        for r in records
        if "report-final" in codes_in(r.get("activity"), CS_TRANSITION)
        and (when := _instant(r.get("recorded"))) is not None
    ]
    return min(finals) if finals else _instant((task.get("executionPeriod") or {}).get("end"))


class _Plans:
    """The plan benefit of each cover, looked up once per plan code and payor."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.seen: dict[tuple[str, tuple[str, ...]], int | None] = {}

    def per_year(self, coverage: dict[str, Any]) -> int | None:
        key = (class_value(coverage, "plan") or "", tuple(sorted(_payors(coverage))))
        if key not in self.seen:
            benefits = plan_benefits(coverage_check.find_plan(self.repo, coverage))
            self.seen[key] = benefits.opinions_per_year if benefits.included else 0
        return self.seen[key]


def gather(repo: Repository, first: date, last: date, scope: Scope) -> list[CaseFacts]:
    """One ``CaseFacts`` per case of the period within ``scope`` (``repo``: unrestricted)."""
    tasks = _tasks(repo, first, last)
    requests = _docs(
        repo,
        "ServiceRequest",
        [r for t in tasks if (r := local_id(t.get("focus"), "ServiceRequest"))],
    )
    coverage_ids = {
        sr_id: cid
        for sr_id, doc in requests.items()
        if (key := coverage_check.first_key(doc["resource"].get("insurance"), "Coverage"))
        and (cid := key.split("/", 1)[1])
    }
    coverages = _docs(repo, "Coverage", list(coverage_ids.values()))
    cases: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]] = []
    for task in tasks:
        sr_id = local_id(task.get("focus"), "ServiceRequest")
        doc = requests.get(sr_id or "")
        if doc is None or not is_second_opinion_request(doc["resource"]):
            continue
        cov_doc = coverages.get(coverage_ids.get(sr_id or "", ""))
        coverage = cov_doc["resource"] if cov_doc else None
        if scope.insurer is not None and scope.insurer not in _payors(coverage):
            continue
        if scope.clinic is not None and scope.clinic not in (doc.get("acl") or {}).get("orgs", []):
            continue
        cases.append((task, doc["resource"], coverage))
    provenance: dict[str, list[dict[str, Any]]] = {}
    for record in _pointing(repo, "Provenance", "target", [f"Task/{t['id']}" for t, _, _ in cases]):
        for target in record.get("target") or []:
            tid = local_id(target, "Task")
            if tid:
                provenance.setdefault(tid, []).append(record)
    outcomes: dict[str, set[str]] = {}
    for report in _pointing(
        repo, "DiagnosticReport", "based-on", [f"ServiceRequest/{r['id']}" for _, r, _ in cases]
    ):
        if report.get("status") in FINAL:
            for ref in report.get("basedOn") or []:
                rid = local_id(ref, "ServiceRequest")
                if rid:
                    outcomes.setdefault(rid, set()).update(
                        codes_in(report.get("conclusionCode"), CS_OUTCOME)
                    )
    plans = _Plans(repo)
    return [
        _facts(repo, task, request, coverage, provenance.get(str(task["id"]), []),
               frozenset(outcomes.get(str(request["id"]), set())), plans)
        for task, request, coverage in cases
    ]  # fmt: skip


def _facts(
    repo: Repository,
    task: dict[str, Any],
    request: dict[str, Any],
    coverage: dict[str, Any] | None,
    records: list[dict[str, Any]],
    outcomes: frozenset[str],
    plans: _Plans,
) -> CaseFacts:
    submitted = _instant(task.get("authoredOn"))
    assert submitted is not None  # _tasks kept only Tasks with one
    third = coverage_check.is_third_opinion(repo, request)
    status = str(task.get("status"))
    uses = (
        not third
        and status in coverage_check.USED_TASK_STATUSES
        and request.get("status") in coverage_check.USED_REQUEST_STATUSES
    )
    allowance: Allowance | None = None
    if coverage is not None:
        day = coverage_check.service_day(request, submitted.astimezone(UTC).date())
        year_start, _ = coverage_check.policy_year(coverage, day)
        allowance = Allowance(
            f"{coverage.get('id')}|{year_start.isoformat()}",
            class_value(coverage, "plan") or "(no plan)",
            plans.per_year(coverage) if in_force(coverage, day) else 0,
        )
    found = condition_match(repo, request)
    return CaseFacts(
        status=status,
        submitted=submitted,
        business_status=business_status_code(task),
        completed=_completed(task, records),
        due=_due(task),
        timeline=_timeline(records),
        condition=found.condition if found else None,
        outcomes=outcomes,
        third_opinion=third,
        uses_opinion=uses,
        allowance=allowance,
    )


# ---------------------------------------------------------------------------------- report
@cache
def _stats_display() -> dict[str, str]:
    path = definitions_dir() / "CodeSystem-second-opinion-stats.json"
    cs = json.loads(path.read_text(encoding="utf-8"))
    return {c["code"]: c["display"] for c in cs["concept"]}


def _cc(system: str, code: str) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if system == CS_STATS:
        coding["display"] = _stats_display()[code]
    return {"coding": [coding]}


def _population(code: str, count: int | None, system: str = MEASURE_POPULATION) -> dict[str, Any]:
    out: dict[str, Any] = {"code": _cc(system, code)}
    if count is None:
        out["extension"] = [{"url": DATA_ABSENT, "valueCode": "masked"}]
    else:
        out["count"] = count
    return out


def _stratifier(
    code: str, counts: dict[str, int], system: str | None, masked: bool
) -> dict[str, Any]:
    cells: dict[str, int | None] = suppress(counts) if masked else dict(counts)
    strata = [
        {
            "value": _cc(system, value) if system else {"text": value},
            "population": [_population("initial-population", n)],
        }
        for value, n in cells.items()
    ]
    out: dict[str, Any] = {"code": [_cc(CS_STATS, code)]}
    if strata:
        out["stratum"] = strata
    return out


def _rate(numerator: int, denominator: int) -> dict[str, Any] | None:
    return (
        {"value": round(numerator / denominator, 4), "unit": "1", "system": UCUM, "code": "1"}
        if denominator
        else None
    )


def _days(value: float | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"value": round(value, 2), "unit": "business days", "system": UCUM, "code": "d"}


def _group(code: str, populations: list[dict[str, Any]], score: dict[str, Any] | None = None,
           stratifiers: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"code": _cc(CS_STATS, code), "population": populations}
    if score is not None:
        out["measureScore"] = score
    if stratifiers:
        out["stratifier"] = stratifiers
    return out


def measure_report(
    figures: Figures, first: date, last: date, scope: Scope, when: datetime
) -> dict[str, Any]:
    f = figures
    plan_strata = [
        {
            "value": {"text": plan},
            "population": [
                _population("numerator", use.used),
                _population("denominator", use.allowed),
                _population("unlimited-allowance", use.unlimited, CS_STATS),
            ],
        }
        for plan, use in f.by_plan.items()
    ]
    plan_stratifier: dict[str, Any] = {"code": [_cc(CS_STATS, "plan")]}
    if plan_strata:
        plan_stratifier["stratum"] = plan_strata
    measured = len(f.turnarounds)
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": MEASURE_STATS,
        "date": fhir_instant(when),
        "reporter": scope.reporter or NETWORK,
        "period": {"start": first.isoformat(), "end": last.isoformat()},
        "group": [
            _group(
                "cases",
                [_population("initial-population", f.cases)],
                stratifiers=[
                    _stratifier("task-status", f.by_status, TASK_STATUS, False),
                    _stratifier("business-status", f.by_business_status, CS_BUSINESS_STATUS, False),
                    _stratifier("condition", f.by_condition, CS_CONDITIONS, scope.masked),
                    _stratifier("outcome", f.by_outcome, CS_OUTCOME, scope.masked),
                ],
            ),
            _group(
                "opinions",
                [
                    _population("numerator", f.opinions_used),
                    _population("denominator", f.opinions_allowed),
                    _population("unlimited-allowance", f.unlimited_allowances, CS_STATS),
                ],
                _rate(f.opinions_used, f.opinions_allowed) if not f.unlimited_allowances else None,
                [plan_stratifier],
            ),
            _group(
                "turnaround-median",
                [_population("measure-population", measured)],
                _days(f.median_days),
                [_stratifier("turnaround-band", f.by_turnaround_band, CS_STATS, False)],
            ),
            _group("turnaround-p90", [_population("measure-population", measured)], _days(f.p90_days)),
            _group(
                "sla-breaches",
                [_population("numerator", f.breaches), _population("denominator", f.with_due)],
                _rate(f.breaches, f.with_due),
                [_stratifier("breach-kind", f.breaches_by_kind, CS_STATS, False)],
            ),
            _group(
                "third-opinions",
                [_population("numerator", f.third_opinions), _population("denominator", f.cases)],
                _rate(f.third_opinions, f.cases),
            ),
        ],
    }  # fmt: skip


def second_opinion_stats(call: Invocation) -> dict[str, Any]:
    first, last = period_of(call)
    scope = scope_of(call)
    when = now()
    facts = gather(call.repo.unrestricted(), first, last, scope)
    return measure_report(compute(facts, when), first, last, scope, when)


OPERATION = Operation(load_definition("second-opinion-stats.json"), second_opinion_stats)
