"""``server.operations.submission.parse``: what a $submit body names, before any lookup."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import FhirError
from server.operations.submission import Submission, parse

BASE = "http://h/fhir"


def req(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "CoverageEligibilityRequest",
        "status": "active",
        "purpose": ["benefits"],
        "created": "2026-12-01",
        "patient": {"reference": "Patient/p1"},
        "insurer": {"reference": "Organization/ins"},
    }
    body.update(kw)
    return body


def bundle(first: dict[str, Any], *others: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    entries = [{"fullUrl": "urn:uuid:r", "resource": first}]
    entries += [{"fullUrl": url, "resource": r} for url, r in others]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


COVER = {
    "resourceType": "Coverage",
    "status": "active",
    "beneficiary": {"reference": "urn:uuid:p"},
    "payor": [{"reference": "urn:uuid:o"}],
    "subscriberId": "S1",
}
PATIENT = {"resourceType": "Patient", "birthDate": "1970-01-01"}
ORG = {"resourceType": "Organization", "identifier": [{"system": "s", "value": "ins"}]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (req(), {"patient_key": "Patient/p1", "insurer_key": "Organization/ins"}),
        (
            req(insurance=[{"coverage": {"reference": "Coverage/c1"}}]),
            {"coverage_key": "Coverage/c1"},
        ),
        (req(patient={"reference": f"{BASE}/Patient/p2"}), {"patient_key": "Patient/p2"}),
        (
            bundle(
                req(patient={"reference": "urn:uuid:p"}, insurer={"reference": "urn:uuid:o"}),
                ("urn:uuid:p", PATIENT),
                ("urn:uuid:o", ORG),
                ("urn:uuid:c", COVER),
            ),
            {
                "patient_key": None,
                "insurer_key": None,
                "coverage_key": None,
                "hint": COVER,
                "patient": PATIENT,
            },
        ),
        (
            bundle(
                req(patient={"reference": f"{BASE}/Patient/p3"}), (f"{BASE}/Patient/p3", PATIENT)
            ),
            {"patient_key": "Patient/p3", "patient": PATIENT},
        ),
        (
            bundle(
                req(insurance=[{"coverage": {"reference": "urn:uuid:c"}}]), ("urn:uuid:c", COVER)
            ),
            {"coverage_key": None, "hint": COVER},
        ),
        (
            req(item=[{"diagnosis": [{"diagnosisCodeableConcept": {"text": "x"}}]}]),
            {"diagnoses": [{"text": "x"}]},
        ),
        (
            req(item=[{"diagnosis": [{"diagnosisReference": {"reference": "Condition/c9"}}]}]),
            {"diagnosis_keys": ["Condition/c9"]},
        ),
    ],
)
def test_parse_names(body: dict[str, Any], expected: dict[str, Any]) -> None:
    sub: Submission = parse(body, BASE)
    assert {k: getattr(sub, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resourceType": "Patient"}, 400),
        ("text", 400),
        (None, 400),
        ({**bundle(req()), "type": "batch"}, 400),
        (bundle(PATIENT), 400),
        (req(status="cancelled"), 422),
        (req(patient={"reference": "urn:uuid:nowhere"}), 422),
        (req(patient={"reference": "Organization/ins"}), 422),
        (req(insurer={"display": "Maple"}), 422),
        (req(insurance=[{"coverage": {"reference": "urn:uuid:nowhere"}}]), 422),
        (bundle(req(patient={"reference": "urn:uuid:o"}), ("urn:uuid:o", ORG)), 422),
        (req(item=[{"diagnosis": [{"diagnosisReference": {"reference": "urn:uuid:x"}}]}]), 422),
    ],
)
def test_parse_refuses(body: Any, status: int) -> None:
    with pytest.raises(FhirError) as err:
        parse(body, BASE)
    assert err.value.status == status
