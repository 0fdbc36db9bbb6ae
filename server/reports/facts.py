"""What the report's PDF shows, gathered from the report and the resources it points at.

Read on the server's own account (``Repository.unrestricted()``): the PDF is written into the
report, whose readers are decided by the report's own access rules, and the expert writing it
may not be allowed to read, say, the clinic's PractitionerRole directly. Only what a reader of
the report needs is taken (names, credentials, the request's reason and question), never the
whole file. Missing or unreadable resources leave their facts empty ("not stated" in the PDF):
a report that points at nothing still gets a PDF.

Recommendations (docs/reports.md): the part of ``conclusion`` after a line that starts with
"Recommendation" (each further non-empty line one item), then the value of every result
Observation coded LOINC 18783-1 "Study recommendation". R4's DiagnosticReport has no ``note``,
and a conclusion written as "findings, then recommendations" is how experts write.
"""

from __future__ import annotations

import re
from typing import Any

from profiles.conformance import CS_OUTCOME
from profiles.terminology import concept
from profiles.validator import reference_type
from resources.domain import local_id
from server.reports.pdf import ReportFacts
from server.repository import Repository

Resource = dict[str, Any]

LOINC = "http://loinc.org"
RECOMMENDATION_CODE = "18783-1"  # LOINC Study recommendation
SECOND_OPINION_REASON = ("http://terminology.hl7.org/CodeSystem/v2-0336", "S")
MAX_RESULTS = 50
MAX_CORRESPONDENCE = 20
_RECOMMENDATIONS = re.compile(r"^\s*recommendations?\b\s*:?\s*", re.IGNORECASE)


# ----------------------------------------------------------------------------- plain text
def human_name(names: Any) -> str:
    """The first (official first) HumanName as one line: prefix given family suffix."""
    if not isinstance(names, list) or not names:
        return ""
    ordered = sorted(
        (n for n in names if isinstance(n, dict)), key=lambda n: n.get("use") != "official"
    )
    for n in ordered:
        if isinstance(n.get("text"), str) and n["text"].strip():
            return str(n["text"]).strip()
        parts = [*_strings(n.get("prefix")), *_strings(n.get("given"))]
        if isinstance(n.get("family"), str):
            parts.append(n["family"])
        parts.extend(_strings(n.get("suffix")))
        if parts:
            return " ".join(parts)
    return ""


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def concept_text(cc: Any) -> str:
    """A CodeableConcept as a person reads it: text, else the first display, else the code."""
    if not isinstance(cc, dict):
        return ""
    if isinstance(cc.get("text"), str) and cc["text"].strip():
        return str(cc["text"]).strip()
    codings = [c for c in cc.get("coding") or [] if isinstance(c, dict)]
    for c in codings:
        if isinstance(c.get("display"), str) and c["display"]:
            return str(c["display"])
    for c in codings:
        found = concept(str(c.get("system")), str(c.get("code")))
        if found and found.get("display"):
            return str(found["display"])
    return next((str(c["code"]) for c in codings if c.get("code")), "")


def value_text(obs: Resource) -> str:
    """An Observation's value[x] as text."""
    if "valueQuantity" in obs:
        q = obs["valueQuantity"] or {}
        unit = q.get("unit") or q.get("code") or ""
        return f"{q.get('comparator', '')}{q.get('value', '')} {unit}".strip()
    if "valueCodeableConcept" in obs:
        return concept_text(obs["valueCodeableConcept"])
    if "valueRange" in obs:
        low = (obs["valueRange"].get("low") or {}).get("value", "")
        high = (obs["valueRange"].get("high") or {}).get("value", "")
        unit = (obs["valueRange"].get("low") or obs["valueRange"].get("high") or {}).get("unit", "")
        return f"{low}-{high} {unit}".strip()
    if "valueRatio" in obs:
        n = (obs["valueRatio"].get("numerator") or {}).get("value", "")
        d = (obs["valueRatio"].get("denominator") or {}).get("value", "")
        return f"{n}:{d}"
    if "valueBoolean" in obs:
        return "yes" if obs["valueBoolean"] else "no"
    for key in ("valueString", "valueInteger", "valueDateTime", "valueTime"):
        if key in obs:
            return str(obs[key])
    if "valuePeriod" in obs:
        p = obs["valuePeriod"]
        return f"{p.get('start', '')} to {p.get('end', '')}"
    parts = [
        f"{concept_text(c.get('code'))}: {value_text(c)}"
        for c in obs.get("component") or []
        if isinstance(c, dict)
    ]
    if parts:
        return "; ".join(parts)
    if obs.get("dataAbsentReason"):
        return f"no value ({concept_text(obs['dataAbsentReason'])})"
    return ""


def identifier_text(ident: Any) -> str:
    if not isinstance(ident, dict) or not ident.get("value"):
        return ""
    label = concept_text(ident.get("type")) or str(ident.get("system") or "Identifier")
    return f"{label}: {ident['value']}"


def split_conclusion(text: str) -> tuple[str, list[str]]:
    """(findings, recommendations): the conclusion before and after a "Recommendations" line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _RECOMMENDATIONS.match(line):
            rest = _RECOMMENDATIONS.sub("", line, count=1)
            items = [rest, *lines[i + 1 :]]
            recs = [re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s*", "", x).strip() for x in items]
            return "\n".join(lines[:i]).strip(), [r for r in recs if r]
    return text.strip(), []


# ------------------------------------------------------------------------------ resources
class _Reader:
    """Current versions by reference, on the server's account, each read once."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.cache: dict[str, Resource | None] = {}

    def get(self, reference: Any, *types: str) -> Resource | None:
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            return None
        rtype = reference_type(reference["reference"])
        if rtype is None or (types and rtype not in types):
            return None
        rid = local_id(reference, rtype)
        if rid is None:
            return None
        key = f"{rtype}/{rid}"
        if key not in self.cache:
            stored = self.repo.current(rtype, rid)
            found = None if stored is None or stored.deleted else stored.resource
            self.cache[key] = dict(found) if isinstance(found, dict) else None
        return self.cache[key]


def _name_of(reader: _Reader, who: Resource | None) -> str:
    if who is None:
        return ""
    if who.get("resourceType") == "PractitionerRole":
        return _name_of(reader, reader.get(who.get("practitioner"), "Practitioner"))
    if who.get("resourceType") == "Organization":
        return str(who.get("name") or "")
    return human_name(who.get("name"))


def _display(reader: _Reader, reference: Any, *types: str) -> str:
    found = _name_of(reader, reader.get(reference, *types))
    if found:
        return found
    return str(reference.get("display") or "") if isinstance(reference, dict) else ""


def _credentials(practitioner: Resource | None) -> list[str]:
    out: list[str] = []
    for q in (practitioner or {}).get("qualification") or []:
        if not isinstance(q, dict):
            continue
        text = concept_text(q.get("code"))
        issuer = (q.get("issuer") or {}).get("display") if isinstance(q.get("issuer"), dict) else ""
        if text:
            out.append(f"{text} ({issuer})" if issuer else text)
    return out


def _reasons(reader: _Reader, request: Resource) -> list[str]:
    out: list[str] = []
    for cc in request.get("reasonCode") or []:
        codings = (cc or {}).get("coding") or []
        if any((c.get("system"), c.get("code")) == SECOND_OPINION_REASON for c in codings):
            continue  # "second opinion" itself is the title, not a reason
        text = concept_text(cc)
        if text:
            out.append(text)
    for ref in request.get("reasonReference") or []:
        cond = reader.get(ref, "Condition", "Observation", "DiagnosticReport")
        text = concept_text((cond or {}).get("code")) if cond else ""
        if text and text not in out:
            out.append(text)
    return out


def clinical_questions(request: Resource) -> list[str]:
    notes = [n.get("text") for n in request.get("note") or [] if isinstance(n, dict)]
    return [str(t).strip() for t in notes if isinstance(t, str) and t.strip()]


def _correspondence(reader: _Reader, request_id: str) -> list[str]:
    """The review's questions and answers (Communications basedOn the request), oldest first."""
    docs = reader.repo.find_visible(
        "Communication",
        {"idx.based-on": f"ServiceRequest/{request_id}"},
        sort=[("resource.sent", 1), ("_id", 1)],
        limit=MAX_CORRESPONDENCE,
    )
    out: list[str] = []
    for doc in docs:
        comm = doc.get("resource") or {}
        texts = [
            str(p["contentString"]).strip()
            for p in comm.get("payload") or []
            if isinstance(p, dict) and isinstance(p.get("contentString"), str)
        ]
        if not texts:
            continue
        kind = "Answer" if comm.get("inResponseTo") else "Question"
        sender = _display(reader, comm.get("sender"))
        out.append(f"{kind}{' from ' + sender if sender else ''}: {' '.join(texts)}")
    return out


def _results(reader: _Reader, report: Resource) -> tuple[list[str], list[str]]:
    """(results, recommendations) from the report's result Observations."""
    results: list[str] = []
    recommendations: list[str] = []
    for ref in (report.get("result") or [])[:MAX_RESULTS]:
        obs = reader.get(ref, "Observation")
        if obs is None:
            continue
        codings = (obs.get("code") or {}).get("coding") or []
        value = value_text(obs)
        if any((c.get("system"), c.get("code")) == (LOINC, RECOMMENDATION_CODE) for c in codings):
            if value:
                recommendations.append(value)
            continue
        results.append(f"{concept_text(obs.get('code')) or 'Result'}: {value or 'no value'}")
    return results, recommendations


def _outcomes(report: Resource) -> tuple[list[str], list[str]]:
    """The outcomes' displays from the guide's CodeSystem and their definitions, in order."""
    displays: list[str] = []
    explanations: list[str] = []
    for cc in report.get("conclusionCode") or []:
        for c in (cc or {}).get("coding") or []:
            if c.get("system") != CS_OUTCOME:
                continue
            found = concept(CS_OUTCOME, str(c.get("code"))) or {}
            display = str(found.get("display") or c.get("display") or c.get("code") or "")
            if display and display not in displays:
                displays.append(display)
                text = (cc or {}).get("text")
                explanations.append(str(text) if text else str(found.get("definition") or ""))
    return displays, explanations


def gather(
    repo: Repository, report_id: str, version: str, report: Resource, *, issued: str = ""
) -> ReportFacts:
    """The facts of ``report`` (about to be stored as ``version`` of ``report_id``); ``issued``
    is the signing time shown when the report states none (``hook.py``: the write's time)."""
    reader = _Reader(repo.unrestricted())
    patient = reader.get(report.get("subject"), "Patient") or {}
    request: Resource = {}
    for ref in report.get("basedOn") or []:
        request = reader.get(ref, "ServiceRequest") or {}
        if request:
            break
    request_id = str(request.get("id") or "")
    expert_role: Resource | None = None
    for ref in report.get("performer") or []:
        expert_role = reader.get(ref, "PractitionerRole")
        if expert_role is not None:
            break
    practitioner = (
        reader.get(expert_role.get("practitioner"), "Practitioner") if expert_role else None
    )
    requester_ref = request.get("requester")
    requester = reader.get(requester_ref, "PractitionerRole", "Practitioner", "Organization")
    clinic = ""
    if requester is not None and requester.get("resourceType") == "PractitionerRole":
        clinic = _display(reader, requester.get("organization"), "Organization")
    elif requester is not None and requester.get("resourceType") == "Organization":
        clinic = _name_of(reader, requester)
    if not clinic:
        clinic = _display(reader, patient.get("managingOrganization"), "Organization")
    findings, recommendations = split_conclusion(str(report.get("conclusion") or ""))
    results, recommended = _results(reader, report)
    outcomes, explanations = _outcomes(report)
    identifiers = [identifier_text(i) for i in patient.get("identifier") or []]
    for ref in request.get("insurance") or []:
        coverage = reader.get(ref, "Coverage") or {}
        payor = next(iter(coverage.get("payor") or []), None)
        insurer = _display(reader, payor, "Organization")
        for ident in coverage.get("identifier") or []:
            text = identifier_text(ident)
            if text:
                identifiers.append(f"{text}{' (' + insurer + ')' if insurer else ''}")
    return ReportFacts(
        report_id=report_id,
        version=version,
        status=str(report.get("status") or ""),
        issued=str(report.get("issued") or issued),
        patient_name=human_name(patient.get("name")),
        patient_birth_date=str(patient.get("birthDate") or ""),
        patient_gender=str(patient.get("gender") or "").capitalize(),
        patient_identifiers=[i for i in identifiers if i],
        request_id=f"ServiceRequest/{request_id}" if request_id else "",
        request_identifiers=[t for t in map(identifier_text, request.get("identifier") or []) if t],
        request_reasons=_reasons(reader, request),
        request_date=str(request.get("authoredOn") or ""),
        questions=clinical_questions(request),
        requester=_name_of(reader, requester) if requester else _display(reader, requester_ref),
        clinic=clinic,
        expert_name=_name_of(reader, expert_role)
        or _display(reader, (report.get("performer") or [None])[0]),
        expert_credentials=_credentials(practitioner),
        expert_specialties=[
            t for t in map(concept_text, (expert_role or {}).get("specialty") or []) if t
        ],
        expert_organization=_display(
            reader, (expert_role or {}).get("organization"), "Organization"
        ),
        conclusion=findings,
        results=results,
        outcomes=outcomes,
        outcome_explanations=explanations,
        recommendations=[*recommendations, *recommended],
        correspondence=_correspondence(reader, request_id) if request_id else [],
    )
