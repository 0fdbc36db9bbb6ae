"""``Task/[id]/$cancel``, ``$decline``, ``$reassign``, ``$add-expert``: the case actions that are
not a resource write of the party's own (docs/cases.md).

Why operations and not PATCHes of the Task: the Task is the server's record of the case (only
the server changes ``Task.status``); these are requests to the server to move it, each with its
own rule of who may ask and when, its reason recorded on the case's Provenance, and its
consequences (the next match, the request revoked) written in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from profiles.conformance import PROFILE_EXPERT, PROFILE_TASK
from resources.domain import TASK_CODE, local_id
from resources.matching import candidate_from, need_from, rank
from server.cases import workflow
from server.cases.actor import Actor, actor_of
from server.cases.store import CaseFile, coding, load_case_of_task, transition_record
from server.errors import FhirError, Issue, operation_outcome
from server.operations import Invocation, Operation, load_definition
from server.operations.links import local_key
from server.repository import Repository
from server.timeutil import fhir_instant, now


def _case(tx: Repository, rid: str) -> CaseFile:
    case = load_case_of_task(tx.unrestricted(), rid)
    if case is None:
        raise FhirError(422, "business-rule", f"Task/{rid} is not a second-opinion case")
    if case.task_id != rid:
        raise FhirError(
            422,
            "business-rule",
            f"Task/{rid} is a board sub-Task of Task/{case.task_id}: act on the case Task",
        )
    return case


def _reason(call: Invocation) -> str | None:
    value = call.params.first("reason")
    return str(value).strip()[:1000] or None if isinstance(value, str) else None


def _run(call: Invocation, work: Any) -> dict[str, Any]:
    """Visibility first (404 for a Task the caller cannot see), then the action in one
    transaction, and the Task as the caller sees it afterwards."""
    assert call.rid is not None
    rid = call.rid
    call.repo.read("Task", rid)
    result_id: str = call.repo.transaction(
        lambda tx: work(tx.unrestricted(), _case(tx, rid), actor_of(tx.security))
    )
    try:
        stored = call.repo.read("Task", result_id).resource
    except FhirError as exc:
        if exc.status != 404:
            raise
        # Declined or reassigned away: the case is no longer the caller's to see.
        return operation_outcome(
            [
                Issue(
                    "informational",
                    f"done; Task/{result_id} is no longer visible to you",
                    "information",
                )
            ]
        )
    assert stored is not None
    return stored


def _expert(repo: Repository, call: Invocation, case: CaseFile, *, any_specialty: bool) -> str:
    """The expert named by the ``expert`` parameter, if they may take this case."""
    key = local_key(call.params.first("expert"), call.base)
    if key is None or not key.startswith("PractitionerRole/"):
        raise FhirError(
            400,
            "invalid",
            "the 'expert' parameter must reference a PractitionerRole on this server",
            expression=["Parameters.parameter('expert')"],
        )
    role_id = key.split("/", 1)[1]
    found = dict(repo.fetch_visible([key]))
    role = found.get("PractitionerRole", {}).get("resource") if found else None
    if role is None or PROFILE_EXPERT not in ((role.get("meta") or {}).get("profile") or []):
        raise FhirError(422, "business-rule", f"{key} is not an expert of the network")
    pid = local_id(role.get("practitioner"), "Practitioner")
    requester = local_key(case.request.get("requester")) or ""
    wanted = [
        f"Location/{lid}"
        for lid in (local_id(r, "Location") for r in role.get("location") or [])
        if lid
    ]
    if pid:
        wanted.append(f"Practitioner/{pid}")
    if case.patient:
        wanted.append(f"Patient/{case.patient}")
    if requester:
        wanted.append(requester)
    linked = {f"{t}/{d['_id']}": d["resource"] for t, d in repo.fetch_visible(wanted)}
    candidate = candidate_from(
        role,
        linked.get(f"Practitioner/{pid}"),
        [v for k, v in linked.items() if k.startswith("Location/")],
        open_cases=0,
        today=now().date(),
    )
    need = need_from(
        case.request,
        workflow.condition_match(repo, case.request),
        linked.get(f"Patient/{case.patient}"),
        linked.get(requester) if requester.startswith("PractitionerRole/") else None,
    )
    if any_specialty:
        # A coordinator's own pick: their judgement on the specialty, the hard rules still hold.
        need = replace(need, specialties=candidate.specialties)
    if not rank([candidate], need):
        raise FhirError(
            422,
            "business-rule",
            f"{key} cannot take this case: inactive, on leave, outside the specialty, or a "
            "conflict of interest with the requester (rule expert-not-eligible)",
        )
    if role_id == case.owner:
        raise FhirError(422, "business-rule", f"{key} already holds this case")
    return role_id


def cancel(call: Invocation) -> dict[str, Any]:
    def work(repo: Repository, case: CaseFile, actor: Actor) -> str:
        return workflow.cancel(repo, case, actor, _reason(call)).task_id

    return _run(call, work)


def _next_match(
    call: Invocation, repo: Repository, case: CaseFile, actor: Actor, action: str
) -> str:
    """Hand the case to the next match other than its current expert (or back to the queue)."""
    exclude = frozenset({case.owner}) if case.owner else frozenset()
    return workflow.match(
        repo,
        case,
        now().date(),
        exclude=exclude,
        action=action,
        actor=actor,
        reason=_reason(call),
    ).task_id


def decline(call: Invocation) -> dict[str, Any]:
    def work(repo: Repository, case: CaseFile, actor: Actor) -> str:
        workflow.permit(case, "decline", actor)
        return _next_match(call, repo, case, actor, "decline")

    return _run(call, work)


def reassign(call: Invocation) -> dict[str, Any]:
    def work(repo: Repository, case: CaseFile, actor: Actor) -> str:
        workflow.permit(case, "reassign", actor)
        if call.params.first("expert") is None:
            return _next_match(call, repo, case, actor, "reassign")
        chosen = _expert(repo, call, case, any_specialty=True)

        def assign(t: dict[str, Any]) -> None:
            t["owner"] = {"reference": f"PractitionerRole/{chosen}"}
            t["status"] = "accepted"
            t["businessStatus"] = {"coding": [coding("expert-assigned")]}
            t.pop("executionPeriod", None)

        return workflow.perform(
            repo, case, "reassign", actor, reason=_reason(call), edit=assign
        ).task_id

    return _run(call, work)


def add_expert(call: Invocation) -> dict[str, Any]:
    def work(repo: Repository, case: CaseFile, actor: Actor) -> str:
        workflow.permit(case, "add-expert", actor)
        chosen = _expert(repo, call, case, any_specialty=True)
        when = now()
        sub: dict[str, Any] = {
            "resourceType": "Task",
            "meta": {"profile": [PROFILE_TASK]},
            "partOf": [{"reference": f"Task/{case.task_id}"}],
            "basedOn": [{"reference": f"ServiceRequest/{case.request_id}"}],
            "focus": {"reference": f"ServiceRequest/{case.request_id}"},
            "status": "accepted",
            "businessStatus": {"coding": [coding("expert-assigned")]},
            "intent": "order",
            "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
            "for": case.request["subject"],
            "authoredOn": fhir_instant(when),
            "lastModified": fhir_instant(when),
            "owner": {"reference": f"PractitionerRole/{chosen}"},
            "description": "Board review: contribution to a multi-specialty second opinion",
        }
        for existing in repo.find_visible(
            "Task", {"idx.part-of": f"Task/{case.task_id}"}, limit=100
        ):
            if local_id(existing["resource"].get("owner"), "PractitionerRole") == chosen:
                raise FhirError(
                    422, "business-rule", f"PractitionerRole/{chosen} is already on the board"
                )
        stored = repo.create("Task", sub)
        repo.create(
            "Provenance",
            transition_record(
                case,
                case.version,
                "board-member-added",
                actor,
                _reason(call),
                when,
            )
            | {
                "entity": [
                    {"role": "source", "what": {"reference": f"ServiceRequest/{case.request_id}"}},
                    {"role": "derivation", "what": {"reference": f"Task/{stored.id}"}},
                ]
            },
        )
        return stored.id

    return _run(call, work)


CANCEL = Operation(load_definition("cancel.json"), cancel)
DECLINE = Operation(load_definition("decline.json"), decline)
REASSIGN = Operation(load_definition("reassign.json"), reassign)
ADD_EXPERT = Operation(load_definition("add-expert.json"), add_expert)
