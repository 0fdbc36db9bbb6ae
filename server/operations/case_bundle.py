"""``ServiceRequest/[id]/$case-bundle``: the case file a specialist pulls, as a FHIR document.

Why a document (not a searchset): clinics, insurers and experts' systems exchange it as *one
record* — a Referral note (LOINC 57133-1) with coded sections a human can read and a machine can
file, every reference resolving inside it (documents.html). The contract is docs/documents.md.

What is in it (DOMAIN.md): the Composition, then the request and its Task(s) (``basedOn`` or
``focus`` → the request), the Patient (``subject``), a *summary* of the Coverage(s) in
``insurance`` with the insurer's plan, the ``reasonReference`` Conditions, every
``supportingInfo`` resource (and the ``result``/``imagingStudy``/``media`` of supporting
DiagnosticReports), the patient's treatment plan (CarePlan, MedicationRequest, Procedure, not
entered-in-error), the Communications ``basedOn`` the request and what they carry
(``payload.contentReference``), the second-opinion reports (``basedOn`` the request), and the
closure of all their references (requester, expert, organizations, locations, payor, ...).

Access is unchanged: everything is read through the caller's repository (policy + redaction);
a link the caller cannot follow (missing, deleted, not visible, not on this server) leaves the
target out, reduces the reference to display-only and is listed in the section it belonged to
and in the ``omissions`` section (``server.documents.closure``).

Pulling the case file is also how the review starts (docs/cases.md): the assigned expert's first
pull moves the case to ``in-progress`` (``executionPeriod.start``), recorded like any transition,
before the document is assembled so the Task in it shows the new state.
"""

from __future__ import annotations

import copy
from typing import Any

from server.cases import workflow
from server.cases.actor import actor_of
from server.cases.coverage_check import find_plan
from server.cases.store import load_case
from server.documents.closure import close
from server.documents.compose import (
    Section,
    composition,
    document,
    full_url,
    new_urn,
    omissions_section,
    reference_to,
    section_json,
    spec,
)
from server.documents.summary import coverage_summary
from server.errors import Issue
from server.operations import Invocation, Operation, load_definition
from server.operations.links import follow, local_key, pointing_at
from server.timeutil import fhir_instant, now

Resource = dict[str, Any]
# (type, reference search parameters that point at the request); resolved on the stored index.
POINTING_AT_REQUEST: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Task", ("based-on", "focus"), "request"),
    ("Communication", ("based-on",), "questions"),
    ("DiagnosticReport", ("based-on",), "reports"),
)


def _refs(resource: Resource, element: str) -> list[tuple[str, Any]]:
    """``(FHIRPath expression, reference)`` for a 0..1 or 0..* Reference element."""
    value = resource.get(element)
    rtype = resource.get("resourceType", "")
    if isinstance(value, list):
        return [(f"{rtype}.{element}[{i}]", v) for i, v in enumerate(value)]
    return [(f"{rtype}.{element}", value)] if value is not None else []


class CaseFile:
    """The sections being filled and the resources read so far (the closure's seeds)."""

    def __init__(self, call: Invocation, request_key: str, request: Resource) -> None:
        self.repo, self.base = call.repo, call.base
        self.sections = {k: Section(k) for k in spec()["case-file-sections"]}
        self.seeds: dict[str, Resource] = {request_key: request}
        self.failed: dict[str, Issue] = {}
        self.issues: list[Issue] = []
        self.sections["request"].add(request_key)

    def section_for(self, reference: Any, default: str) -> str:
        key = local_key(reference, self.base)
        rtype = key.split("/")[0] if key else (reference or {}).get("type")
        return str(spec()["supporting-info-section"].get(rtype, default))

    def take(self, section: str, reference: Any, expression: str) -> Resource | None:
        """Follow one link into ``section``; a failure is listed there and in the omissions."""
        key = local_key(reference, self.base)
        if key is not None and key in self.seeds:
            self.sections[section].add(key)
            return self.seeds[key]
        if key is not None and key in self.failed:
            return None
        issues: list[Issue] = []
        found = follow(self.repo, reference, expression, issues, self.base)
        if found is None:
            self.sections[section].issues += issues
            self.issues += issues
            if key is not None and issues:
                self.failed[key] = issues[0]
            return None
        key, resource = found
        self.seeds.setdefault(key, resource)
        self.sections[section].add(key)
        return resource

    def reviewer_summary(self, reference: Any) -> Resource | None:
        """The Coverage summary for an expert, whom the policy refuses the Coverage itself.

        Why served: the reviewer needs who pays, which plan and that the cover is in force
        (issue #12), and ``coverage_summary`` keeps exactly that — none of the member, policy
        or cost data the ``specialist-no-financial`` rule protects. So the server composes the
        summary on its own account, for a specialist who can read the request (this operation
        already checked), and only when the Coverage exists (a missing or deleted one stays omitted, as for anyone).
        """
        key = local_key(reference, self.base)
        issue = self.failed.get(key) if key else None
        if key is None or issue is None or not key.startswith("Coverage/"):
            return None
        if actor_of(self.repo.security).role != "specialist":
            return None
        stored = self.repo.unrestricted().current("Coverage", key.split("/")[1])
        if stored is None or stored.resource is None or stored.deleted:
            return None
        summary = coverage_summary(key, copy.deepcopy(stored.resource))
        del self.failed[key]
        self.issues = [i for i in self.issues if i is not issue]
        section = self.sections["coverage"]
        section.issues = [i for i in section.issues if i is not issue]
        self.put("coverage", key, summary)
        return summary

    def put(self, section: str, key: str, resource: Resource) -> None:
        self.seeds.setdefault(key, resource)
        self.sections[section].add(key)

    def supporting(self, resource: Resource, expression: str) -> None:
        """What a supporting DiagnosticReport cites: results, imaging studies, media."""
        if resource.get("resourceType") != "DiagnosticReport":
            return
        for sub, section in (("result", "investigations"), ("imagingStudy", "imaging")):
            for sub_expr, sub_ref in _refs(resource, sub):
                self.take(section, sub_ref, f"{expression}.resolve().{sub_expr}")
        for i, media in enumerate(resource.get("media") or []):
            where = f"{expression}.resolve().DiagnosticReport.media[{i}].link"
            self.take("imaging", media.get("link"), where)


def gather(call: Invocation, request: Resource) -> CaseFile:
    assert call.rid is not None
    request_key = f"ServiceRequest/{call.rid}"
    case = CaseFile(call, request_key, request)
    repo = call.repo
    patient = None
    for expression, ref in _refs(request, "subject"):
        if case.take("patient", ref, expression) is not None:
            patient = local_key(ref, call.base)
    for expression, ref in _refs(request, "insurance"):
        coverage = case.take("coverage", ref, expression) or case.reviewer_summary(ref)
        plan = find_plan(repo, coverage) if coverage else None
        if plan is not None:
            case.put("coverage", f"InsurancePlan/{plan['id']}", plan)
    for element, default in (("reasonReference", "problems"), ("supportingInfo", "documents")):
        for expression, ref in _refs(request, element):
            resource = case.take(case.section_for(ref, default), ref, expression)
            if resource is not None:
                case.supporting(resource, expression)
    for rtype, codes, section in POINTING_AT_REQUEST:
        for key, resource in pointing_at(repo, rtype, codes, request_key):
            case.put(section, key, resource)
            for i, part in enumerate(resource.get("payload") or []):
                if isinstance(part.get("contentReference"), dict):
                    where = f"{key}.payload[{i}].contentReference"
                    ref = part["contentReference"]
                    case.take(case.section_for(ref, "documents"), ref, where)
    if patient is not None:
        for rtype, codes in spec()["treatment-plan-types"].items():
            for key, resource in pointing_at(repo, rtype, codes, patient):
                if resource.get("status") != "entered-in-error":
                    case.put("treatment-plan", key, resource)
    return case


def case_bundle(call: Invocation) -> dict[str, Any]:
    assert call.rid is not None
    repo, base = call.repo, call.base
    repo.read("ServiceRequest", call.rid)  # 404/410 (and the policy) before the side effect
    start_review_if_assigned(call)
    request = repo.read("ServiceRequest", call.rid).resource
    assert request is not None
    case = gather(call, request)
    closure = close(repo, case.seeds, base, failed=case.failed, shape=coverage_summary)
    held = closure.resources
    sections = list(case.sections.values())
    extra = omissions_section(case.issues + closure.issues)
    if extra is not None:
        sections.append(extra)
    when = fhir_instant(now())
    urn = new_urn()
    subject_key = next(iter(case.sections["patient"].entries), None)
    requester = local_key(request.get("requester"), base)
    comp = composition(
        "case-file",
        urn=urn,
        status="final",
        subject=reference_to(subject_key, held, base, "the patient"),
        author=reference_to(requester, held, base, "the requester"),
        date=when,
        sections=[section_json(s, held, base) for s in sections],
        extra={
            "event": [{"detail": [{"reference": full_url(base, f"ServiceRequest/{call.rid}")}]}]
        },
    )
    return document(urn, comp, held, base, when)


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
