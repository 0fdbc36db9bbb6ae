"""Narrative for document sections: one short line per resource, XHTML-escaped.

Why generated from the resource the reader received (not from the stored one): a section's text
is part of what is disclosed, so it may say only what the entries say. Insurers get redacted
resources, so their narrative holds status and dates, never a finding. The lines are deliberately
plain (label, status, date, one detail) — enough for a human to read the document without a
FHIR viewer (cmp-1: every section has text), not a rendering of every element.
"""

from __future__ import annotations

from html import escape
from typing import Any

XHTML = "http://www.w3.org/1999/xhtml"
MAX_DETAIL = 300
DATE_ELEMENTS = (
    "authoredOn",
    "issued",
    "effectiveDateTime",
    "performedDateTime",
    "occurrenceDateTime",
    "recordedDate",
    "sent",
    "date",
    "started",
    "birthDate",
)


def div(lines: list[str], intro: str | None = None) -> dict[str, str]:
    """A ``generated`` Narrative: an optional paragraph, then the lines as a list."""
    body = f"<p>{escape(intro)}</p>" if intro else ""
    if lines:
        body += "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body or "<p/>"}</div>'}


def concept_text(value: Any) -> str | None:
    """A CodeableConcept's text, else its first coding's display, else its first code."""
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("text"), str):
        return str(value["text"])
    for coding in value.get("coding") or []:
        for key in ("display", "code"):
            if isinstance(coding.get(key), str):
                return str(coding[key])
    return None


def _label(resource: dict[str, Any]) -> str:
    rtype = str(resource.get("resourceType"))
    if rtype == "Patient":
        names = resource.get("name") or [{}]
        name = names[0]
        text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")])
        return text.strip() or "Patient"
    if rtype == "Coverage":
        plans = [c.get("name") or c.get("value") for c in resource.get("class") or []]
        return f"Plan {', '.join(str(p) for p in plans if p)}" if any(plans) else "Coverage"
    for key in ("title", "name", "description"):
        if isinstance(resource.get(key), str):
            return str(resource[key])
    for key in ("code", "medicationCodeableConcept", "type", "category", "modality"):
        text = concept_text(resource.get(key))
        if text:
            return text
    if isinstance(resource.get("medicationReference"), dict):
        return str(resource["medicationReference"].get("display") or "Medication")
    return rtype


def _detail(resource: dict[str, Any]) -> str | None:
    rtype = resource.get("resourceType")
    if rtype == "Observation":
        if "valueQuantity" in resource:
            q = resource["valueQuantity"]
            return f"{q.get('value', '')} {q.get('unit') or q.get('code') or ''}".strip()
        for key in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
            if key in resource:
                return str(resource[key])
        return concept_text(resource.get("valueCodeableConcept"))
    if rtype == "DiagnosticReport":
        text = resource.get("conclusion")
        return str(text) if text else concept_text(resource.get("conclusionCode"))
    if rtype == "Communication":
        parts = [p["contentString"] for p in resource.get("payload") or [] if "contentString" in p]
        return " ".join(parts) or None
    if rtype == "Task":
        return concept_text(resource.get("businessStatus"))
    if rtype == "ServiceRequest":
        reasons = [concept_text(r) for r in resource.get("reasonCode") or []]
        return "; ".join(r for r in reasons if r) or None
    if rtype == "Condition":
        return concept_text(resource.get("verificationStatus"))
    if rtype == "MedicationRequest":
        dosage = resource.get("dosageInstruction") or [{}]
        text = dosage[0].get("text")
        return str(text) if text else None
    if rtype == "Patient":
        return str(resource["gender"]) if resource.get("gender") else None
    if rtype == "Coverage":
        period = resource.get("period") or {}
        payors = [str(p.get("display") or p.get("reference")) for p in resource.get("payor") or []]
        span = f"in force {period.get('start', '…')} to {period.get('end', '…')}"
        return f"{span}; payer {', '.join(payors)}" if payors else span
    return None


def line(resource: dict[str, Any]) -> str:
    """``Type: label (status, date) — detail``."""
    bits = [str(resource[k]) for k in ("status",) if isinstance(resource.get(k), str)]
    for key in DATE_ELEMENTS:
        if isinstance(resource.get(key), str):
            bits.append(str(resource[key]))
            break
    text = f"{resource.get('resourceType')}: {_label(resource)}"
    if bits:
        text += f" ({', '.join(bits)})"
    detail = _detail(resource)
    if detail:
        text += f" — {detail[:MAX_DETAIL]}{'…' if len(detail) > MAX_DETAIL else ''}"
    return text
