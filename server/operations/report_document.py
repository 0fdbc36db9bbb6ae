"""``DiagnosticReport/[id]/$document``: a second-opinion report as a referral-feedback document.

Why this shape: HL7 BSeR returns the recipient's answer to a referral as a document whose
Composition (LOINC 11488-4 Consult note, as in BSeR's feedback examples) is authored by the
referral recipient, has a feedback-summary section pointing back to the ServiceRequest, and
carries a "referral activity status" Observation (SNOMED 385641008 Action status) elaborating the
Task's business state. Here the server generates that Observation from the case Task (its status,
our business status and the BSeR task business status from ConceptMap
``case-business-status-to-bser``); a second section holds the report and the results and
images it cites. Every reference resolves inside the Bundle (``server.documents.closure``);
the contract is docs/documents.md.

Who may call it: whoever may read the report (the read goes through the caller's repository),
except insurers, who see a case's status but never clinical content (403). Only second-opinion
reports qualify (``basedOn`` a second-opinion ServiceRequest the caller can see): others 422.
"""

from __future__ import annotations

import uuid
from typing import Any

from profiles.conformance import CS_BUSINESS_STATUS, lookup
from resources.servicerequest import is_second_opinion_request
from resources.task import business_status_code
from server.cases.store import load_case
from server.documents.closure import close
from server.documents.compose import (
    Section,
    composition,
    document,
    full_url,
    omissions_section,
    reference_to,
    section_json,
    spec,
)
from server.documents.summary import coverage_summary
from server.errors import FhirError, Issue
from server.operations import Invocation, Operation, load_definition
from server.operations.links import follow, local_key
from server.timeutil import fhir_instant, now

Resource = dict[str, Any]
# DiagnosticReport.status → Composition.status (composition-status is a smaller set).
COMPOSITION_STATUS = {
    "preliminary": "preliminary",
    "partial": "preliminary",
    "registered": "preliminary",
    "final": "final",
    "amended": "amended",
    "corrected": "amended",
    "appended": "amended",
    "cancelled": "entered-in-error",
    "entered-in-error": "entered-in-error",
}


def bser_status(code: str | None) -> dict[str, Any] | None:
    """The BSeR task business status a case business status maps to (first target)."""
    cmap = lookup(spec()["action-status"]["bser-map"], "ConceptMap")
    if cmap is None or code is None:
        return None
    for group in cmap.get("group", []):
        for element in group.get("element", []):
            if element.get("code") == code and element.get("target"):
                target = element["target"][0]
                return {
                    "system": group["target"],
                    "code": target["code"],
                    "display": target.get("display", target["code"]),
                }
    return None


def action_status(
    task: Resource | None, held: dict[str, Resource], base: str, request_key: str, urn: str
) -> Resource:
    """The BSeR-style referral action status, generated from the case Task's status."""
    obs: Resource = {
        "resourceType": "Observation",
        "id": urn.removeprefix("urn:uuid:"),
        "status": "final",
        "code": {"coding": [dict(spec()["action-status"]["code"])]},
        "basedOn": [{"reference": full_url(base, request_key)}],
    }
    if task is None:
        obs["dataAbsentReason"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "unknown",
                    "display": "Unknown",
                }
            ]
        }
        obs["effectiveDateTime"] = fhir_instant(now())
        return obs
    patient = local_key(task.get("for"), base)
    if patient is not None and patient in held:
        obs["subject"] = {"reference": full_url(base, patient)}
    task_key = f"Task/{task['id']}"
    if task_key in held:
        obs["focus"] = [{"reference": full_url(base, task_key)}]
    obs["effectiveDateTime"] = str(task.get("lastModified") or fhir_instant(now()))
    code = business_status_code(task)
    codings = [c for c in (bser_status(code),) if c is not None]
    if code is not None:
        display = next(
            (c.get("display") for c in (task.get("businessStatus") or {}).get("coding", [])),
            code,
        )
        codings.append({"system": CS_BUSINESS_STATUS, "code": code, "display": display})
    obs["valueCodeableConcept"] = {
        "coding": codings,
        "text": f"Case {task.get('status')}" + (f" ({code})" if code else ""),
    }
    return obs


def report_document(call: Invocation) -> dict[str, Any]:
    assert call.rid is not None
    repo, base = call.repo, call.base
    principal = repo.principal
    if principal is not None and not principal.admin and principal.role == "insurer":
        raise FhirError(
            403, "forbidden", "insurers see a case's status, not its clinical documents"
        )
    report = repo.read("DiagnosticReport", call.rid).resource
    assert report is not None
    report_key = f"DiagnosticReport/{call.rid}"
    issues: list[Issue] = []
    request: tuple[str, Resource] | None = None
    for i, ref in enumerate(report.get("basedOn") or []):
        found = follow(repo, ref, f"DiagnosticReport.basedOn[{i}]", issues, base)
        if found is not None and is_second_opinion_request(found[1]):
            request = found
            break
    if request is None:
        raise FhirError(
            422,
            "business-rule",
            f"{report_key} is not a second-opinion report (basedOn a second-opinion "
            "ServiceRequest)",
            expression=["DiagnosticReport.basedOn"],
        )
    request_key, request_resource = request
    summary, findings = Section("feedback-summary"), Section("findings")
    seeds: dict[str, Resource] = {request_key: request_resource, report_key: report}
    summary.add(request_key)
    findings.add(report_key)
    failed: dict[str, Issue] = {}

    def take(section: Section, ref: Any, expression: str) -> None:
        found_issues: list[Issue] = []
        found = follow(repo, ref, expression, found_issues, base)
        if found is None:
            section.issues += found_issues
            issues.extend(found_issues)
            key = local_key(ref, base)
            if key is not None and found_issues:
                failed[key] = found_issues[0]
            return
        seeds.setdefault(*found)
        section.add(found[0])

    for i, ref in enumerate(report.get("result") or []):
        take(findings, ref, f"DiagnosticReport.result[{i}]")
    for i, ref in enumerate(report.get("imagingStudy") or []):
        take(findings, ref, f"DiagnosticReport.imagingStudy[{i}]")
    for i, media in enumerate(report.get("media") or []):
        take(findings, media.get("link"), f"DiagnosticReport.media[{i}].link")

    case = load_case(repo.unrestricted(), request_key.split("/")[1])
    task: Resource | None = None
    if case is not None:
        task_found = follow(repo, {"reference": f"Task/{case.task_id}"}, "the case Task", [], base)
        if task_found is not None:
            seeds.setdefault(*task_found)
            summary.add(task_found[0])
        task = case.task
    closure = close(repo, seeds, base, failed=failed, shape=coverage_summary)
    held = closure.resources
    obs_urn = f"urn:uuid:{uuid.uuid4()}"
    observation = action_status(task, held, base, request_key, obs_urn)
    summary.entries.insert(1, obs_urn)
    held_and_generated = {**held, obs_urn: observation}
    sections = [summary, findings]
    extra = omissions_section(issues + closure.issues)
    if extra is not None:
        sections.append(extra)
    urn = f"urn:uuid:{uuid.uuid4()}"
    when = fhir_instant(now())
    performer = next(iter(report.get("performer") or []), None)
    comp = composition(
        "referral-feedback",
        urn=urn,
        status=COMPOSITION_STATUS.get(str(report.get("status")), "preliminary"),
        subject=reference_to(local_key(report.get("subject"), base), held, base, "the patient"),
        author=reference_to(local_key(performer, base), held, base, "the expert"),
        date=str(report.get("issued") or when),
        sections=[section_json(s, held_and_generated, base) for s in sections],
        extra={"event": [{"detail": [{"reference": full_url(base, request_key)}]}]},
    )
    return document(urn, comp, held, base, when, generated=[(obs_urn, observation)])


OPERATION = Operation(load_definition("document.json"), report_document)
