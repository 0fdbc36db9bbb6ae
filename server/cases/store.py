"""Loading a case and writing its transitions (each one a Task version plus a Provenance).

All reads and writes here go through a repository on the server's own account bound to the
caller's transaction (``Repository.unrestricted``): the engine's bookkeeping is not something the
caller must be allowed to write, and it commits with the caller's write or not at all.

Why a Provenance per transition: turnaround, queue age and on-hold time must come from when the
case actually moved and who moved it, not from ``meta.lastUpdated`` (any note edit changes
that). Provenance is the standard, searchable record of exactly that (``Provenance?target=
Task/x``); its ``target`` also names the Patient, which puts the record in the patient
compartment (CompartmentDefinition patient: Provenance.target), so the requesting clinic and the
assigned expert can read their case's timeline and insurers cannot.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from profiles.conformance import CS_BUSINESS_STATUS, CS_TRANSITION, PROFILE_TASK
from profiles.terminology import concept
from resources.domain import local_id
from resources.servicerequest import is_second_opinion_request
from resources.task import business_status_code
from server.cases.actor import Actor
from server.errors import FhirError
from server.repository import Repository
from server.timeutil import fhir_instant, now

OPEN = frozenset({"requested", "accepted", "ready", "in-progress", "on-hold"})
MAX_CASE_TASKS = 50


@dataclass
class CaseFile:
    """A case as the engine sees it: the case Task and the request it fulfils."""

    task: dict[str, Any]
    version: int
    request: dict[str, Any]
    request_acl: dict[str, Any] = field(default_factory=dict)
    task_acl: dict[str, Any] = field(default_factory=dict)

    @property
    def task_id(self) -> str:
        return str(self.task["id"])

    @property
    def request_id(self) -> str:
        return str(self.request["id"])

    @property
    def status(self) -> str:
        return str(self.task.get("status"))

    @property
    def business_status(self) -> str | None:
        return business_status_code(self.task)

    @property
    def owner(self) -> str | None:
        return local_id(self.task.get("owner"), "PractitionerRole")

    @property
    def patient(self) -> str | None:
        return local_id(self.request.get("subject"), "Patient")

    def orgs(self) -> set[str]:
        """The clinics the case belongs to (the request's stored owners)."""
        return set(self.request_acl.get("orgs", []))


def coding(code: str) -> dict[str, Any]:
    c = concept(CS_BUSINESS_STATUS, code)
    return {"system": CS_BUSINESS_STATUS, "code": code, "display": (c or {}).get("display", code)}


def _docs(repo: Repository, rtype: str, flt: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from repo.find_visible(rtype, flt, sort=[("_id", 1)], limit=MAX_CASE_TASKS)


def case_tasks(repo: Repository, request_id: str) -> list[dict[str, Any]]:
    """Stored Task documents whose focus is the request (the case Task and board sub-Tasks)."""
    return list(_docs(repo, "Task", {"idx.focus": f"ServiceRequest/{request_id}"}))


def load_case(repo: Repository, request_id: str) -> CaseFile | None:
    """The case of a second-opinion request (its Task without ``partOf``), or None."""
    request_doc = next(_docs(repo, "ServiceRequest", {"_id": request_id}), None)
    if request_doc is None or not is_second_opinion_request(request_doc["resource"]):
        return None
    for doc in case_tasks(repo, request_id):
        task = doc["resource"]
        if not task.get("partOf"):
            return CaseFile(
                copy.deepcopy(task),
                int(doc["vid"]),
                copy.deepcopy(request_doc["resource"]),
                request_doc.get("acl") or {},
                doc.get("acl") or {},
            )
    return None


def load_case_of_task(repo: Repository, task_id: str) -> CaseFile | None:
    doc = next(_docs(repo, "Task", {"_id": task_id}), None)
    if doc is None:
        return None
    task = doc["resource"]
    parent = local_id(task.get("partOf", [None])[0] if task.get("partOf") else None, "Task")
    if parent is not None:
        return load_case_of_task(repo, parent)
    rid = local_id(task.get("focus"), "ServiceRequest")
    return load_case(repo, rid) if rid else None


def transition_record(
    case: CaseFile,
    version: int,
    activity: str,
    actor: Actor,
    reason: str | None,
    when: datetime,
    removed: str | None = None,
) -> dict[str, Any]:
    concept_ = concept(CS_TRANSITION, activity)
    record: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": f"Task/{case.task_id}/_history/{version}"}],
        "recorded": fhir_instant(when),
        "activity": {
            "coding": [
                {
                    "system": CS_TRANSITION,
                    "code": activity,
                    "display": (concept_ or {}).get("display", activity),
                }
            ]
        },
        "agent": [{"who": actor.reference()}],
        "entity": [{"role": "source", "what": {"reference": f"ServiceRequest/{case.request_id}"}}],
    }
    if removed:  # the expert taken off the case (decline, reassign)
        record["entity"].append({"role": "removal", "what": {"reference": removed}})
    if case.patient:
        record["target"].append({"reference": f"Patient/{case.patient}"})
    if reason:
        record["reason"] = [{"text": reason}]
    return record


def save(
    repo: Repository,
    case: CaseFile,
    activity: str,
    actor: Actor,
    *,
    reason: str | None = None,
    when: datetime | None = None,
    removed: str | None = None,
) -> CaseFile:
    """Write ``case.task`` as the next version (optimistic: a concurrent move → 409) and its
    Provenance; returns the case with the new version."""
    moment = when or now()
    task = case.task
    task["lastModified"] = fhir_instant(moment)
    try:
        stored, _ = repo.update("Task", case.task_id, task, if_match=case.version)
    except FhirError as exc:
        if exc.status == 412:
            raise FhirError(
                409, "conflict", f"Task/{case.task_id} moved concurrently; retry"
            ) from exc
        raise
    assert stored.resource is not None
    case.task, case.version = copy.deepcopy(stored.resource), stored.version_id
    repo.create(
        "Provenance",
        transition_record(case, stored.version_id, activity, actor, reason, moment, removed),
    )
    return case


def open_task(
    repo: Repository,
    task: dict[str, Any],
    request: dict[str, Any],
    steps: list[tuple[str, Actor, str | None]],
    when: datetime,
) -> CaseFile:
    """Store a new case Task (version 1) and a Provenance per step that led to it (``steps``:
    activity, actor, reason), a millisecond apart so the timeline keeps their order."""
    task.setdefault("meta", {"profile": [PROFILE_TASK]})
    task["lastModified"] = fhir_instant(when)
    stored = repo.create("Task", task, rid=task.get("id"))
    assert stored.resource is not None
    case = CaseFile(copy.deepcopy(stored.resource), stored.version_id, copy.deepcopy(request))
    for i, (activity, actor, reason) in enumerate(steps):
        moment = when + timedelta(milliseconds=i)
        repo.create("Provenance", transition_record(case, 1, activity, actor, reason, moment))
    return case


def transitions(repo: Repository, task_id: str) -> list[dict[str, Any]]:
    """The case's Provenance records, oldest first."""
    found = repo.find_visible("Provenance", {"idx.target": f"Task/{task_id}"}, limit=10_000)
    return sorted((d["resource"] for d in found), key=lambda r: str(r.get("recorded")))
