"""Medical coordination services of a second-opinion case, as pure rules (docs/coordination.md).

A coordination Task (profile ``coordination-task``) is one service a member or clinic asked
for: an appointment, medical transport, a hotel, travel tickets, passport/visa information, fee
negotiation, a video consultation with the expert, or the follow-up the server opens after the
final report. What makes a Task one is its ``code`` from the ``coordination-service`` CodeSystem
(which services a party may request and their default due dates are properties there: data,
not code).

Parties, as the rules below name them:
* ``requester``: the clinic that submitted the case (the requester of its ServiceRequest);
* ``coordinator``: the service's medical coordinators, who do the work;
* ``trusted``: a trusted integration (imports, the seed) or the server itself;
* anyone else (another clinic, a specialist, an insurer) may never write one.

Decisions (each says why):
* The lifecycle is the R4 Task one, narrowed: ``requested → accepted → in-progress →
  completed``, with ``rejected`` (only from requested: the coordinator declines the service),
  ``cancelled`` (any open state) and ``failed`` (once accepted: e.g. no hotel to be had) as the
  other ends. ``on-hold``/``ready``/``draft`` are not used: a coordinator either works on a
  service or says why not, and the requester needs one unambiguous state to read.
* The requesting clinic may only cancel, and only before the work starts (requested or
  accepted): afterwards money may have been spent on its behalf, so it asks the coordinator.
* Only a coordinator (or trusted) moves the status, assigns the owner and writes the output:
  the output is the coordinator's answer (a booking reference, the Appointment).
* A finished service says how: ``completed`` needs an output (the requester must be able to
  see *what* was booked), ``rejected`` and ``failed`` need a ``statusReason``. A completed
  video consultation needs its Appointment among the outputs.
* What identifies the request never changes after creation (code, partOf, focus, for,
  requester, intent, authoredOn): a changed service is a new request.
"""

from __future__ import annotations

from typing import Any

from profiles.conformance import CS_COORDINATION, PROFILE_COORDINATION_TASK
from profiles.terminology import codes, concept, property_values
from resources.calendar import business_days_after, fhir_day
from resources.domain import Violation, codings, local_id, references

VIDEO = "video-consultation"
FOLLOW_UP = "follow-up"
REQUESTER = "requester"
COORDINATOR = "coordinator"
TRUSTED = "trusted"

TERMINAL = frozenset({"completed", "cancelled", "failed", "rejected", "entered-in-error"})
OPEN = frozenset({"requested", "accepted", "in-progress"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"in-progress", "cancelled", "failed"}),
    "in-progress": frozenset({"completed", "cancelled", "failed"}),
}
# Set once at creation (by the server) and never changed.
IMMUTABLE = ("code", "partOf", "focus", "for", "requester", "intent", "authoredOn")
# What a requesting clinic may change: the status (to cancelled) and notes for the coordinator.
REQUESTER_MAY_CHANGE = frozenset({"status", "statusReason", "note", "meta", "lastModified"})
REQUESTER_CANCELS_FROM = frozenset({"requested", "accepted"})

Refusal = tuple[int, str, str]  # (HTTP status, rule code, explanation)


def service_of(task: dict[str, Any] | None) -> str | None:
    """The coordination service code of a Task, None when it is not a coordination Task."""
    if not task or task.get("resourceType", "Task") != "Task":
        return None
    for c in codings(task.get("code")):
        if c.get("system") == CS_COORDINATION and isinstance(c.get("code"), str):
            return str(c["code"])
    return None


def is_coordination_task(task: dict[str, Any] | None) -> bool:
    return service_of(task) is not None


def known_services() -> list[str]:
    return codes(CS_COORDINATION)


def requestable(service: str) -> bool:
    """May a party request this service (False: the server creates it, or it is unknown)?"""
    return concept(CS_COORDINATION, service) is not None and True in property_values(
        CS_COORDINATION, service, "requestable"
    )


def default_due(service: str, requested_on: Any) -> str | None:
    """The default due day (ISO date): the service's ``due-business-days`` after the request."""
    day = fhir_day(requested_on, end=False)
    found = property_values(CS_COORDINATION, service, "due-business-days")
    if day is None or not found or not isinstance(found[0], int):
        return None
    return business_days_after(day, found[0]).isoformat()


def service_coding(service: str) -> dict[str, Any]:
    c = concept(CS_COORDINATION, service) or {}
    return {"system": CS_COORDINATION, "code": service, "display": c.get("display", service)}


def transition_allowed(old: str, new: str) -> bool:
    if old == new:
        return True
    if new == "entered-in-error":
        return old != "entered-in-error"
    return new in TRANSITIONS.get(old, frozenset())


def appointments_of(task: dict[str, Any]) -> list[str]:
    return references([o.get("valueReference") for o in task.get("output") or []], "Appointment")


def check_lifecycle(task: dict[str, Any], previous: dict[str, Any] | None) -> list[Violation]:
    """Every lifecycle rule (422) the new version of a coordination Task breaks."""
    out: list[Violation] = []
    status = str(task.get("status"))
    if status not in TERMINAL | OPEN:
        out.append(
            (
                f"a coordination Task is never {status} (rule coordination-transition; "
                f"statuses: {', '.join(sorted(OPEN | TERMINAL))})",
                "Task.status",
            )
        )
    if previous is not None:
        old = str(previous.get("status"))
        if not transition_allowed(old, status):
            allowed = sorted(TRANSITIONS.get(old, frozenset()))
            out.append(
                (
                    f"a coordination Task cannot move from {old} to {status} (rule "
                    "coordination-transition; "
                    + (f"allowed: {', '.join(allowed)})" if allowed else f"{old} is final)"),
                    "Task.status",
                )
            )
        for name in IMMUTABLE:
            if task.get(name) != previous.get(name):
                out.append(
                    (
                        f"Task.{name} of a coordination Task is set when it is requested and "
                        "never changes (rule coordination-immutable): request a new service",
                        f"Task.{name}",
                    )
                )
    if status == "completed" and not task.get("output"):
        out.append(
            (
                "a completed coordination Task needs an output saying what was arranged "
                "(rule coordination-output)",
                "Task.output",
            )
        )
    if status == "completed" and service_of(task) == VIDEO and not appointments_of(task):
        out.append(
            (
                "a completed video consultation needs its Appointment as an output "
                "(rule video-consultation-appointment)",
                "Task.output",
            )
        )
    if status in ("rejected", "failed") and not task.get("statusReason"):
        out.append(
            (
                f"a {status} coordination Task needs a statusReason telling the requester why "
                "(rule coordination-reason)",
                "Task.statusReason",
            )
        )
    return out


def check_party_change(
    party: str, task: dict[str, Any], previous: dict[str, Any]
) -> Refusal | None:
    """May ``party`` write this update? 403 when it may never, 422 when not from this status.

    Party refusals come before lifecycle ones (a party that may not act learns nothing)."""
    if party in (COORDINATOR, TRUSTED):
        return None
    if party != REQUESTER:
        return (
            403,
            "coordination-not-yours",
            "only the requesting clinic or a coordinator writes a coordination Task",
        )
    changed = {k for k in set(task) | set(previous) if task.get(k) != previous.get(k)}
    extra = sorted(changed - REQUESTER_MAY_CHANGE)
    new, old = task.get("status"), previous.get("status")
    if extra or (new != old and new != "cancelled"):
        what = ", ".join(extra) if extra else f"status {new}"
        return (
            403,
            "coordination-by-coordinator",
            f"the requesting clinic may only cancel a coordination request (or add a note); "
            f"{what} is the coordinator's to change",
        )
    if new == "cancelled" and old != new and old not in REQUESTER_CANCELS_FROM:
        return (
            422,
            "coordination-cancel-after-start",
            f"the coordinator has started the work (the Task is {old}): ask the coordinator to "
            "cancel it",
        )
    return None


def fill_request(
    task: dict[str, Any],
    *,
    case_task_id: str,
    request_id: str,
    patient: str,
    requester: dict[str, Any],
    owner: dict[str, Any],
    authored: str,
) -> dict[str, Any]:
    """What the server sets on a new coordination request, whatever the client sent.

    Kept from the client: code, input (the details), note, description, the due date
    (restriction.period.end) when it sent one, and owner when a coordinator names a colleague.
    """
    service = service_of(task)
    assert service is not None
    meta = dict(task.get("meta") or {})
    claimed = [p for p in meta.get("profile") or [] if p != PROFILE_COORDINATION_TASK]
    meta["profile"] = [PROFILE_COORDINATION_TASK, *claimed]
    task["meta"] = meta
    task["status"] = "requested"
    task["intent"] = "order"
    task["partOf"] = [{"reference": f"Task/{case_task_id}"}]
    task["focus"] = {"reference": f"ServiceRequest/{request_id}"}
    task["for"] = {"reference": f"Patient/{patient}"}
    task["authoredOn"] = authored
    task["lastModified"] = authored
    task["requester"] = requester
    task.setdefault("owner", owner)
    for k in ("output", "businessStatus", "statusReason", "executionPeriod", "basedOn"):
        task.pop(k, None)
    period = dict((task.get("restriction") or {}).get("period") or {})
    if not period.get("end"):
        due = default_due(service, authored)
        if due:
            period["end"] = due
    if period:
        task["restriction"] = {**(task.get("restriction") or {}), "period": period}
    return task


def owner_kind(task: dict[str, Any]) -> str | None:
    """``PractitionerRole`` or ``Organization`` (the two owners the profile allows), else None."""
    owner = task.get("owner")
    for kind in ("PractitionerRole", "Organization"):
        if local_id(owner, kind):
            return kind
    return None


# --------------------------------------------------------------------------- appointments
PARTICIPANT_STATUSES = frozenset({"accepted", "declined", "tentative", "needs-action"})


def participant_actors(appointment: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for p in appointment.get("participant") or []:
        ref = (p.get("actor") or {}).get("reference")
        if isinstance(ref, str):
            out.append(ref)
    return out


def check_participant_change(
    actor_refs: set[str], appointment: dict[str, Any], previous: dict[str, Any]
) -> Refusal | None:
    """A participant (not a coordinator) may change only its own ``participant.status``.

    Why so narrow: the coordinator owns the booking (time, place, link, who takes part); a
    participant answers it (accept, decline, tentative) and the coordinator reschedules.
    """

    def strip(a: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in a.items() if k not in ("meta", "participant")}
        out["participant"] = [
            {k: v for k, v in p.items() if k != "status"}
            if (p.get("actor") or {}).get("reference") in actor_refs
            else p
            for p in a.get("participant") or []
        ]
        return out

    mine = [
        p
        for p in appointment.get("participant") or []
        if (p.get("actor") or {}).get("reference") in actor_refs
    ]
    if not mine:
        return (
            403,
            "appointment-not-a-participant",
            "only the coordinator or a participant answers this appointment",
        )
    if strip(appointment) != strip(previous):
        return (
            403,
            "appointment-by-coordinator",
            "a participant may only change its own participant.status; the coordinator "
            "reschedules or cancels the appointment",
        )
    for p in mine:
        if p.get("status") not in PARTICIPANT_STATUSES:
            return (
                422,
                "appointment-participant-status",
                f"participant.status must be one of {', '.join(sorted(PARTICIPANT_STATUSES))}",
            )
    return None
