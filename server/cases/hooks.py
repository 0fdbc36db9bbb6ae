"""The case engine's hooks: what parties write is checked (PRE_WRITE) and its consequences for
the case are written in the same transaction (PRE_COMMIT).

| write | PRE_WRITE (refuse / fill) | PRE_COMMIT (consequence) |
|---|---|---|
| second-opinion ServiceRequest POSTed | | open the case, eligibility, match |
| its ServiceRequest → revoked / entered-in-error | who may cancel, and when | cancel the case |
| its ServiceRequest → completed by a party | refused: the final report completes it | |
| a report (DiagnosticReport basedOn the request) | only the assigned expert (or a board member for a contribution); performer set/checked; report status moves | interim → interim-report, final → completed, amended → recorded |
| a question (Communication information-request) | only the assigned expert; sender set/checked | case on hold |
| a reply (Communication inResponseTo a question) | the requesting clinic or a coordinator; basedOn filled | case back in review, due date moved |
| an expert PractitionerRole written | | cases awaiting an expert are matched |

Why POST only opens a case: a POST is a new submission whose id the server chose; a PUT with a
client-chosen id is a client managing its own records (migrations, the seed, BSeR initiators
writing their own Task).
"""

from __future__ import annotations

import logging
from typing import Any

from profiles.conformance import CS_COMMUNICATION, PROFILE_EXPERT
from resources.diagnosticreport import (
    ReportMoveError,
    is_second_opinion_report,
    report_status_move,
)
from resources.domain import codes_in, local_id, references
from resources.servicerequest import is_second_opinion_request
from server.cases import workflow
from server.cases.actor import Actor, actor_of
from server.cases.store import OPEN, CaseFile, coding, load_case, load_case_of_task, save
from server.errors import FhirError
from server.hooks import HookPoint, Hooks, WriteEvent
from server.repository import Repository
from server.timeutil import now

log = logging.getLogger(__name__)

MAX_AWAITING = 200  # cases matched per directory write; the rest on the next one


def forbidden(text: str) -> FhirError:
    return FhirError(403, "forbidden", text)


def rule(text: str) -> FhirError:
    return FhirError(422, "business-rule", text)


def _system(event: WriteEvent) -> Repository:
    return event.repository.unrestricted()


def _case_of_request_refs(repo: Repository, resource: dict[str, Any]) -> CaseFile | None:
    for rid in references(resource.get("basedOn") or [], "ServiceRequest"):
        case = load_case(repo, rid)
        if case is not None:
            return case
    return None


def _subtask_of(repo: Repository, case: CaseFile, roles: frozenset[str]) -> dict[str, Any] | None:
    """The open board sub-Task of ``case`` owned by one of ``roles``."""
    for doc in repo.find_visible("Task", {"idx.part-of": f"Task/{case.task_id}"}, limit=100):
        sub = doc["resource"]
        if sub.get("status") in OPEN and local_id(sub.get("owner"), "PractitionerRole") in roles:
            return dict(sub)
    return None


# ------------------------------------------------------------------------------- requests
def guard_request(event: WriteEvent) -> None:
    if event.resource_type != "ServiceRequest" or event.previous is None:
        return
    new, old = event.resource, event.previous
    if not is_second_opinion_request(old):
        return
    new_status = (new or {}).get("status") if new is not None else "deleted"
    if new_status == old.get("status"):
        return
    actor = actor_of(event.repository.security)
    if actor.role is None:
        return  # trusted integrations and the server itself
    case = load_case(_system(event), event.resource_id)
    if case is None:
        return
    if new_status == "completed":
        raise rule(
            "a second-opinion request is completed by the server when the expert's final "
            "report is filed (rule request-completed-by-report)"
        )
    if new_status in ("revoked", "entered-in-error", "deleted"):
        workflow.permit(case, "cancel", actor)


def follow_request(event: WriteEvent) -> None:
    if event.resource_type != "ServiceRequest":
        return
    resource = event.resource
    repo = _system(event)
    if event.interaction == "create":
        if (
            resource is None
            or not is_second_opinion_request(resource)
            or resource.get("status") != "active"
            or local_id(resource.get("subject"), "Patient") is None
            or load_case(repo, event.resource_id) is not None
        ):
            return
        workflow.submit(
            repo, {**resource, "id": event.resource_id}, actor_of(event.repository.security)
        )
        return
    status = resource.get("status") if resource is not None else "deleted"
    if status not in ("revoked", "entered-in-error", "deleted"):
        return
    case = load_case(repo, event.resource_id)
    if case is not None and case.status in OPEN:
        actor = actor_of(event.repository.security)
        workflow.perform(repo, case, "cancel", actor, reason=f"request {status}")
        workflow.close_subtasks(repo, case, "cancelled")


# -------------------------------------------------------------------------------- reports
def _performer_roles(report: dict[str, Any]) -> list[str | None]:
    return [local_id(p, "PractitionerRole") for p in report.get("performer") or []]


def guard_report(event: WriteEvent) -> None:
    if event.resource_type != "DiagnosticReport":
        return
    report = event.resource if event.resource is not None else event.previous
    if report is None or (
        not is_second_opinion_report(report, None)
        and not references(report.get("basedOn") or [], "ServiceRequest")
    ):
        return
    repo = _system(event)
    case = _case_of_request_refs(repo, report)
    if case is None:
        return
    old_status = (event.previous or {}).get("status")
    if event.resource is None:
        if old_status in ("final", "amended", "corrected"):
            raise rule(
                "a filed second-opinion report is not deleted: amend it, or mark it "
                "entered-in-error (rule report-kept)"
            )
    else:
        try:
            report_status_move(old_status, str(event.resource.get("status")))
        except ReportMoveError as exc:
            raise FhirError(
                422,
                "business-rule",
                f"{exc} (rule {exc.code})",
                expression=["DiagnosticReport.status"],
            ) from exc
    actor = actor_of(event.repository.security)
    if actor.role is None:
        return
    role: str | None = None
    if actor.role == "specialist" and case.owner in actor.roles:
        role = case.owner
    elif actor.role == "specialist" and (sub := _subtask_of(repo, case, actor.roles)):
        role = local_id(sub.get("owner"), "PractitionerRole")
    if role is None:
        raise forbidden(
            "only the expert assigned to the case writes its second-opinion report "
            f"(Task/{case.task_id} is assigned to "
            f"{'PractitionerRole/' + case.owner if case.owner else 'nobody yet'})"
        )
    if event.resource is None:
        return
    performers = _performer_roles(event.resource)
    if not performers:
        event.resource["performer"] = [{"reference": f"PractitionerRole/{role}"}]
    elif any(p != role for p in performers):
        raise forbidden(f"the report's performer must be you: PractitionerRole/{role}")
    if event.interaction == "create" and case.status not in OPEN and role == case.owner:
        raise rule(
            f"the case is {case.status}: "
            + (
                "amend its report instead of filing a new one (rule one-final-report)"
                if case.status == "completed"
                else "no report can be filed (rule case-closed)"
            )
        )


def follow_report(event: WriteEvent) -> None:
    if event.resource_type != "DiagnosticReport" or event.resource is None:
        return
    report = event.resource
    repo = _system(event)
    case = _case_of_request_refs(repo, report)
    if case is None:
        return
    actor = actor_of(event.repository.security)
    status = str(report.get("status"))
    try:
        move = report_status_move((event.previous or {}).get("status"), status)
    except ReportMoveError:
        return  # refused in PRE_WRITE already
    if move is None:
        return
    performers = set(_performer_roles(report))
    if case.owner not in performers:
        _contribution(repo, case, report, event.resource_id, actor, move)
        return
    if move in ("interim-report", "complete") and case.status == "accepted":
        case = workflow.start_review(repo, case, actor)
    if move == "complete":
        workflow.complete(repo, case, actor, event.resource_id)
    elif move == "interim-report":
        if case.business_status != "interim-report":
            workflow.perform(repo, case, "interim-report", actor)
    elif move == "amend":
        workflow.perform(repo, case, "amend", actor, reason=f"report {status}")


def _contribution(
    repo: Repository, case: CaseFile, report: dict[str, Any], rid: str, actor: Actor, move: str
) -> None:
    if move != "complete":
        return
    roles = frozenset(r for r in _performer_roles(report) if r)
    sub = _subtask_of(repo, case, roles)
    if sub is None:
        return
    stored = repo.read("Task", str(sub["id"]))
    sub_case = CaseFile(sub, stored.version_id, case.request, case.request_acl)
    if sub.get("status") != "in-progress":
        sub["status"] = "in-progress"
        sub["businessStatus"] = {"coding": [coding("under-review")]}
        sub_case = save(repo, sub_case, "review-started", actor)
    sub = sub_case.task
    sub["status"] = "completed"
    sub["output"] = [
        {
            "type": {"text": "Board contribution"},
            "valueReference": {"reference": f"DiagnosticReport/{rid}"},
        }
    ]
    sub["businessStatus"] = {"coding": [coding("report-issued")]}
    save(repo, sub_case, "board-contribution", actor)


# ------------------------------------------------------------------------ communications
def _is_question(resource: dict[str, Any] | None) -> bool:
    return bool(resource) and "information-request" in codes_in(
        (resource or {}).get("category"), CS_COMMUNICATION
    )


def _question_of(repo: Repository, comm: dict[str, Any]) -> dict[str, Any] | None:
    for qid in references(comm.get("inResponseTo") or [], "Communication"):
        doc = next(repo.find_visible("Communication", {"_id": qid}, limit=1), None)
        if doc is not None and _is_question(doc["resource"]):
            return dict(doc["resource"])
    return None


def guard_communication(event: WriteEvent) -> None:
    comm = event.resource
    if event.resource_type != "Communication" or comm is None:
        return
    repo = _system(event)
    actor = actor_of(event.repository.security)
    if _is_question(comm):
        case = _case_of_request_refs(repo, comm)
        if case is None or actor.role is None:
            return
        if not (actor.role == "specialist" and case.owner in actor.roles):
            raise forbidden("only the expert assigned to the case asks the requester questions")
        sender = local_id(comm.get("sender"), "PractitionerRole")
        if comm.get("sender") is None:
            comm["sender"] = {"reference": f"PractitionerRole/{case.owner}"}
        elif sender != case.owner:
            raise forbidden(f"the question's sender must be you: PractitionerRole/{case.owner}")
        if event.interaction == "create" and case.status not in ("accepted", "in-progress"):
            workflow.permit(case, "ask", actor)
        return
    question = _question_of(repo, comm)
    if question is None:
        return
    case = _case_of_request_refs(repo, question)
    if case is None:
        return
    if actor.role not in (None, "coordinator") and not (
        actor.role == "clinic" and actor.organization in case.orgs()
    ):
        raise forbidden("only the requesting clinic or a coordinator answers the expert")
    if not references(comm.get("basedOn") or [], "ServiceRequest"):
        comm["basedOn"] = [{"reference": f"ServiceRequest/{case.request_id}"}]
    if not comm.get("category"):
        comm["category"] = [
            {"coding": [{"system": CS_COMMUNICATION, "code": "information-response"}]}
        ]


def follow_communication(event: WriteEvent) -> None:
    comm = event.resource
    if event.resource_type != "Communication" or comm is None or event.interaction != "create":
        return
    repo = _system(event)
    actor = actor_of(event.repository.security)
    if _is_question(comm):
        case = _case_of_request_refs(repo, comm)
        if case is None:
            return
        if case.status == "accepted" and case.owner:
            case = workflow.start_review(repo, case, actor)
        workflow.perform(repo, case, "ask", actor, reason=_text(comm))
        return
    question = _question_of(repo, comm)
    case = _case_of_request_refs(repo, question) if question else None
    if case is not None and case.status == "on-hold":
        workflow.resume(repo, case, actor)


def _text(comm: dict[str, Any]) -> str | None:
    for p in comm.get("payload") or []:
        if isinstance(p.get("contentString"), str):
            return str(p["contentString"])[:500]
    return None


# ------------------------------------------------------------------------------ directory
def follow_expert(event: WriteEvent) -> None:
    """A new or changed expert: cases waiting for one are matched now."""
    role = event.resource
    if event.resource_type != "PractitionerRole" or role is None:
        return
    if PROFILE_EXPERT not in ((role.get("meta") or {}).get("profile") or []):
        return
    repo = _system(event)
    waiting = list(
        repo.find_visible(
            "Task",
            {"idx.business-status": "awaiting-expert", "idx.status": "accepted"},
            fields=["resource.focus", "resource.partOf"],
            limit=MAX_AWAITING,
        )
    )
    today = now().date()
    for doc in waiting:
        rid = local_id((doc.get("resource") or {}).get("focus"), "ServiceRequest")
        case = load_case(repo, rid) if rid else None
        if case is not None and case.business_status == "awaiting-expert":
            workflow.match(repo, case, today)


def install(hooks: Hooks) -> None:
    # First (before profile validation): the guards fill what the server sets, such as a
    # report's performer, which the profile requires.
    for hook in (guard_communication, guard_report, guard_request):
        hooks.register(HookPoint.PRE_WRITE, hook, first=True)
    for hook in (follow_request, follow_report, follow_communication, follow_expert):
        hooks.register(HookPoint.PRE_COMMIT, hook)


__all__ = ["install", "load_case_of_task"]
