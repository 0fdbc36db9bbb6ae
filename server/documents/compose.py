"""Building a FHIR document: the Composition, its coded sections, the ``document`` Bundle.

Why the shapes are data (``sections.json``): the document types (LOINC 57133-1 Referral note,
11488-4 Consult note), each section's code and title, which section a supporting resource goes
to and what the coverage summary keeps are the guide's decisions (docs/documents.md), read once.

Addresses: every held resource keeps its server address as ``fullUrl`` (``<base>/Type/id``) and
its references as stored (relative ``Type/id`` resolve against that base, bundle.html
#references); the Composition and the resources the server generates for the document (the
action-status Observation) are not stored, so they get ``urn:uuid:`` addresses and refer to the
others by their absolute ``fullUrl``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from server.documents.narrative import div, line
from server.errors import Issue

Resource = dict[str, Any]
SPEC_FILE = Path(__file__).resolve().parent / "sections.json"
URI_SYSTEM = "urn:ietf:rfc:3986"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
EMPTY_DISPLAY = {
    "nilknown": "Nil Known",
    "unavailable": "Unavailable",
    "withheld": "Information Withheld",
}


@cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    return data


def new_urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def full_url(base: str, key: str) -> str:
    return f"{base.rstrip('/')}/{key}"


@dataclass
class Section:
    """One section as the operation fills it: the ``Type/id`` keys (or ``urn:uuid:``
    addresses) of its entries, the links it could not follow, and why it may be empty."""

    key: str
    entries: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    intro: str | None = None
    empty_reason: str | None = None  # overrides nilknown/unavailable (e.g. withheld)

    def add(self, key: str) -> None:
        if key not in self.entries:
            self.entries.append(key)


def section_json(section: Section, held: dict[str, Resource], base: str) -> Resource:
    """``Composition.section``: title, code, narrative of its entries and omissions (cmp-1),
    entries, or an ``emptyReason`` when it has none (cmp-2)."""
    definition = spec()["sections"][section.key]
    entries = [e for e in section.entries if e in held]
    lines = [line(held[e]) for e in entries]
    lines += [f"Not included — {issue.diagnostics}" for issue in section.issues]
    intro = section.intro or (None if lines else "None recorded.")
    out: Resource = {
        "title": definition["title"],
        "code": {"coding": [dict(definition["code"])], "text": definition["title"]},
        "text": div(lines, intro),
    }
    if entries:
        out["entry"] = [
            {"reference": e if e.startswith("urn:") else full_url(base, e)} for e in entries
        ]
    else:
        reason = section.empty_reason or ("unavailable" if section.issues else "nilknown")
        out["emptyReason"] = {
            "coding": [{"system": EMPTY_REASON, "code": reason, "display": EMPTY_DISPLAY[reason]}]
        }
    return out


def omissions_section(issues: list[Issue]) -> Section | None:
    """Every link the document could not hold, in one section (None when there are none)."""
    if not issues:
        return None
    out = Section("omissions", intro="Links the server could not include for this reader.")
    out.issues = list(issues)
    return out


def reference_to(key: str | None, held: dict[str, Resource], base: str, what: str) -> Resource:
    """A Reference from the Composition: to the entry when held, else display-only."""
    if key is not None and key in held:
        return {"reference": full_url(base, key)}
    return {"display": f"{key or what} (not included in this document)"}


def composition(
    kind: str,
    *,
    urn: str,
    status: str,
    subject: Resource,
    author: Resource,
    date: str,
    sections: list[Resource],
    title: str | None = None,
    extra: Resource | None = None,
) -> Resource:
    """The Composition of a document of ``kind`` (``case-file`` or ``referral-feedback``)."""
    doc = spec()["documents"][kind]
    out: Resource = {
        "resourceType": "Composition",
        "id": urn.removeprefix("urn:uuid:"),
        "identifier": {"system": URI_SYSTEM, "value": urn},
        "status": status,
        "type": {"coding": [dict(doc["type"])], "text": doc["title"]},
        "subject": subject,
        "date": date,
        "author": [author],
        "title": title or doc["title"],
        "confidentiality": "R",
        **(extra or {}),
        "section": sections,
    }
    out["text"] = div([], out["title"])
    return out


def document(
    comp_urn: str,
    comp: Resource,
    held: dict[str, Resource],
    base: str,
    timestamp: str,
    generated: Sequence[tuple[str, Resource]] = (),
) -> Resource:
    """The ``document`` Bundle: identifier, timestamp, the Composition first, then the
    generated resources, then every held resource (no ``total``, ``link`` or ``search``)."""
    entries = [{"fullUrl": comp_urn, "resource": comp}]
    entries += [{"fullUrl": urn, "resource": r} for urn, r in generated]
    entries += [{"fullUrl": full_url(base, k), "resource": r} for k, r in held.items()]
    return {
        "resourceType": "Bundle",
        "identifier": {"system": URI_SYSTEM, "value": new_urn()},
        "type": "document",
        "timestamp": timestamp,
        "entry": entries,
    }
