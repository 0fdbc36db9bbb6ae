"""``document_problems``: the document invariants, one broken at a time (pure, table-driven)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from server.documents import document_problems
from server.documents.compose import Section, section_json
from server.documents.narrative import div, line
from server.errors import Issue

BASE = "http://example.org/fhir"
COMP = "urn:uuid:3f1a9a2e-2b8e-4f0b-9a7e-5d0b7a1c0001"
XHTML = '<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>'


def valid() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:9d7e0f7e-0000-4000-8000-1",
        },
        "type": "document",
        "timestamp": "2026-12-02T10:00:00Z",
        "entry": [
            {
                "fullUrl": COMP,
                "resource": {
                    "resourceType": "Composition",
                    "id": COMP.removeprefix("urn:uuid:"),
                    "status": "final",
                    "type": {"coding": [{"system": "http://loinc.org", "code": "57133-1"}]},
                    "subject": {"reference": f"{BASE}/Patient/p1"},
                    "date": "2026-12-02T10:00:00Z",
                    "author": [{"reference": f"{BASE}/Practitioner/d1"}],
                    "title": "Case file",
                    "section": [
                        {
                            "title": "Patient",
                            "code": {"text": "Patient"},
                            "text": {"status": "generated", "div": XHTML},
                            "entry": [{"reference": f"{BASE}/Patient/p1"}],
                        }
                    ],
                },
            },
            {
                "fullUrl": f"{BASE}/Patient/p1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "meta": {"versionId": "3"},
                    "generalPractitioner": [{"reference": "Practitioner/d1"}],
                },
            },
            {
                "fullUrl": f"{BASE}/Practitioner/d1",
                "resource": {"resourceType": "Practitioner", "id": "d1"},
            },
        ],
    }


def patient(b: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = b["entry"][1]["resource"]
    return resource


def comp(b: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = b["entry"][0]["resource"]
    return resource


Breaker = Callable[[dict[str, Any]], None]


def _set(path: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Breaker:
    def breaker(b: dict[str, Any]) -> None:
        path(b)[key] = value

    return breaker


def _drop(key: str) -> Breaker:
    return lambda b: b.pop(key)


BROKEN: list[tuple[str, Breaker, str]] = [
    ("not a document", _set(lambda b: b, "type", "collection"), "not 'document'"),
    ("no identifier", _drop("identifier"), "bdl-9"),
    ("identifier without system", _set(lambda b: b, "identifier", {"value": "x"}), "bdl-9"),
    ("no timestamp", _drop("timestamp"), "bdl-10"),
    ("a total", _set(lambda b: b, "total", 3), "bdl-1"),
    ("search on an entry", _set(lambda b: b["entry"][1], "search", {"mode": "match"}), "bdl-2"),
    (
        "request on an entry",
        _set(lambda b: b["entry"][1], "request", {"method": "GET", "url": "Patient/p1"}),
        "bdl-3",
    ),
    ("Composition not first", lambda b: b["entry"].reverse(), "bdl-11"),
    ("duplicate fullUrl", lambda b: b["entry"].append(copy.deepcopy(b["entry"][2])), "bdl-7"),
    ("entry without fullUrl", lambda b: b["entry"][2].pop("fullUrl"), "has no fullUrl"),
    (
        "fullUrl naming another id",
        _set(lambda b: b["entry"][2], "fullUrl", f"{BASE}/Practitioner/d2"),
        "does not name",
    ),
    (
        "relative reference dangling",
        _set(patient, "generalPractitioner", [{"reference": "Practitioner/zz"}]),
        "does not resolve",
    ),
    (
        "absolute reference dangling",
        _set(comp, "subject", {"reference": f"{BASE}/Patient/zz"}),
        "does not resolve",
    ),
    (
        "reference to another server",
        _set(
            patient, "managingOrganization", {"reference": "https://other.example/Organization/1"}
        ),
        "does not resolve",
    ),
    (
        "relative reference from a urn entry",
        _set(comp, "subject", {"reference": "Patient/p1"}),
        "does not resolve",
    ),
    (
        "wrong version",
        _set(comp, "subject", {"reference": f"{BASE}/Patient/p1/_history/2"}),
        "names version 2",
    ),
    (
        "missing contained",
        _set(patient, "generalPractitioner", [{"reference": "#nope"}]),
        "not a contained",
    ),
    (
        "section without text or entry",
        lambda b: comp(b)["section"][0].pop("entry") and comp(b)["section"][0].pop("text"),
        "cmp-1",
    ),
    (
        "emptyReason with entries",
        _set(lambda b: comp(b)["section"][0], "emptyReason", {"text": "none"}),
        "cmp-2",
    ),
    ("section without code", lambda b: comp(b)["section"][0].pop("code"), "has no code"),
    ("invalid Composition status", _set(comp, "status", "done"), "invalid"),
    ("unknown element", _set(patient, "colour", "blue"), "invalid"),
]


def test_a_valid_document_has_no_problems() -> None:
    assert document_problems(valid()) == []


@pytest.mark.parametrize(("name", "breaker", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_invariant_is_named(name: str, breaker: Breaker, expected: str) -> None:
    bundle = valid()
    breaker(bundle)
    problems = document_problems(bundle)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "reference",
    ["Practitioner/d1", f"{BASE}/Practitioner/d1", "Patient/p1/_history/3", "#"],
)
def test_references_that_resolve(reference: str) -> None:
    bundle = valid()
    patient(bundle)["generalPractitioner"] = [{"reference": reference}]
    assert document_problems(bundle) == []


def test_a_contained_reference_resolves() -> None:
    bundle = valid()
    patient(bundle)["contained"] = [{"resourceType": "Practitioner", "id": "c1"}]
    patient(bundle)["generalPractitioner"] = [{"reference": "#c1"}]
    assert document_problems(bundle) == []


def test_not_a_bundle() -> None:
    assert document_problems({"resourceType": "Patient"}) == ["not a Bundle"]


# ------------------------------------------------------------------------------ sections
@pytest.mark.parametrize(
    ("entries", "issues", "reason"),
    [([], [], "nilknown"), ([], [Issue("not-found", "gone", "warning")], "unavailable")],
)
def test_an_empty_section_has_an_empty_reason(
    entries: list[str], issues: list[Issue], reason: str
) -> None:
    s = Section("imaging", entries, issues)
    out = section_json(s, {}, BASE)
    assert "entry" not in out
    assert out["emptyReason"]["coding"][0]["code"] == reason


def test_a_section_lists_its_omissions_in_its_narrative() -> None:
    s = Section("imaging", [], [Issue("not-found", "ServiceRequest.supportingInfo[1]: x <y>")])
    assert "supportingInfo[1]: x &lt;y&gt;" in section_json(s, {}, BASE)["text"]["div"]


def test_section_entries_are_absolute_references_to_held_resources() -> None:
    held = {"Patient/p1": {"resourceType": "Patient", "id": "p1"}}
    out = section_json(Section("patient", ["Patient/p1", "Patient/not-held"]), held, BASE)
    assert out["entry"] == [{"reference": f"{BASE}/Patient/p1"}]


# ------------------------------------------------------------------------------ narrative
@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            {"resourceType": "Patient", "name": [{"given": ["Ada"], "family": "Lovelace"}]},
            "Patient: Ada Lovelace",
        ),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "Hb"},
                "valueQuantity": {"value": 12, "unit": "g/dL"},
            },
            "Observation: Hb (final) — 12 g/dL",
        ),
        (
            {
                "resourceType": "Coverage",
                "status": "active",
                "class": [{"value": "P1"}],
                "period": {"start": "2026-01-01", "end": "2026-12-31"},
                "payor": [{"reference": "Organization/i"}],
            },
            "Coverage: Plan P1 (active) — in force 2026-01-01 to 2026-12-31; payer Organization/i",
        ),
        ({"resourceType": "Basic"}, "Basic: Basic"),
    ],
)
def test_narrative_line(resource: dict[str, Any], expected: str) -> None:
    assert line(resource) == expected


def test_narrative_is_escaped_xhtml() -> None:
    out = div(["a <b> & c"], "intro")
    assert out["div"] == (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>intro</p><ul><li>a &lt;b&gt; &amp; c</li></ul></div>'
    )
