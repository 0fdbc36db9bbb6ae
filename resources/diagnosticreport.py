"""DiagnosticReport: the second-opinion report's outcome, and what its status moves do to the case.

A report is a second-opinion report when it claims ``second-opinion-report``, already carries an
outcome code, or is basedOn a second-opinion request. Once ``final`` (or ``amended``, which is a
final report changed afterwards) its ``conclusionCode`` must hold at least one code of the
``second-opinion-outcome`` CodeSystem — several are fine (an alternative diagnosis often comes
with an alternative treatment); preliminary (interim) reports may omit it.

``report_status_move`` maps a report's status change onto the case action it means
(``interim-report``, ``complete``, ``amend``), and refuses moves a report may not make. The
rules follow FHIR's DiagnosticReport status semantics:

* ``preliminary`` may be rewritten as often as the expert likes (each is an interim report), and
  becomes ``final`` once (``complete``).
* A final report never goes back to ``preliminary`` (or registered/partial): the member may
  already have read it.
* A final report changes only as ``amended``/``corrected``/``appended`` (``amend``), never as
  another ``final``: a change must be visible as a change. ``amended``/``corrected``/``appended``
  need a final report to change.
* ``entered-in-error`` is allowed from anything (retracting a mistaken record) and ends the
  report: nothing follows it. ``cancelled`` withdraws a report that never became final.
"""

from __future__ import annotations

from typing import Any

from profiles.conformance import CS_OUTCOME, PROFILE_REPORT
from profiles.terminology import codes
from resources.domain import (
    BusinessRuleViolation,
    HookTable,
    Violation,
    WriteEventLike,
    claims,
    codes_in,
    read_current,
    references,
)
from resources.servicerequest import is_second_opinion_request

NEEDS_OUTCOME = frozenset({"final", "amended"})
PRE_FINAL = frozenset({"registered", "partial", "preliminary"})
AMENDED = frozenset({"amended", "corrected", "appended"})  # R4: corrected/appended are amended
FINAL = frozenset({"final"}) | AMENDED
RETRACTED = "entered-in-error"
CANCELLED = "cancelled"
# Outcomes after which the plan may pay a third opinion (DOMAIN.md: the first two disagree).
THIRD_OPINION_OUTCOMES = frozenset({"alternative-diagnosis", "alternative-treatment"})


class ReportMoveError(BusinessRuleViolation):
    """A report status change the case rules refuse (the server answers 422)."""

    http_status = 422

    def __init__(self, code: str, explanation: str) -> None:
        super().__init__([(explanation, "DiagnosticReport.status")])
        self.code = code
        self.explanation = explanation


def outcome_codes(report: dict[str, Any]) -> list[str]:
    """Every known outcome code of the report, in order, each once."""
    known = set(codes(CS_OUTCOME))
    found = [c for c in codes_in(report.get("conclusionCode"), CS_OUTCOME) if c in known]
    return list(dict.fromkeys(found))


def warrants_third_opinion(report: dict[str, Any]) -> bool:
    """Did this (final) report disagree with the treating consultant?"""
    return bool(THIRD_OPINION_OUTCOMES & set(outcome_codes(report)))


def report_status_move(old: str | None, new: str) -> str | None:
    """The case action a report moving from ``old`` (None: created) to ``new`` means.

    ``"interim-report"``, ``"complete"``, ``"amend"``, or None when the move is allowed but
    changes nothing on the case (registered/partial drafts, cancelling an unfinished report,
    entered-in-error). Raises ``ReportMoveError`` for a move the report may not make (module
    docstring).
    """
    if new == RETRACTED:
        return None
    if old == RETRACTED:
        raise ReportMoveError(
            "report-retracted",
            "This report was marked entered-in-error and stays retracted; write a new report.",
        )
    if old == CANCELLED:
        if new == CANCELLED:
            return None
        raise ReportMoveError(
            "report-cancelled", "This report was cancelled; write a new report instead."
        )
    if new in PRE_FINAL or new == CANCELLED:
        if old in FINAL:
            raise ReportMoveError(
                "final-report-reopened",
                f"A {old} report cannot become {new} again: the member may already have read "
                "it. Change it as an amended (or corrected) report.",
            )
        if new == "preliminary":
            return "interim-report"
        if old == "preliminary" and new != CANCELLED:
            raise ReportMoveError(
                "report-status-backwards",
                f"A preliminary report cannot go back to {new}.",
            )
        return None
    if new == "final":
        if old in FINAL:
            raise ReportMoveError(
                "amend-as-amended",
                f"The report is already {old}; to change it, set its status to amended (or "
                "corrected), so readers can see it changed.",
            )
        return "complete"
    if new in AMENDED:
        if old in FINAL:
            return "amend"
        raise ReportMoveError(
            "nothing-to-amend",
            f"Only a final report can be {new}; issue the report as final first.",
        )
    raise ReportMoveError(
        "report-status-not-used",
        f"A second-opinion report is preliminary, final or amended, not {new}.",
    )


def check_report(report: dict[str, Any]) -> list[Violation]:
    status = report.get("status")
    if status in NEEDS_OUTCOME and not outcome_codes(report):
        return [
            (
                f"a {status} second-opinion report needs a conclusionCode from {CS_OUTCOME} "
                "(confirm-diagnosis | alternative-diagnosis | alternative-treatment | "
                "insufficient-information)",
                "DiagnosticReport.conclusionCode",
            )
        ]
    return []


def is_second_opinion_report(report: dict[str, Any] | None, repository: Any = None) -> bool:
    if not report or report.get("resourceType") != "DiagnosticReport":
        return False
    if claims(report, PROFILE_REPORT) or codes_in(report.get("conclusionCode"), CS_OUTCOME):
        return True
    if repository is None:
        return False
    return any(
        is_second_opinion_request(read_current(repository, "ServiceRequest", rid))
        for rid in references(report.get("basedOn", []), "ServiceRequest")
    )


def enforce_outcome(event: WriteEventLike) -> None:
    """PRE_WRITE: a final second-opinion report without an outcome code → 422."""
    report = event.resource
    if event.resource_type != "DiagnosticReport" or report is None:
        return
    if not is_second_opinion_report(report, event.repository):
        return
    issues = check_report(report)
    if issues:
        raise BusinessRuleViolation(issues)


HOOKS: HookTable = [("pre_write", enforce_outcome)]
