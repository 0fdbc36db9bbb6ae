"""DiagnosticReport: a final second-opinion report must state its outcome.

A report is a second-opinion report when it claims ``second-opinion-report``, already carries an
outcome code, or is basedOn a second-opinion request. Once ``final`` (or ``amended``, which is a
final report changed afterwards) its ``conclusionCode`` must hold a code of the
``second-opinion-outcome`` CodeSystem; preliminary (interim) reports may omit it.
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


def outcome_codes(report: dict[str, Any]) -> list[str]:
    known = set(codes(CS_OUTCOME))
    return [c for c in codes_in(report.get("conclusionCode"), CS_OUTCOME) if c in known]


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
