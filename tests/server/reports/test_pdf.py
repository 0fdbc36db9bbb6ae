"""The pure renderer: what the PDF says, over several pages, for any text, always the same."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from pypdf import PdfReader

from server.reports.pdf import ReportFacts, printable, render_report_pdf, shown_time

FACTS = ReportFacts(
    report_id="rep-1",
    version="3",
    status="amended",
    issued="2026-12-02T10:15:00Z",
    patient_name="Marie Tremblay",
    patient_birth_date="1968-04-11",
    patient_gender="Female",
    patient_identifiers=["Member number: CERT-42 (Maple Mutual)"],
    request_id="ServiceRequest/sr-9",
    request_identifiers=["Placer: LAKE-2026-17"],
    request_reasons=["Cancer"],
    request_date="2026-12-01T09:00:00Z",
    questions=["Is mastectomy the best first step?"],
    requester="Dr Anil Patel",
    clinic="Lakeshore Clinic",
    expert_name="Dr Sophie Leblanc",
    expert_credentials=["FRCPC Medical Oncology"],
    expert_specialties=["Clinical oncology"],
    expert_organization="Consilium Expert Network",
    conclusion="Invasive ductal carcinoma confirmed.",
    results=["Histopathology: adenocarcinoma"],
    outcomes=["Diagnosis confirmed", "Alternative treatment"],
    outcome_explanations=["The expert confirms the diagnosis.", "Endocrine therapy first."],
    recommendations=["Neoadjuvant endocrine therapy before surgery"],
    correspondence=["Question from Dr Sophie Leblanc: Please send the MRI"],
)


def pages(pdf: bytes) -> list[str]:
    return [p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages]


def text(pdf: bytes) -> str:
    return "\n".join(pages(pdf))


@pytest.mark.parametrize(
    "expected",
    [
        "Second medical opinion",
        "Amended report - 02 December 2026, 10:15 UTC",
        "Marie Tremblay",
        "1968-04-11",
        "Member number: CERT-42 (Maple Mutual)",
        "ServiceRequest/sr-9",
        "Placer: LAKE-2026-17",
        "Cancer",
        "Is mastectomy the best first step?",
        "Dr Anil Patel",
        "Lakeshore Clinic",
        "FRCPC Medical Oncology",
        "Clinical oncology",
        "Consilium Expert Network",
        "Invasive ductal carcinoma confirmed.",
        "Histopathology: adenocarcinoma",
        "Diagnosis confirmed",
        "Alternative treatment",
        "Endocrine therapy first.",
        "Neoadjuvant endocrine therapy before surgery",
        "Please send the MRI",
        "Electronically signed on 02 December 2026, 10:15 UTC",
        "DiagnosticReport/rep-1 - version 3 - amended",
    ],
)
def test_the_pdf_shows(expected: str) -> None:
    assert expected in text(render_report_pdf(FACTS))


def test_the_signature_names_the_expert_and_credentials_after_the_findings() -> None:
    shown = text(render_report_pdf(FACTS))
    signature = shown.index("Signed by Dr Sophie Leblanc")
    assert shown.index("Invasive ductal carcinoma") < signature
    assert "FRCPC Medical Oncology" in shown[signature:]


def test_missing_facts_are_shown_as_not_stated() -> None:
    shown = text(render_report_pdf(ReportFacts("r", "1", "final", "")))
    assert "Name not stated" in shown
    assert "issue time not stated" in shown
    assert "No separate recommendations were stated" in shown


def test_long_text_runs_over_several_pages_each_numbered() -> None:
    long = replace(FACTS, conclusion="The file was reviewed in full. " * 1500)
    shown = pages(render_report_pdf(long))
    assert len(shown) > 3
    for n, page in enumerate(shown, 1):
        assert f"Page {n} of {len(shown)}" in page
    assert "Electronically signed" in shown[-1]


def test_a_word_longer_than_a_line_is_wrapped() -> None:
    shown = text(render_report_pdf(replace(FACTS, conclusion="x" * 3000)))
    findings = shown[shown.index("Findings") + len("Findings") : shown.index("Results")]
    assert findings.count("x") == 3000  # nothing cut off at the margin
    assert len([line for line in findings.splitlines() if set(line) == {"x"}]) > 10


@pytest.mark.parametrize(
    "name",
    [
        "अनन्या शर्मा",  # Devanagari
        "Ananya 😀👩‍⚕️",  # emoji, with a zero-width joiner and a variation selector
        "王秀英",  # CJK
        "Ψυχή Ωμέγα",  # Greek
        "Łukasz Żółć",  # Latin letters outside Windows-1252
        "\udc00\x00\x07 control",  # a lone surrogate and control characters
    ],
)
def test_text_outside_the_core_fonts_never_fails(name: str) -> None:
    facts = replace(FACTS, patient_name=name, conclusion=name * 50, recommendations=[name])
    assert text(render_report_pdf(facts))


def test_replaced_characters_are_announced() -> None:
    shown = text(render_report_pdf(replace(FACTS, patient_name="अनन्या")))
    assert "printed as '?'" in shown
    assert "printed as '?'" not in text(render_report_pdf(FACTS))


@pytest.mark.parametrize(
    ("given", "shown", "replaced"),
    [
        ("Marie Tremblay", "Marie Tremblay", False),
        ("François Müller", "François Müller", False),  # Windows-1252 letters stay
        (
            "\u201cQuoted\u201d \u2013 \u20ac5 \u2026",
            "\u201cQuoted\u201d \u2013 \u20ac5 \u2026",
            False,
        ),
        ("Łukasz Dvořák Şahin", "Lukasz Dvorák Sahin", False),  # folded to base letters
        ("≥ 5 mm → biopsy", ">= 5 mm -> biopsy", False),  # fallbacks.json
        ("a\u200db\u202fc\td", "ab c d", False),  # joiner dropped, spaces normalised
        ("line 1\nline 2", "line 1\nline 2", False),
        ("क", "?", True),
        ("😀", "?", True),
        ("\udc00", "?", True),
    ],
)
def test_printable(given: str, shown: str, replaced: bool) -> None:
    assert printable(given) == (shown, replaced)


def test_the_same_facts_give_the_same_bytes() -> None:
    assert render_report_pdf(FACTS) == render_report_pdf(replace(FACTS))


def test_the_creation_date_is_the_issue_time() -> None:
    meta = PdfReader(io.BytesIO(render_report_pdf(FACTS))).metadata
    assert meta is not None and meta["/CreationDate"] == "D:20261202101500Z"


@pytest.mark.parametrize(
    ("instant", "shown"),
    [
        ("2026-12-02T10:15:00Z", "02 December 2026, 10:15 UTC"),
        ("2026-12-02T12:15:00+02:00", "02 December 2026, 10:15 UTC"),
        ("not a time", "not a time"),
    ],
)
def test_shown_time(instant: str, shown: str) -> None:
    assert shown_time(instant) == shown
