"""The pure parts of gathering the PDF's facts and of the server's attachment."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from server.hooks import Hooks
from server.reports.facts import (
    clinical_questions,
    concept_text,
    human_name,
    identifier_text,
    split_conclusion,
    value_text,
)
from server.reports.hook import (
    SERVER_PDF_TITLE,
    install,
    pdf_attachment,
    without_server_pdf,
)

OUTCOME = "https://consilium.health/fhir/CodeSystem/second-opinion-outcome"


@pytest.mark.parametrize(
    ("text", "findings", "recommendations"),
    [
        ("All confirmed.", "All confirmed.", []),
        (
            "Lymphoma.\nRecommendations:\n- Excision biopsy\n- PET-CT",
            "Lymphoma.",
            ["Excision biopsy", "PET-CT"],
        ),
        ("Lymphoma.\nRecommendation: repeat biopsy", "Lymphoma.", ["repeat biopsy"]),
        ("Lymphoma.\n\nRECOMMENDATIONS\n1. Biopsy\n2) Review", "Lymphoma.", ["Biopsy", "Review"]),
        ("We recommend surgery.", "We recommend surgery.", []),  # only a heading line splits
        ("", "", []),
    ],
)
def test_split_conclusion(text: str, findings: str, recommendations: list[str]) -> None:
    assert split_conclusion(text) == (findings, recommendations)


@pytest.mark.parametrize(
    ("names", "shown"),
    [
        ([{"family": "Leblanc", "given": ["Sophie"], "prefix": ["Dr"]}], "Dr Sophie Leblanc"),
        ([{"text": "Anil Patel, MD"}], "Anil Patel, MD"),
        (
            [{"use": "nickname", "given": ["Sam"]}, {"use": "official", "family": "Smith"}],
            "Smith",
        ),
        ([{"family": "Rao", "suffix": ["Jr"]}], "Rao Jr"),
        ([], ""),
        (None, ""),
        ("not a list", ""),
    ],
)
def test_human_name(names: Any, shown: str) -> None:
    assert human_name(names) == shown


@pytest.mark.parametrize(
    ("cc", "shown"),
    [
        ({"text": "Breast cancer", "coding": [{"display": "x"}]}, "Breast cancer"),
        ({"coding": [{"system": "s", "code": "c", "display": "Shown"}]}, "Shown"),
        ({"coding": [{"system": OUTCOME, "code": "confirm-diagnosis"}]}, "Diagnosis confirmed"),
        ({"coding": [{"system": "unknown", "code": "c1"}]}, "c1"),
        ({}, ""),
        (None, ""),
    ],
)
def test_concept_text(cc: Any, shown: str) -> None:
    assert concept_text(cc) == shown


@pytest.mark.parametrize(
    ("obs", "shown"),
    [
        ({"valueQuantity": {"value": 4.2, "unit": "cm"}}, "4.2 cm"),
        ({"valueQuantity": {"value": 5, "comparator": "<", "code": "mm"}}, "<5 mm"),
        ({"valueString": "adenocarcinoma"}, "adenocarcinoma"),
        ({"valueCodeableConcept": {"text": "Positive"}}, "Positive"),
        ({"valueBoolean": False}, "no"),
        ({"valueInteger": 3}, "3"),
        ({"valueRange": {"low": {"value": 1, "unit": "g"}, "high": {"value": 2}}}, "1-2 g"),
        ({"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 40}}}, "1:40"),
        (
            {
                "component": [
                    {"code": {"text": "Systolic"}, "valueQuantity": {"value": 120, "unit": "mmHg"}},
                    {"code": {"text": "Diastolic"}, "valueQuantity": {"value": 80, "unit": "mmHg"}},
                ]
            },
            "Systolic: 120 mmHg; Diastolic: 80 mmHg",
        ),
        ({"dataAbsentReason": {"text": "Not performed"}}, "no value (Not performed)"),
        ({}, ""),
    ],
)
def test_value_text(obs: dict[str, Any], shown: str) -> None:
    assert value_text(obs) == shown


@pytest.mark.parametrize(
    ("ident", "shown"),
    [
        ({"type": {"text": "Member number"}, "value": "CERT-1"}, "Member number: CERT-1"),
        ({"system": "https://example.org/mrn", "value": "42"}, "https://example.org/mrn: 42"),
        ({"value": "7"}, "Identifier: 7"),
        ({"system": "s"}, ""),
        ("junk", ""),
    ],
)
def test_identifier_text(ident: Any, shown: str) -> None:
    assert identifier_text(ident) == shown


def test_clinical_questions_come_from_the_requests_notes() -> None:
    request = {"note": [{"text": " Is surgery needed? "}, {"text": ""}, {"authorString": "x"}]}
    assert clinical_questions(request) == ["Is surgery needed?"]


# ------------------------------------------------------------------------ the attachment
def test_the_attachment_describes_the_bytes() -> None:
    pdf = b"%PDF-1.3 test"
    attachment = pdf_attachment(pdf, {"issued": "2026-12-02T10:00:00Z", "language": "fr"})
    assert attachment == {
        "contentType": "application/pdf",
        "language": "fr",
        "data": base64.b64encode(pdf).decode(),
        "size": len(pdf),
        "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode(),
        "title": SERVER_PDF_TITLE,
        "creation": "2026-12-02T10:00:00Z",
    }


def test_an_attachment_without_issue_time_has_no_creation_and_defaults_to_english() -> None:
    attachment = pdf_attachment(b"%PDF", {})
    assert "creation" not in attachment
    assert attachment["language"] == "en"


OWN = {"contentType": "text/plain", "title": "Notes", "data": "eA=="}
SERVER = {"contentType": "application/pdf", "title": SERVER_PDF_TITLE, "data": "eA=="}


@pytest.mark.parametrize(
    ("forms", "left"),
    [
        ([SERVER, OWN], [OWN]),
        ([OWN, SERVER], [OWN]),
        ([SERVER], None),
        ([OWN], [OWN]),
        (None, None),
    ],
)
def test_without_server_pdf_leaves_what_the_client_sent(
    forms: list[dict[str, Any]] | None, left: list[dict[str, Any]] | None
) -> None:
    report: dict[str, Any] = {"resourceType": "DiagnosticReport", "status": "final"}
    if forms is not None:
        report["presentedForm"] = forms
    before = dict(report)
    result = without_server_pdf(report)
    assert result.get("presentedForm") == left
    assert report == before  # never mutated


def test_the_pdf_is_registered_as_derived_content_of_reports_only() -> None:
    hooks = Hooks()
    install(hooks)
    report = {"resourceType": "DiagnosticReport", "presentedForm": [SERVER]}
    assert "presentedForm" not in hooks.without_derived("DiagnosticReport", report)
    other = {"resourceType": "DocumentReference", "presentedForm": [SERVER]}
    assert hooks.without_derived("DocumentReference", other) == other
