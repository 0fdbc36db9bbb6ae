"""Medical coordination services of a case, on the server (docs/coordination.md).

The rules are pure (``resources/coordination.py``); this adapter applies them to writes:

| write | PRE_WRITE (refuse / fill) | PRE_COMMIT (consequence) |
|---|---|---|
| a coordination Task created by a clinic or a coordinator | ``partOf`` must be a case Task; a clinic only for its own case; the server sets status requested, intent, for, focus, requester, owner, authoredOn, due date | |
| a coordination Task updated | the clinic only cancels (before the work starts); a coordinator moves the status, owner, output; lifecycle → 422 | |
| a consultation Appointment (``basedOn`` a case's request) | a coordinator books it (participants filled in); a participant changes only its own ``participant.status`` | a video-consultation Task it names (``supportingInformation``) gets it as an output |
| the case Task → completed | | a ``follow-up`` coordination Task, once |
| the case Task → cancelled / rejected / failed | | open coordination Tasks cancelled |

Why the party checks live here and not in ``auth/policy.py``: "the requesting clinic" is a
fact of the case (its request's owners), not of the token, exactly like the case actions.
The policy only lets a clinic and a coordinator write a coordination Task at all (and lets
nobody delete one); everything below runs on the server's own account within the caller's
transaction (``Repository.unrestricted``), so the consequences commit with the write.
"""

from __future__ import annotations

from typing import Any

from profiles.conformance import PROFILE_EXPERT
from resources.coordination import (
    COORDINATOR,
    FOLLOW_UP,
    OPEN,
    REQUESTER,
    TRUSTED,
    VIDEO,
    appointments_of,
    check_lifecycle,
    check_participant_change,
    check_party_change,
    fill_request,
    owner_kind,
    requestable,
    service_coding,
    service_of,
)
from resources.domain import local_id, references
from resources.task import is_second_opinion_task
from server.cases.actor import Actor, actor_of
from server.cases.store import CaseFile, load_case
from server.errors import FhirError, Issue
from server.hooks import HookPoint, Hooks, WriteEvent
from server.repository import Repository
from server.timeutil import fhir_instant, now

CLOSED_CASE = frozenset({"rejected", "cancelled", "failed", "entered-in-error"})


def _refuse(status: int, rule: str, text: str, expression: str = "Task") -> FhirError:
    code = "forbidden" if status == 403 else "business-rule"
    return FhirError(
        status,
        code,
        f"{text} (rule {rule})",
        issues=[Issue(code, f"{rule}: {text}", expression=[expression])],
    )


def _violations(issues: list[tuple[str, str]]) -> None:
    if issues:
        raise FhirError(
            422,
            "business-rule",
            "; ".join(d for d, _ in issues),
            issues=[Issue("business-rule", d, expression=[e]) for d, e in issues],
        )


def _system(event: WriteEvent) -> Repository:
    return event.repository.unrestricted()


def _current(repo: Repository, rtype: str, rid: str) -> dict[str, Any] | None:
    doc = next(repo.find_visible(rtype, {"_id": rid}, limit=1), None)
    return dict(doc["resource"]) if doc else None


def case_of_part_of(repo: Repository, task: dict[str, Any]) -> CaseFile | None:
    """The case whose Task the coordination Task is ``partOf`` (exactly the case Task: not a
    board sub-Task, not another coordination Task), or None."""
    parents = references(task.get("partOf") or [], "Task")
    if len(parents) != 1:
        return None
    parent = _current(repo, "Task", parents[0])
    if parent is None or parent.get("partOf") or not is_second_opinion_task(parent):
        return None
    rid = local_id(parent.get("focus"), "ServiceRequest")
    case = load_case(repo, rid) if rid else None
    return case if case is not None and case.task_id == parents[0] else None


def network_owner(repo: Repository, case: CaseFile, actor: Actor | None) -> dict[str, Any]:
    """Who owns a new request: the network Organization that runs the case (its expert's
    organization), else the coordinator's own, else the organization of the network's experts.
    Why an Organization and not a person: requests land in the coordinators' shared queue
    (``Task?owner=Organization/...&status=requested``) until one of them takes it."""
    if case.owner:
        role = _current(repo, "PractitionerRole", case.owner)
        org = local_id((role or {}).get("organization"), "Organization")
        if org:
            return {"reference": f"Organization/{org}"}
    if actor is not None and actor.role == COORDINATOR and actor.organization:
        return {"reference": f"Organization/{actor.organization}"}
    doc = next(
        repo.find_visible(
            "PractitionerRole",
            {"resource.meta.profile": PROFILE_EXPERT},
            sort=[("_id", 1)],
            limit=1,
        ),
        None,
    )
    org = local_id(((doc or {}).get("resource") or {}).get("organization"), "Organization")
    if org is None:
        raise _refuse(422, "coordination-no-network", "no network organization to own it")
    return {"reference": f"Organization/{org}"}


def _party(actor: Actor, case: CaseFile) -> str:
    if actor.role is None:
        return TRUSTED
    if actor.role == "coordinator":
        return COORDINATOR
    if actor.role == "clinic" and actor.organization in case.orgs():
        return REQUESTER
    return str(actor.role)


def _requester(actor: Actor, case: CaseFile, task: dict[str, Any]) -> dict[str, Any]:
    """The clinician (fhirUser) or the clinic for a clinic; for a coordinator the member it
    took the call from, unless it names the case's requester or patient itself."""
    p = actor.principal
    if actor.role == "clinic":
        if (
            p is not None
            and p.user
            and p.user.split("/", 1)[0] in ("PractitionerRole", "Practitioner")
        ):
            return {"reference": p.user}
        return {"reference": f"Organization/{actor.organization}"}
    given = (task.get("requester") or {}).get("reference")
    allowed = {f"Patient/{case.patient}", (case.request.get("requester") or {}).get("reference")}
    if given in allowed:
        return {"reference": given}
    return {"reference": f"Patient/{case.patient}"}


def _check_owner(repo: Repository, task: dict[str, Any]) -> None:
    kind = owner_kind(task)
    if kind is None:
        raise _refuse(
            422,
            "coordination-owner",
            "the owner of a coordination Task is a coordinator: a PractitionerRole or the "
            "network Organization",
            "Task.owner",
        )
    rid = local_id(task.get("owner"), kind)
    assert rid is not None
    found = _current(repo, kind, rid)
    if found is None:
        raise _refuse(422, "coordination-owner", f"{kind}/{rid} is not known", "Task.owner")
    if kind == "PractitionerRole" and PROFILE_EXPERT in (
        (found.get("meta") or {}).get("profile") or []
    ):
        raise _refuse(
            422,
            "coordination-owner",
            "an expert does not own coordination work: name a coordinator or the network",
            "Task.owner",
        )


def _check_outputs(
    repo: Repository, case: CaseFile, task: dict[str, Any], old: dict[str, Any] | None
) -> None:
    """Every Appointment the Task outputs is a consultation of this case."""
    before = set(appointments_of(old or {}))
    for aid in appointments_of(task):
        if aid in before:
            continue
        appt = _current(repo, "Appointment", aid)
        if appt is None or case.request_id not in references(
            appt.get("basedOn") or [], "ServiceRequest"
        ):
            raise _refuse(
                422,
                "coordination-appointment",
                f"Appointment/{aid} is not an appointment of this case (basedOn "
                f"ServiceRequest/{case.request_id})",
                "Task.output",
            )


def _stamp(task: dict[str, Any], old: dict[str, Any] | None) -> None:
    """lastModified always; executionPeriod from the start of the work to its end."""
    moment = fhir_instant(now())
    task["lastModified"] = moment
    status = task.get("status")
    if old is None or status == old.get("status"):
        return
    period = dict(task.get("executionPeriod") or {})
    if status == "in-progress":
        period.setdefault("start", moment)
    elif status not in OPEN:
        period["end"] = moment
    if period:
        task["executionPeriod"] = period


# ----------------------------------------------------------------------------- Task writes
def guard_task(event: WriteEvent) -> None:
    if event.resource_type != "Task":
        return
    new, old = event.resource, event.previous
    if service_of(new) is None and service_of(old) is None:
        return
    actor = actor_of(event.repository.security)
    repo = _system(event)
    if new is None:
        if actor.role is not None:  # the policy refuses it first; kept for defence in depth
            raise _refuse(403, "coordination-not-deleted", "cancel a coordination Task instead")
        return
    service = service_of(new)
    if old is None:
        _guard_create(event, repo, actor, new, str(service))
        return
    case = case_of_part_of(repo, old)
    if case is None or actor.role is None:
        _violations(check_lifecycle(new, old))
        if actor.role is None:
            return
        raise _refuse(422, "coordination-part-of", "its case is gone", "Task.partOf")
    refusal = check_party_change(_party(actor, case), new, old)
    if refusal is not None:
        raise _refuse(*refusal, "Task")
    _violations(check_lifecycle(new, old))
    if new.get("owner") != old.get("owner"):
        _check_owner(repo, new)
    _check_outputs(repo, case, new, old)
    _stamp(new, old)


def _guard_create(
    event: WriteEvent, repo: Repository, actor: Actor, task: dict[str, Any], service: str
) -> None:
    case = case_of_part_of(repo, task)
    if actor.role is None:  # trusted integrations and the seed: their record, checked
        if case is None:
            raise _refuse(
                422, "coordination-part-of", "partOf must name the case Task", "Task.partOf"
            )
        _violations(check_lifecycle(task, None))
        return
    if case is None:
        raise _refuse(
            422,
            "coordination-part-of",
            "a coordination Task is partOf exactly one second-opinion case Task",
            "Task.partOf",
        )
    party = _party(actor, case)
    if party not in (REQUESTER, COORDINATOR):
        raise _refuse(
            403,
            "coordination-own-case",
            "a clinic requests coordination only for a case it submitted",
            "Task.partOf",
        )
    if party == REQUESTER and not requestable(service):
        raise _refuse(
            422,
            "coordination-not-requestable",
            f"{service} is not a service a clinic requests",
            "Task.code",
        )
    if case.status in CLOSED_CASE:
        raise _refuse(
            422,
            "coordination-case-closed",
            f"the case is {case.status}: no coordination can be requested for it",
            "Task.partOf",
        )
    if party == REQUESTER:
        task.pop("owner", None)  # the coordinators' queue, not the clinic's choice
    elif task.get("owner") is not None:
        _check_owner(repo, task)
    patient = case.patient
    assert patient is not None
    fill_request(
        task,
        case_task_id=case.task_id,
        request_id=case.request_id,
        patient=patient,
        requester=_requester(actor, case, task),
        owner=task.get("owner") or network_owner(repo, case, actor),
        authored=fhir_instant(now()),
    )


# ---------------------------------------------------------------------- consequences of a case
def _coordination_tasks(repo: Repository, case_task_id: str) -> list[dict[str, Any]]:
    found = repo.find_visible("Task", {"idx.part-of": f"Task/{case_task_id}"}, limit=200)
    return [dict(d["resource"]) for d in found if service_of(d["resource"]) is not None]


def follow_up_id(case_task_id: str) -> str:
    """Deterministic, so a second completion (or a race) cannot make a second follow-up."""
    return f"{case_task_id}-follow-up"[:64]


def follow_case(event: WriteEvent) -> None:
    """The case Task completed → a follow-up; closed otherwise → its open services cancelled."""
    task, old = event.resource, event.previous
    if event.resource_type != "Task" or task is None or old is None:
        return
    if task.get("partOf") or service_of(task) is not None or not is_second_opinion_task(task):
        return
    status = task.get("status")
    if status == old.get("status"):
        return
    repo = _system(event)
    if status == "completed":
        _open_follow_up(repo, event.resource_id)
    elif status in CLOSED_CASE:
        for sub in _coordination_tasks(repo, event.resource_id):
            if sub.get("status") in OPEN:
                sub["status"] = "cancelled"
                sub["statusReason"] = {"text": f"the second-opinion case was {status}"}
                _stamp(sub, {"status": "open"})
                repo.update("Task", str(sub["id"]), sub)


def _open_follow_up(repo: Repository, case_task_id: str) -> None:
    if any(service_of(t) == FOLLOW_UP for t in _coordination_tasks(repo, case_task_id)):
        return
    rid = follow_up_id(case_task_id)
    if _current(repo, "Task", rid) is not None:
        return
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [service_coding(FOLLOW_UP)]},
        "description": "Follow up with the member after the final second-opinion report",
        "partOf": [{"reference": f"Task/{case_task_id}"}],
    }
    case = case_of_part_of(repo, task)
    if case is None or case.patient is None:
        return
    owner = network_owner(repo, case, None)
    fill_request(
        task,
        case_task_id=case.task_id,
        request_id=case.request_id,
        patient=case.patient,
        requester=owner,
        owner=owner,
        authored=fhir_instant(now()),
    )
    repo.create("Task", task, rid=rid)


# ------------------------------------------------------------------------------ Appointments
def _case_of_appointment(repo: Repository, appt: dict[str, Any]) -> CaseFile | None:
    for rid in references(appt.get("basedOn") or [], "ServiceRequest"):
        case = load_case(repo, rid)
        if case is not None:
            return case
    return None


def _fill_appointment(case: CaseFile, appt: dict[str, Any]) -> None:
    """The consultation's participants: the member, the assigned expert, the requester."""
    if not case.owner:
        raise _refuse(
            422,
            "appointment-needs-expert",
            "a consultation with the expert needs an expert assigned to the case",
            "Appointment.participant",
        )
    if not appt.get("serviceType"):
        appt["serviceType"] = [{"coding": [service_coding(VIDEO)]}]
    wanted = [f"Patient/{case.patient}", f"PractitionerRole/{case.owner}"]
    requester = (case.request.get("requester") or {}).get("reference")
    if isinstance(requester, str):
        wanted.append(requester)
    participants = list(appt.get("participant") or [])
    present = {(p.get("actor") or {}).get("reference") for p in participants}
    for ref in wanted:
        if ref not in present:
            participants.append(
                {"actor": {"reference": ref}, "required": "required", "status": "needs-action"}
            )
    appt["participant"] = participants
    if appt.get("status") == "booked" and not (appt.get("start") and appt.get("end")):
        raise _refuse(
            422,
            "appointment-times",
            "a booked consultation needs its start and end",
            "Appointment.start",
        )


def guard_appointment(event: WriteEvent) -> None:
    if event.resource_type != "Appointment":
        return
    new, old = event.resource, event.previous
    repo = _system(event)
    # The stored version decides first: dropping basedOn must not take a consultation out of
    # these rules.
    case = _case_of_appointment(repo, old or {}) or _case_of_appointment(repo, new or {})
    if case is None:
        return  # not a consultation of a case: the ordinary party rules apply
    actor = actor_of(event.repository.security)
    if actor.role is None:
        return
    if actor.role == "coordinator":
        if new is not None:
            _fill_appointment(case, new)
        return
    if new is None or old is None:
        raise _refuse(
            403,
            "appointment-by-coordinator",
            "the service's coordinator books and cancels consultations",
            "Appointment",
        )
    mine: set[str] = set()
    if actor.role == "specialist":
        mine = {f"PractitionerRole/{r}" for r in actor.roles}
    elif actor.role == "clinic" and actor.organization in case.orgs():
        requester = (case.request.get("requester") or {}).get("reference")
        mine = {r for r in (requester, actor.principal.user if actor.principal else None) if r}
    refusal = check_participant_change(mine, new, old)
    if refusal is not None:
        raise _refuse(*refusal, "Appointment.participant")


def follow_appointment(event: WriteEvent) -> None:
    """A consultation naming its video-consultation Task (``supportingInformation``) becomes
    that Task's output, so the requester finds the booking from the request it made."""
    appt = event.resource
    if event.resource_type != "Appointment" or appt is None:
        return
    repo = _system(event)
    case = _case_of_appointment(repo, appt)
    if case is None:
        return
    for tid in references(appt.get("supportingInformation") or [], "Task"):
        task = _current(repo, "Task", tid)
        if task is None or service_of(task) != VIDEO or task.get("status") not in OPEN:
            continue
        if case_of_part_of(repo, task) is None or event.resource_id in appointments_of(task):
            continue
        task["output"] = [
            *(task.get("output") or []),
            {
                "type": {"text": "Appointment"},
                "valueReference": {"reference": f"Appointment/{event.resource_id}"},
            },
        ]
        _stamp(task, task)
        repo.update("Task", tid, task)


def install(hooks: Hooks) -> None:
    # First (before profile validation): the guards fill what the server sets (owner, for,
    # focus, the profile claim), which the coordination-task profile requires.
    for hook in (guard_appointment, guard_task):
        hooks.register(HookPoint.PRE_WRITE, hook, first=True)
    for hook in (follow_case, follow_appointment):
        hooks.register(HookPoint.PRE_COMMIT, hook)
