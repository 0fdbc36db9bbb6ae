"""Task: the second-opinion case lifecycle (DOMAIN.md, "Case lifecycle").

The transition table and the rules are pure; ``enforce_case_lifecycle`` is the thin PRE_WRITE
hook. Which businessStatus goes with which Task.status is data: the ``task-status`` property of
the ``case-business-status`` CodeSystem, so the profile, the docs and this check cannot drift.

Decisions beyond the brief's table (each says why):
* ``on-hold → cancelled`` is allowed: DOMAIN.md says a case is "cancelled by the requester",
  and a requester must be able to withdraw while the expert waits for information.
* ``→ entered-in-error`` is allowed from any state (FHIR's way to retract a mistaken record), and
  it ends everything; its businessStatus is not checked.
* Re-writing the same status is always allowed (businessStatus moves within a status, e.g.
  ``received → eligibility-check`` or ``case-retrieved → under-review``; notes get added).
* From ``ready`` on, the case must have an owner (the matched expert's PractitionerRole).
* Creating a Task in any state is allowed (imports, the seed); only updates are transitions.
"""

from __future__ import annotations

from typing import Any

from profiles.conformance import CS_BUSINESS_STATUS, PROFILE_TASK, VS_REJECTION
from profiles.terminology import concept, in_value_set, property_values
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
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"ready", "cancelled"}),
    "ready": frozenset({"in-progress", "cancelled"}),
    "in-progress": frozenset({"on-hold", "completed", "failed", "cancelled"}),
    "on-hold": frozenset({"in-progress", "cancelled"}),
}
NEEDS_OWNER = frozenset({"ready", "in-progress", "on-hold", "completed", "failed"})
FINAL_REPORT = frozenset({"final", "amended"})


def transition_allowed(old: str | None, new: str) -> bool:
    """May a case move from ``old`` to ``new``? (``old`` None: a create, anything goes.)"""
    if old is None or old == new:
        return True
    if new == "entered-in-error":
        return old != "entered-in-error"
    return new in TRANSITIONS.get(old, frozenset())


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
    if status in NEEDS_OWNER and local_id(task.get("owner"), "PractitionerRole") is None:
        out.append(
            (f"a {status} case needs an owner: the matched expert's PractitionerRole", "Task.owner")
        )
    return out


def is_second_opinion_task(task: dict[str, Any] | None, repository: Any = None) -> bool:
    """Claims the profile, speaks our business status, or fulfils a second-opinion request."""
    if not task or task.get("resourceType") != "Task":
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


HOOKS: HookTable = [("pre_write", enforce_case_lifecycle)]
