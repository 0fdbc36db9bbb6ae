"""The second-opinion report as a PDF a person reads: a pure renderer over ``ReportFacts``.

Why pure: the PDF is stored inside the report resource, and a server that wrote different bytes
for the same report on every write would make every write a change. So nothing here reads a
clock, a random source or the environment: the PDF's creation date is the report's ``issued``
time (``ReportFacts.issued``), fpdf2's file identifier is a hash of the content, and the same
facts give the same bytes (tests/server/reports/test_pdf.py says so).

Why the core fonts and ``printable``: fpdf2's built-in fonts (Helvetica) need no font file, so
the server bundles no binary font, but they show Windows-1252 only. ``printable`` keeps what
they show, reduces accented letters to their base letter (``ą`` → ``a``), replaces a few
symbols from ``fallbacks.json`` and shows anything else (Devanagari, CJK, emoji) as ``?``; the
PDF then says that some characters were replaced and that the report resource holds the exact
text. A PDF that renders is worth more than one that fails on a patient's name.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

ENCODING = "cp1252"  # what fpdf2's core fonts show (WinAnsiEncoding)
REPLACEMENT = "?"
# The PDF's creation date when the report states no issued time: fixed, so the bytes stay
# the same; the text then says the issue time is not stated.
NO_DATE = datetime(1970, 1, 1, tzinfo=UTC)
FONT = "helvetica"
LINE = 5.0
LABEL_WIDTH = 42.0


@dataclass(frozen=True)
class ReportFacts:
    """Everything the PDF shows, as plain text gathered from the resources (``facts.py``).

    Lists hold one item per line; an empty string or list means "not stated" and is shown so.
    """

    report_id: str
    version: str  # the versionId the PDF is stored with
    status: str  # final | amended | corrected | appended
    issued: str  # FHIR instant of the report's issue, "" when not stated
    title: str = "Second medical opinion"
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_gender: str = ""
    patient_identifiers: list[str] = field(default_factory=list)  # "Label: value"
    request_id: str = ""  # "ServiceRequest/<id>"
    request_identifiers: list[str] = field(default_factory=list)
    request_reasons: list[str] = field(default_factory=list)  # the covered condition(s)
    request_date: str = ""
    questions: list[str] = field(default_factory=list)  # the clinical question(s)
    requester: str = ""  # the requesting clinician
    clinic: str = ""  # the requesting clinic
    expert_name: str = ""
    expert_credentials: list[str] = field(default_factory=list)
    expert_specialties: list[str] = field(default_factory=list)
    expert_organization: str = ""
    conclusion: str = ""  # the findings, without the recommendations part
    results: list[str] = field(default_factory=list)  # "Test: value"
    outcomes: list[str] = field(default_factory=list)  # displays
    outcome_explanations: list[str] = field(default_factory=list)  # parallel to outcomes
    recommendations: list[str] = field(default_factory=list)
    correspondence: list[str] = field(default_factory=list)  # questions/answers in the review


# ---------------------------------------------------------------------------- text safety
@cache
def _fallbacks() -> dict[str, str]:
    data = json.loads((Path(__file__).parent / "fallbacks.json").read_text("utf-8"))
    return dict(data["map"])


def _shows(ch: str) -> bool:
    try:
        ch.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def _fold(ch: str) -> str | None:
    """``ch`` as characters the core fonts show, or None when there is no such form."""
    if ch == "\n":
        return ch
    if ch == "\t":
        return " "
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in _fallbacks():
        # Controls, format characters (zero-width joiners, direction marks), lone surrogates,
        # unassigned: nothing to show. Lone surrogates count as replaced (not valid text).
        return None if category in ("Cs", "Co", "Cn") else ""
    if _shows(ch):
        return ch
    if ch in _fallbacks():
        return _fallbacks()[ch]
    if category in ("Mn", "Me", "Mc"):
        return ""  # a combining mark (accent, vowel sign, emoji variation selector)
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(_shows(c) for c in base):
        return base
    return None


def printable(text: str) -> tuple[str, bool]:
    """``text`` as the PDF core fonts can show it, and whether a character had to be replaced
    by ``?`` (module docstring). Never raises."""
    out: list[str] = []
    replaced = False
    for ch in text:
        folded = _fold(ch)
        if folded is None:
            out.append(REPLACEMENT)
            replaced = True
        else:
            out.append(folded)
    return "".join(out), replaced


def _instant(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def shown_time(value: str) -> str:
    """A FHIR instant as a person reads it (UTC, to the minute); the raw text if unparsable."""
    parsed = _instant(value)
    if parsed is None:
        return value
    return parsed.astimezone(UTC).strftime("%d %B %Y, %H:%M UTC")


# --------------------------------------------------------------------------------- layout
class _Document(FPDF):
    def __init__(self, facts: ReportFacts) -> None:
        super().__init__(format="A4", unit="mm")
        self.core_fonts_encoding = ENCODING
        self.facts = facts
        self.replaced = False
        self.set_auto_page_break(auto=True, margin=22)
        self.set_margins(20, 18, 20)
        self.alias_nb_pages()

    def safe(self, text: str) -> str:
        shown, replaced = printable(text)
        self.replaced = self.replaced or replaced
        return shown

    def footer(self) -> None:
        f = self.facts
        self.set_y(-15)
        self.set_font(FONT, size=8)
        self.set_text_color(90, 90, 90)
        left = self.safe(f"DiagnosticReport/{f.report_id} - version {f.version} - {f.status}")
        self.cell(self.epw * 0.7, 5, left, align="L")
        self.cell(self.epw * 0.3, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0, 0, 0)

    # ------------------------------------------------------------------------ building blocks
    def heading(self, text: str) -> None:
        if self.will_page_break(LINE * 4):
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", 12)
        self.multi_cell(0, 7, self.safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(160, 160, 160)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)

    def row(self, label: str, value: str | list[str]) -> None:
        values = [value] if isinstance(value, str) else value
        text = "\n".join(v for v in values if v) or "not stated"
        self.set_font(FONT, "B", 10)
        y = self.get_y()
        if self.will_page_break(LINE):
            self.add_page()
            y = self.get_y()
        self.set_xy(self.l_margin, y)
        self.cell(LABEL_WIDTH, LINE, self.safe(label))
        self.set_font(FONT, "", 10)
        self.multi_cell(0, LINE, self.safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def paragraphs(self, text: str) -> None:
        self.set_font(FONT, "", 10)
        self.multi_cell(
            0, LINE, self.safe(text or "not stated"), new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def items(self, values: list[str], empty: str = "none stated") -> None:
        self.set_font(FONT, "", 10)
        if not values:
            self.multi_cell(0, LINE, empty, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            return
        for v in values:
            self.set_x(self.l_margin)
            self.cell(5, LINE, "\u2022")
            self.multi_cell(0, LINE, self.safe(v), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _build(pdf: _Document) -> None:
    f = pdf.facts
    pdf.add_page()
    pdf.set_font(FONT, "B", 18)
    pdf.multi_cell(0, 9, pdf.safe(f.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    issued = shown_time(f.issued) if f.issued else "issue time not stated"
    pdf.multi_cell(
        0,
        LINE,
        pdf.safe(f"{f.status.capitalize()} report - {issued}"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )

    pdf.heading("Patient")
    pdf.row("Name", f.patient_name)
    pdf.row("Date of birth", f.patient_birth_date)
    pdf.row("Gender", f.patient_gender)
    pdf.row("Identifiers", f.patient_identifiers)

    pdf.heading("Request")
    pdf.row("Request", [f.request_id, *f.request_identifiers])
    pdf.row("Requested on", f.request_date)
    pdf.row("Reason", f.request_reasons)
    pdf.row("Requested by", f.requester)
    pdf.row("Clinic", f.clinic)
    pdf.row("Clinical question", f.questions)

    pdf.heading("Expert")
    pdf.row("Name", f.expert_name)
    pdf.row("Credentials", f.expert_credentials)
    pdf.row("Specialty", f.expert_specialties)
    pdf.row("Organization", f.expert_organization)

    pdf.heading("Findings")
    pdf.paragraphs(f.conclusion)
    if f.results:
        pdf.ln(1)
        pdf.set_font(FONT, "B", 10)
        pdf.multi_cell(0, LINE, "Results", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.items(f.results)

    pdf.heading("Outcome" if len(f.outcomes) == 1 else "Outcomes")
    for i, outcome in enumerate(f.outcomes or ["not stated"]):
        pdf.set_font(FONT, "B", 10)
        pdf.multi_cell(0, LINE, pdf.safe(outcome), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        explanation = f.outcome_explanations[i] if i < len(f.outcome_explanations) else ""
        if explanation:
            pdf.set_font(FONT, "", 10)
            pdf.multi_cell(0, LINE, pdf.safe(explanation), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.heading("Recommendations")
    pdf.items(f.recommendations, "No separate recommendations were stated; see the findings.")

    if f.correspondence:
        pdf.heading("Questions and answers during the review")
        pdf.items(f.correspondence)

    pdf.heading("Signature")
    pdf.row("Signed by", f.expert_name)
    pdf.row("Credentials", f.expert_credentials)
    signed = (
        f"Electronically signed on {shown_time(f.issued)}"
        if f.issued
        else ("Electronically signed (issue time not stated)")
    )
    pdf.row("", signed)
    if pdf.replaced:
        pdf.ln(3)
        pdf.set_font(FONT, "I", 8)
        pdf.multi_cell(
            0,
            4,
            "Some characters cannot be shown in this PDF and are printed as '?'. The report "
            f"resource DiagnosticReport/{pdf.safe(f.report_id)} holds the exact text.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )


def render_report_pdf(facts: ReportFacts) -> bytes:
    """The report as PDF bytes; the same ``facts`` always give the same bytes."""
    pdf = _Document(facts)
    pdf.set_title(printable(f"{facts.title} - {facts.patient_name}".strip(" -"))[0])
    pdf.set_author(printable(facts.expert_name)[0])
    pdf.set_creator("Consilium")
    pdf.set_creation_date(_instant(facts.issued) or NO_DATE)
    _build(pdf)
    return bytes(pdf.output())
