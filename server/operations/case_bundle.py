"""``ServiceRequest/[id]/$case-bundle``: the case file a specialist pulls to review a case.

Why a searchset (not a collection) Bundle: it has a standard place for the request itself
(``search.mode = match``), for what came with it (``include``) and for what was left out
(``outcome``: an OperationOutcome listing links that are missing, deleted or not visible), and
it is what ``$everything`` returns too, so clients handle both the same way.

What is in it (DOMAIN.md): the request; its Task(s) (``basedOn`` or ``focus`` → the request);
the Patient (``subject``); the Coverage(s) in ``insurance``; the ``reasonReference`` resources
(Conditions); everything in ``supportingInfo`` plus the ``result`` Observations and
``imagingStudy`` of supporting DiagnosticReports; Communications ``basedOn`` the request; and
second-opinion reports (DiagnosticReport ``basedOn`` the request), and what the Communications
carry (``payload.contentReference``: the documents a clinic attaches to its reply). Nothing
else: directory data (requester, experts) is read separately and is not case data.

Pulling the case file is also how the review starts (docs/cases.md): the assigned expert's first
pull moves the case to ``in-progress`` (``executionPeriod.start``), recorded like any transition,
before the bundle is assembled so the Task in it shows the new state.
"""

from __future__ import annotations

from typing import Any

from server.cases import workflow
from server.cases.actor import actor_of
from server.cases.store import load_case
from server.errors import Issue, operation_outcome
from server.operations import Invocation, Operation, load_definition
from server.operations.links import follow, pointing_at

# (type, reference search parameters that point at the request); resolved on the stored index.
POINTING_AT_REQUEST: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Task", ("based-on", "focus")),
    ("Communication", ("based-on",)),
    ("DiagnosticReport", ("based-on",)),
)


def _refs(resource: dict[str, Any], element: str) -> list[tuple[str, Any]]:
    """``(FHIRPath expression, reference)`` for a 0..1 or 0..* Reference element."""
    value = resource.get(element)
    rtype = resource.get("resourceType", "")
    if isinstance(value, list):
        return [(f"{rtype}.{element}[{i}]", v) for i, v in enumerate(value)]
    return [(f"{rtype}.{element}", value)] if value is not None else []


def case_bundle(call: Invocation) -> dict[str, Any]:
    assert call.rid is not None
    repo, base = call.repo, call.base
    request = repo.read("ServiceRequest", call.rid).resource
    assert request is not None
    start_review_if_assigned(call)
    request_key = f"ServiceRequest/{call.rid}"
    issues: list[Issue] = []
    included: dict[str, dict[str, Any]] = {}

    def add(found: tuple[str, dict[str, Any]] | None) -> dict[str, Any] | None:
        if found is None:
            return None
        key, resource = found
        if key != request_key:
            included.setdefault(key, resource)
        return resource

    for element in ("subject", "insurance", "reasonReference", "supportingInfo"):
        for expression, ref in _refs(request, element):
            resource = add(follow(repo, ref, expression, issues, base))
            if resource is not None and resource.get("resourceType") == "DiagnosticReport":
                for sub in ("result", "imagingStudy"):
                    for sub_expr, sub_ref in _refs(resource, sub):
                        add(
                            follow(
                                repo, sub_ref, f"{expression}.resolve().{sub_expr}", issues, base
                            )
                        )
    for rtype, codes in POINTING_AT_REQUEST:
        for key, resource in pointing_at(repo, rtype, codes, request_key):
            add((key, resource))
            if rtype == "Communication":
                for i, part in enumerate(resource.get("payload") or []):
                    if isinstance(part.get("contentReference"), dict):
                        expression = f"{key}.payload[{i}].contentReference"
                        add(follow(repo, part["contentReference"], expression, issues, base))

    entries: list[dict[str, Any]] = [
        {"fullUrl": f"{base}/{request_key}", "resource": request, "search": {"mode": "match"}}
    ]
    entries += [
        {"fullUrl": f"{base}/{key}", "resource": resource, "search": {"mode": "include"}}
        for key, resource in included.items()
    ]
    if issues:
        entries.append({"resource": operation_outcome(issues), "search": {"mode": "outcome"}})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "link": [{"relation": "self", "url": f"{base}/{request_key}/$case-bundle"}],
        "entry": entries,
    }


def start_review_if_assigned(call: Invocation) -> None:
    """The assigned expert's first pull starts the review (no-op for anyone else)."""
    assert call.rid is not None
    rid = call.rid
    actor = actor_of(call.repo.security)
    if actor.role != "specialist":
        return

    def work(tx: Any) -> None:
        system = tx.unrestricted()
        case = load_case(system, rid)
        if case is not None and case.status == "accepted" and case.owner in actor.roles:
            workflow.start_review(system, case, actor)

    call.repo.transaction(work)


OPERATION = Operation(load_definition("case-bundle.json"), case_bundle)
