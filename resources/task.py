"""Task: the second-opinion case lifecycle (DOMAIN.md, "Case lifecycle"; docs/cases.md).

Two pure tables and the rules on them:

* ``TRANSITIONS``: which Task.status may follow which, whoever writes. ``check_task`` applies
  it (and the businessStatus/owner/reason/output rules) to every second-opinion Task write;
  ``enforce_case_lifecycle`` is the thin PRE_WRITE hook that refuses a bad write with 422. It
  guards direct Task writes by trusted integrations; the case engine's own moves pass it too.
* ``ACTIONS``: what the engine does and what each party may ask of a case — from which status,
  to which status and businessStatus. ``check_action`` answers 403 (not this party's action)
  or 422 (not from this status) with a rule code and a plain explanation.

Which businessStatus goes with which Task.status is data: the ``task-status`` property of the
``case-business-status`` CodeSystem, so the profile, the docs and this check cannot drift.

Decisions beyond the brief's table (each says why):
* Matching keeps the status ``accepted`` (businessStatus expert-assigned / awaiting-expert):
  in R4 ``ready`` means "acceptance is a given" and replaces requested/accepted; it stays only
  for BSeR-style imports, which may then go to ``in-progress``.
* ``in-progress → accepted`` and ``on-hold → accepted`` are allowed: an expert who declines a
  case under review, or a coordinator who reassigns it, sends it back to matching. Without them
  the ``decline`` and ``reassign`` actions could never be written.
* ``on-hold → completed`` is allowed: the expert may issue the report without the answer (the
  report then says what was missing).
* ``on-hold → cancelled`` is allowed: a requester must be able to withdraw while the expert
  waits for information (the clinic may not: see the ``cancel`` action; a coordinator may).
* ``→ entered-in-error`` is allowed from any state (FHIR's way to retract a mistaken record), and
  it ends everything; its businessStatus is not checked.
* Re-writing the same status is always allowed (businessStatus moves within a status, e.g.
  ``received → eligibility-check`` or ``case-retrieved → under-review``; notes get added).
* From ``ready`` on, and in ``accepted`` once an expert is assigned, the case must have an owner
  (the matched expert's PractitionerRole).
* Creating a Task in any state is allowed (imports, the seed); only updates are transitions.
* A clinic may cancel from ``ready`` too: the rule is "before the review starts", and a
  BSeR-style ``ready`` case has not started. Later, only a coordinator (or trusted) may cancel.
* ``trusted`` may do every *party* action, from wherever any party may; the server's own
  actions (accept, reject, assign, await-expert) stay the engine's, since they are the
  consequences of rules, not requests.
* Party refusals are checked before status refusals (403 before 422): a party that may never
  do something should not learn the case's status from the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from profiles.conformance import CS_BUSINESS_STATUS, PROFILE_TASK, VS_REJECTION
from profiles.terminology import concept, in_value_set, property_values
from resources.coordination import is_coordination_task
from resources.domain import (
    BusinessRuleViolation,
    HookTable,
    Violation,
    WriteEventLike,
    claims,
    codings,
    local_id,
    read_current,
    references,
)
from resources.servicerequest import is_second_opinion_request

TERMINAL = frozenset({"rejected", "cancelled", "completed", "failed", "entered-in-error"})
OPEN = frozenset({"requested", "accepted", "ready", "in-progress", "on-hold"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"accepted", "in-progress", "ready", "cancelled"}),
    "ready": frozenset({"in-progress", "cancelled"}),
    "in-progress": frozenset({"on-hold", "completed", "failed", "cancelled", "accepted"}),
    "on-hold": frozenset({"in-progress", "completed", "cancelled", "accepted"}),
}
NEEDS_OWNER = frozenset({"ready", "in-progress", "on-hold", "completed", "failed"})
# (status, businessStatus) pairs that need an owner although the status alone does not.
NEEDS_OWNER_BUSINESS = frozenset({("accepted", "expert-assigned")})
FINAL_REPORT = frozenset({"final", "amended"})


def transition_allowed(old: str | None, new: str) -> bool:
    """May a case move from ``old`` to ``new``? (``old`` None: a create, anything goes.)"""
    if old is None or old == new:
        return True
    if new == "entered-in-error":
        return old != "entered-in-error"
    return new in TRANSITIONS.get(old, frozenset())


def needs_owner(status: str, business_status: str | None) -> bool:
    """Must a case in this state name its expert (``Task.owner``)?"""
    return status in NEEDS_OWNER or (status, business_status) in NEEDS_OWNER_BUSINESS


def business_status_code(task: dict[str, Any]) -> str | None:
    for c in codings(task.get("businessStatus")):
        if c.get("system") == CS_BUSINESS_STATUS and isinstance(c.get("code"), str):
            return str(c["code"])
    return None


def business_status_fits(status: str, code: str | None) -> bool:
    """Is the businessStatus ``code`` one that goes with Task.status ``status``?"""
    if status == "entered-in-error":
        return True
    if code is None:
        return False
    c = concept(CS_BUSINESS_STATUS, code)
    if c is None:
        return False
    if True in property_values(CS_BUSINESS_STATUS, code, "notSelectable"):
        return False
    return status in property_values(CS_BUSINESS_STATUS, code, "task-status")


def _has_rejection_reason(task: dict[str, Any]) -> bool:
    return any(
        in_value_set(VS_REJECTION, c.get("system"), c.get("code")) is True
        for c in codings(task.get("statusReason"))
    )


def report_references(task: dict[str, Any]) -> list[str]:
    return references([o.get("valueReference") for o in task.get("output", [])], "DiagnosticReport")


def check_task(task: dict[str, Any], previous: dict[str, Any] | None) -> list[Violation]:
    """Every lifecycle rule the new version of a second-opinion Task breaks."""
    out: list[Violation] = []
    status = str(task.get("status"))
    old = previous.get("status") if previous else None
    if not transition_allowed(old if isinstance(old, str) else None, status):
        allowed = sorted(TRANSITIONS.get(str(old), frozenset()))
        out.append(
            (
                f"a case cannot move from {old} to {status}"
                + (f" (allowed: {', '.join(allowed)})" if allowed else f" ({old} is terminal)"),
                "Task.status",
            )
        )
    code = business_status_code(task)
    if not business_status_fits(status, code):
        out.append(
            (
                f"businessStatus {code or '(none from ' + CS_BUSINESS_STATUS + ')'} does not go "
                f"with status {status}",
                "Task.businessStatus",
            )
        )
    if status == "rejected" and not _has_rejection_reason(task):
        out.append(
            (
                "a rejected case needs a statusReason from the case-rejection-reason value set",
                "Task.statusReason",
            )
        )
    if status == "completed" and not report_references(task):
        out.append(
            ("a completed case needs an output referencing its DiagnosticReport", "Task.output")
        )
    if needs_owner(status, code) and local_id(task.get("owner"), "PractitionerRole") is None:
        out.append(
            (f"a {status} case needs an owner: the matched expert's PractitionerRole", "Task.owner")
        )
    return out


def is_second_opinion_task(task: dict[str, Any] | None, repository: Any = None) -> bool:
    """Claims the profile, speaks our business status, or fulfils a second-opinion request.

    A coordination Task (resources/coordination.py) is never one: it names the case's request
    as its focus, but it has its own lifecycle."""
    if not task or task.get("resourceType") != "Task" or is_coordination_task(task):
        return False
    if claims(task, PROFILE_TASK) or business_status_code(task) is not None:
        return True
    if repository is None:
        return False
    for rid in references([task.get("focus"), *task.get("basedOn", [])], "ServiceRequest"):
        if is_second_opinion_request(read_current(repository, "ServiceRequest", rid)):
            return True
    return False


def enforce_case_lifecycle(event: WriteEventLike) -> None:
    """PRE_WRITE: reject a second-opinion Task write that breaks the lifecycle (→ 422)."""
    task = event.resource
    if event.resource_type != "Task" or task is None:
        return
    if not (
        is_second_opinion_task(task, event.repository) or is_second_opinion_task(event.previous)
    ):
        return
    issues = check_task(task, event.previous)
    if task.get("status") == "completed":
        for rid in report_references(task):
            report = read_current(event.repository, "DiagnosticReport", rid)
            if report is not None and report.get("status") not in FINAL_REPORT:
                issues.append(
                    (
                        f"the output DiagnosticReport/{rid} is {report.get('status')}, a "
                        "completed case needs a final report",
                        "Task.output",
                    )
                )
    if issues:
        raise BusinessRuleViolation(issues)


# --- The action table ---------------------------------------------------------------------------

SERVER = "server"  # the engine itself: submission, eligibility, matching
CLINIC = "clinic"  # the requesting clinic (the requester's organization)
ASSIGNED_EXPERT = "assigned-expert"  # the case owner
OTHER_EXPERT = "other-expert"  # any other specialist of the network
INSURER = "insurer"  # the member's insurer (tracks, never acts on a case)
COORDINATOR = "coordinator"  # the service's medical coordinators
TRUSTED = "trusted"  # a trusted integration: may do every party action
PARTIES = frozenset({SERVER, CLINIC, ASSIGNED_EXPERT, OTHER_EXPERT, INSURER, COORDINATOR, TRUSTED})

NOT_PERMITTED = "action-not-permitted"
CASE_CLOSED = "case-closed"
UNKNOWN_ACTION = "unknown-action"

Refusal = tuple[int, str, str]  # (HTTP status, rule code, plain explanation)


@dataclass(frozen=True)
class PartyRule:
    """A party's own from-statuses for an action, and what it is told outside them."""

    from_statuses: frozenset[str]
    refusal: str
    explanation: str  # may name ``{status}``


@dataclass(frozen=True)
class Action:
    """What an action does to a case and who may ask for it.

    ``to_status`` None: the status stays. ``business_status`` None: it stays, or the engine
    chooses it (``reject``: the first failure's code; ``decline``/``reassign``:
    expert-assigned or awaiting-expert, whatever the re-match finds). ``refusal`` and
    ``explanation`` (which may name ``{status}``) answer a party asking from a status outside
    ``from_statuses``; ``per_party`` narrows (or widens) the from-statuses for one party.
    """

    name: str
    from_statuses: frozenset[str]
    to_status: str | None
    business_status: str | None
    parties: frozenset[str]
    refusal: str = "wrong-status"
    explanation: str = "This cannot be done while the case is {status}."
    per_party: Mapping[str, PartyRule] = field(default_factory=dict, hash=False)

    def may(self, party: str) -> bool:
        """Party actions are open to ``trusted``; the server's own actions are not."""
        return party in self.parties or (party == TRUSTED and SERVER not in self.parties)

    def allowed_from(self, party: str) -> frozenset[str]:
        rule = self.per_party.get(party)
        return rule.from_statuses if rule else self.from_statuses

    def refusal_for(self, party: str, status: str) -> tuple[str, str]:
        rule = self.per_party.get(party)
        code, text = (rule.refusal, rule.explanation) if rule else (self.refusal, self.explanation)
        return code, text.format(status=status)


def _set(*items: str) -> frozenset[str]:
    return frozenset(items)


_REVIEWING = _set("accepted", "in-progress", "on-hold")
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action(
            "accept", _set("requested"), "accepted", "eligible", _set(SERVER),
            "not-awaiting-eligibility",
            "Only a case just received can be accepted or rejected; this case is {status}.",
        ),
        Action(
            "reject", _set("requested"), "rejected", None, _set(SERVER),
            "not-awaiting-eligibility",
            "Only a case just received can be accepted or rejected; this case is {status}.",
        ),
        Action(
            "assign", _set("accepted"), "accepted", "expert-assigned", _set(SERVER),
            "not-awaiting-expert",
            "An expert is assigned to an accepted case before its review starts; this case "
            "is {status}.",
        ),
        Action(
            "await-expert", _set("accepted"), "accepted", "awaiting-expert", _set(SERVER),
            "not-awaiting-expert",
            "Only an accepted case not yet under review waits for an expert; this case is "
            "{status}.",
        ),
        Action(
            "start-review", _set("accepted", "ready"), "in-progress", "case-retrieved",
            _set(ASSIGNED_EXPERT),
            "review-not-startable",
            "The review starts when the assigned expert first retrieves an accepted case; "
            "this case is {status}.",
        ),
        Action(
            "ask", _set("in-progress"), "on-hold", "awaiting-information", _set(ASSIGNED_EXPERT),
            "not-under-review",
            "Questions are asked while the case is under review; this case is {status}.",
        ),
        Action(
            "answer", _set("on-hold"), "in-progress", "under-review", _set(CLINIC, COORDINATOR),
            "no-open-question",
            "The expert is not waiting for information on this case; it is {status}.",
        ),
        Action(
            "interim-report", _set("in-progress"), "in-progress", "interim-report",
            _set(ASSIGNED_EXPERT),
            "not-under-review",
            "An interim report is issued while the case is under review; this case is "
            "{status}.",
        ),
        Action(
            "complete", _set("in-progress", "on-hold"), "completed", "report-issued",
            _set(ASSIGNED_EXPERT),
            "not-under-review",
            "The final report is issued on a case under review; this case is {status}.",
        ),
        Action(
            "amend", _set("completed"), None, None, _set(ASSIGNED_EXPERT),
            "not-completed",
            "Only an issued report can be amended; this case is {status}.",
        ),
        Action(
            "cancel", OPEN, "cancelled", "cancelled", _set(CLINIC, COORDINATOR),
            "not-cancellable",
            "Only an open case can be cancelled; this case is {status}.",
            per_party={
                CLINIC: PartyRule(
                    _set("requested", "accepted", "ready"),
                    "cancel-after-review-started",
                    "The expert has started the review (the case is {status}), so the clinic "
                    "can no longer cancel it. Ask the service's coordinator to cancel it.",
                )
            },
        ),
        Action(
            "decline", _set("accepted", "in-progress"), "accepted", None, _set(ASSIGNED_EXPERT),
            "not-declinable",
            "An expert may decline an assigned case or one under review, not one that is "
            "{status}.",
        ),
        Action(
            "reassign", _REVIEWING, "accepted", None, _set(COORDINATOR),
            "not-reassignable",
            "Only an accepted case or one under review can be given to another expert; this "
            "case is {status}.",
        ),
        Action(
            "add-expert", _REVIEWING, None, None, _set(COORDINATOR),
            "not-reassignable",
            "An expert can be added to an accepted case or one under review; this case is "
            "{status}.",
        ),
    )
}  # fmt: skip


def check_action(action: str, status: str, party: str) -> Refusal | None:
    """None when ``party`` may perform ``action`` on a case in ``status``; else why not.

    403 ``action-not-permitted``: the action is not this party's. 422: not from this status —
    ``case-closed`` when the case is terminal, else the action's (or the party's) own rule code,
    e.g. ``cancel-after-review-started``. 400 ``unknown-action`` for a name not in ``ACTIONS``.
    """
    a = ACTIONS.get(action)
    if a is None:
        return (400, UNKNOWN_ACTION, f"There is no case action {action!r}.")
    if not a.may(party):
        who = ", ".join(sorted(a.parties | ({TRUSTED} if SERVER not in a.parties else set())))
        return (403, NOT_PERMITTED, f"Only {who} may {action} a case; you act as {party}.")
    if status in a.allowed_from(party):
        return None
    if status in TERMINAL:
        return (
            422,
            CASE_CLOSED,
            f"The case is {status}: it is closed, and nothing more can be done to it ({action}).",
        )
    code, text = a.refusal_for(party, status)
    return (422, code, text)


HOOKS: HookTable = [("pre_write", enforce_case_lifecycle)]
