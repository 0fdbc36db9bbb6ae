"""Moving a case: one function per thing that happens to it, each checked against the pure
action table (``resources.task.check_action``) and recorded (``server.cases.store.save``).

Every function takes a repository on the server's own account bound to the caller's
transaction (``Repository.unrestricted()``), and the ``Actor`` who asked; the actor's *party on
this case* decides (the requesting clinic, the assigned expert, a coordinator, ...). A refused
action is a 403 when the party may never do it and a 422 naming the rule when the case is in the
wrong state for it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from profiles.terminology import CoveredMatch, covered_condition
from resources.coordination import is_coordination_task
from resources.coverage import due_date
from resources.domain import V2_0336, codings, local_id
from resources.servicerequest import new_case_task
from resources.task import ACTIONS, check_action
from server.cases import coverage_check, matching
from server.cases.actor import SERVER, Actor
from server.cases.store import OPEN, CaseFile, coding, load_case, open_task, save, transitions
from server.errors import FhirError, Issue
from server.repository import Repository
from server.timeutil import fhir_instant, now, parse_fhir_instant

ACTIVITY = {
    "accept": "eligible",
    "reject": "rejected",
    "assign": "expert-assigned",
    "await-expert": "awaiting-expert",
    "start-review": "review-started",
    "ask": "question-asked",
    "answer": "question-answered",
    "interim-report": "interim-report",
    "complete": "report-final",
    "amend": "report-amended",
    "cancel": "cancelled",
    "decline": "declined",
    "reassign": "reassigned",
    "add-expert": "board-member-added",
}
SERVER_ACTOR = Actor(None, frozenset())


def _party(case: CaseFile, actor: Actor | None) -> str:
    if actor is None:
        return SERVER
    owners = {case.owner} if case.owner else set()
    return actor.party(case.orgs(), owners)


def permit(case: CaseFile, action: str, actor: Actor | None) -> None:
    """Raise the 403/422 the action table gives for this actor on this case, if any."""
    refused = check_action(action, case.status, _party(case, actor))
    if refused is not None:
        status, rule, explanation = refused
        code = "forbidden" if status == 403 else "business-rule"
        raise FhirError(
            status,
            code,
            f"{explanation} (rule {rule}; Task/{case.task_id} is {case.status})",
            issues=[Issue(code, f"{rule}: {explanation}", expression=["Task.status"])],
        )


def perform(
    repo: Repository,
    case: CaseFile,
    action: str,
    actor: Actor | None,
    *,
    reason: str | None = None,
    when: datetime | None = None,
    edit: Any = None,
) -> CaseFile:
    """Check ``action``, apply its status/businessStatus (and ``edit(task)``), save + record."""
    permit(case, action, actor)
    spec = ACTIONS[action]
    task = case.task
    if spec.to_status is not None:
        task["status"] = spec.to_status
    if spec.business_status is not None:
        task["businessStatus"] = {"coding": [coding(spec.business_status)]}
    before = case.owner
    if edit is not None:
        edit(task)
    removed = f"PractitionerRole/{before}" if before and before != case.owner else None
    return save(
        repo,
        case,
        ACTIVITY[action],
        actor or SERVER_ACTOR,
        reason=reason,
        when=when,
        removed=removed,
    )


# ---------------------------------------------------------------------------------- facts
def condition_match(repo: Repository, request: dict[str, Any]) -> CoveredMatch | None:
    """The covered condition of the request (its Condition's code, then its reason codes)."""
    concepts: list[Any] = []
    key = coverage_check.first_key(request.get("reasonReference"), "Condition")
    if key:
        for _, doc in repo.fetch_visible([key]):
            concepts.append(doc["resource"].get("code"))
    concepts += [
        cc
        for cc in request.get("reasonCode") or []
        if not any(c.get("system") == V2_0336 for c in codings(cc))
    ]
    for c in codings(concepts):
        found = covered_condition(c.get("system"), c.get("code"))
        if found is not None:
            return found
    return None


def excluded_experts(repo: Repository, case: CaseFile) -> frozenset[str]:
    """Experts who must not get this case: those who declined it, and for a third opinion the
    experts of the opinion it replaces."""
    out: set[str] = set()
    for record in transitions(repo, case.task_id):
        if "declined" in {c.get("code") for c in codings(record.get("activity"))}:
            for entity in record.get("entity") or []:
                if entity.get("role") == "removal":
                    who = local_id(entity.get("what"), "PractitionerRole")
                    if who:
                        out.add(who)
    return frozenset(out) | _first_opinion_experts(repo, case.request)


# ---------------------------------------------------------------------------- the actions
def submit(repo: Repository, request: dict[str, Any], actor: Actor) -> CaseFile:
    """Open the case of a new request, decide eligibility, and match an expert when eligible.

    The Task is written once, in the state the submission ends in (accepted with its expert,
    awaiting one, or rejected with every reason), with one Provenance per step against that
    version: the steps happen in one transaction, and each Task version costs a write with its
    history document and some fifty index updates (bench/case_flow.py).
    """
    when = now()
    today = when.astimezone(UTC).date()
    rid = str(request["id"])
    task = new_case_task(request, rid, authored=fhir_instant(when))
    checked = coverage_check.check(repo, request, coverage_check.service_day(request, today))
    response = coverage_check.store_records(
        repo, f"ServiceRequest/{rid}", checked, fhir_instant(when)
    )
    task["input"] = [
        {
            "type": {"text": "eligibility"},
            "valueReference": {"reference": f"CoverageEligibilityResponse/{response['id']}"},
        }
    ]
    result = checked.result
    steps: list[tuple[str, Actor, str | None]] = [("submitted", actor, None)]
    probe = CaseFile(task, 0, request)
    if not result.eligible:
        permit(probe, "reject", None)
        task["status"] = "rejected"
        task["businessStatus"] = {"coding": [coding(result.failures[0].code)]}
        task["statusReason"] = {
            "coding": [coding(f.code) for f in result.failures],
            "text": " ".join(f.explanation for f in result.failures),
        }
        steps.append(("rejected", SERVER_ACTOR, "; ".join(f.code for f in result.failures)))
    else:
        permit(probe, "accept", None)
        task["status"] = "accepted"
        task["restriction"] = {
            "period": {
                "start": today.isoformat(),
                "end": due_date(today, checked.facts.benefits).isoformat(),
            }
        }
        steps.append(("eligible", SERVER_ACTOR, None))
        expert = matching.best_expert(
            repo, request, result.condition, today, exclude=_first_opinion_experts(repo, request)
        )
        if expert is None:
            task["businessStatus"] = {"coding": [coding("awaiting-expert")]}
            steps.append(("awaiting-expert", SERVER_ACTOR, None))
        else:
            task["businessStatus"] = {"coding": [coding("expert-assigned")]}
            task["owner"] = {"reference": f"PractitionerRole/{expert.role}"}
            steps.append(("expert-assigned", SERVER_ACTOR, None))
    case = open_task(repo, task, request, steps, when)
    case.request_acl = _request_acl(repo, rid)
    return case


def _first_opinion_experts(repo: Repository, request: dict[str, Any]) -> frozenset[str]:
    """For a request that replaces another: the experts of the opinion it replaces."""
    out: set[str] = set()
    for ref in request.get("replaces") or []:
        rid = local_id(ref, "ServiceRequest")
        first = load_case(repo, rid) if rid else None
        if first is not None and first.owner:
            out.add(first.owner)
    return frozenset(out)


def _request_acl(repo: Repository, rid: str) -> dict[str, Any]:
    doc = next(repo.find_visible("ServiceRequest", {"_id": rid}, fields=["acl"], limit=1), None)
    return (doc or {}).get("acl") or {}


def match(
    repo: Repository,
    case: CaseFile,
    today: date,
    *,
    condition: CoveredMatch | None = None,
    exclude: frozenset[str] = frozenset(),
    action: str = "assign",
    actor: Actor | None = None,
    reason: str | None = None,
) -> CaseFile:
    """Give the case its best available expert, or mark it awaiting one."""
    found = condition or condition_match(repo, case.request)
    expert = matching.best_expert(
        repo, case.request, found, today, exclude=exclude | excluded_experts(repo, case)
    )
    if expert is None:
        if action != "assign":  # a decline/reassign with nobody left: back to the queue
            return perform(repo, case, action, actor, reason=reason, edit=_unassign_awaiting)
        if case.business_status == "awaiting-expert":
            return case
        return perform(repo, case, "await-expert", None)

    def assign(t: dict[str, Any]) -> None:
        t["owner"] = {"reference": f"PractitionerRole/{expert.role}"}
        t.pop("executionPeriod", None)
        if action != "assign":
            t["status"] = "accepted"
            t["businessStatus"] = {"coding": [coding("expert-assigned")]}

    return perform(repo, case, action, actor, reason=reason, edit=assign)


def _unassign_awaiting(t: dict[str, Any]) -> None:
    t.pop("owner", None)
    t.pop("executionPeriod", None)
    t["status"] = "accepted"
    t["businessStatus"] = {"coding": [coding("awaiting-expert")]}


def start_review(repo: Repository, case: CaseFile, actor: Actor) -> CaseFile:
    """The assigned expert's first pull of the case file."""

    def started(t: dict[str, Any]) -> None:
        t["executionPeriod"] = {**(t.get("executionPeriod") or {}), "start": fhir_instant(now())}

    return perform(repo, case, "start-review", actor, edit=started)


def paused_since(repo: Repository, case: CaseFile) -> datetime | None:
    """When the case last went on hold (its latest question-asked transition)."""
    latest: datetime | None = None
    for record in transitions(repo, case.task_id):
        if "question-asked" in {c.get("code") for c in codings(record.get("activity"))}:
            latest = parse_fhir_instant(str(record.get("recorded")))
    return latest


def resume(repo: Repository, case: CaseFile, actor: Actor) -> CaseFile:
    """A reply to the expert's question: back in review, the due date moved by the pause."""
    started = paused_since(repo, case)
    moment = now()

    def resumed(t: dict[str, Any]) -> None:
        period = (t.get("restriction") or {}).get("period") or {}
        end = period.get("end")
        if started is not None and isinstance(end, str):
            due = parse_fhir_instant(end) if "T" in end else _end_of_day(end)
            if due is not None:
                period["end"] = fhir_instant(due + (moment - started))
                t["restriction"] = {**t["restriction"], "period": period}

    return perform(repo, case, "answer", actor, edit=resumed, when=moment)


def _end_of_day(day: str) -> datetime | None:
    try:
        d = date.fromisoformat(day[:10])
    except ValueError:
        return None
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1) - timedelta(seconds=1)


def cancel(repo: Repository, case: CaseFile, actor: Actor | None, reason: str | None) -> CaseFile:
    """Withdraw the case: Task cancelled and the request revoked, together."""
    case = perform(repo, case, "cancel", actor, reason=reason)
    close_subtasks(repo, case, "cancelled")
    request = repo.read("ServiceRequest", case.request_id).resource
    assert request is not None
    if request.get("status") not in ("revoked", "entered-in-error"):
        repo.update("ServiceRequest", case.request_id, {**request, "status": "revoked"})
    return case


def close_subtasks(repo: Repository, case: CaseFile, status: str) -> None:
    """Board sub-Tasks still open when the case ends are closed with it (coordination Tasks
    are not board sub-Tasks: server/cases/coordination.py decides what happens to them)."""
    for doc in repo.find_visible("Task", {"idx.part-of": f"Task/{case.task_id}"}, limit=100):
        sub = doc["resource"]
        if sub.get("status") in OPEN and not is_coordination_task(sub):
            sub = {**sub, "status": status, "businessStatus": {"coding": [coding(status)]}}
            if status == "completed":
                sub["businessStatus"] = {"coding": [coding("report-issued")]}
            repo.update("Task", str(sub["id"]), sub)


def complete(repo: Repository, case: CaseFile, actor: Actor, report_id: str) -> CaseFile:
    """The final report: Task completed with it as output, the request completed, together."""
    moment = now()

    def done(t: dict[str, Any]) -> None:
        output = [
            o
            for o in t.get("output", [])
            if (o.get("valueReference") or {}).get("reference") != f"DiagnosticReport/{report_id}"
        ]
        output.append(
            {
                "type": {"text": "Second-opinion report"},
                "valueReference": {"reference": f"DiagnosticReport/{report_id}"},
            }
        )
        t["output"] = output
        period = dict(t.get("executionPeriod") or {})
        period.setdefault("start", fhir_instant(moment))
        period["end"] = fhir_instant(moment)
        t["executionPeriod"] = period

    case = perform(repo, case, "complete", actor, edit=done, when=moment)
    close_subtasks(repo, case, "cancelled")
    request = repo.read("ServiceRequest", case.request_id).resource
    assert request is not None
    if request.get("status") != "completed":
        repo.update("ServiceRequest", case.request_id, {**request, "status": "completed"})
    return case
