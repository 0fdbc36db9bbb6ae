"""A final second-opinion report must state its outcome; its status moves map to case actions."""

from __future__ import annotations

from typing import Any

import pytest

from resources.diagnosticreport import (
    ReportMoveError,
    check_report,
    is_second_opinion_report,
    outcome_codes,
    report_status_move,
    warrants_third_opinion,
)

OUTCOME = "https://consilium.health/fhir/CodeSystem/second-opinion-outcome"


def report(status: str, *codes: tuple[str, str]) -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": "DiagnosticReport", "status": status}
    if codes:
        r["conclusionCode"] = [{"coding": [{"system": s, "code": c}]} for s, c in codes]
    return r


@pytest.mark.parametrize(
    ("resource", "ok"),
    [
        (report("final", (OUTCOME, "confirm-diagnosis")), True),
        (
            report("final", ("http://snomed.info/sct", "1"), (OUTCOME, "alternative-treatment")),
            True,
        ),
        (report("amended", (OUTCOME, "insufficient-information")), True),
        (report("preliminary"), True),
        (report("final"), False),
        (report("amended"), False),
        (report("final", (OUTCOME, "maybe")), False),
        (report("final", ("http://snomed.info/sct", "confirm-diagnosis")), False),
    ],
)
def test_check_report(resource: dict[str, Any], ok: bool) -> None:
    assert (check_report(resource) == []) is ok


def test_recognised_without_repository_by_profile_or_outcome() -> None:
    claimed = {
        "resourceType": "DiagnosticReport",
        "meta": {
            "profile": ["https://consilium.health/fhir/StructureDefinition/second-opinion-report"]
        },
    }
    assert is_second_opinion_report(claimed)
    assert is_second_opinion_report(report("final", (OUTCOME, "confirm-diagnosis")))
    assert not is_second_opinion_report(report("final"))


def test_several_outcomes_all_count() -> None:
    r = report(
        "final",
        (OUTCOME, "alternative-diagnosis"),
        (OUTCOME, "maybe"),
        (OUTCOME, "alternative-treatment"),
        (OUTCOME, "alternative-diagnosis"),
    )
    assert outcome_codes(r) == ["alternative-diagnosis", "alternative-treatment"]
    assert check_report(r) == []


@pytest.mark.parametrize(
    ("codes", "third"),
    [
        (["confirm-diagnosis"], False),
        (["alternative-diagnosis"], True),
        (["confirm-diagnosis", "alternative-treatment"], True),
        (["insufficient-information"], False),
        ([], False),
    ],
)
def test_warrants_third_opinion(codes: list[str], third: bool) -> None:
    assert warrants_third_opinion(report("final", *((OUTCOME, c) for c in codes))) is third


# (old status or None for a create, new status, case action or the refusal code)
MOVES: list[tuple[str | None, str, str | None]] = [
    (None, "preliminary", "interim-report"),
    (None, "final", "complete"),
    (None, "amended", "!nothing-to-amend"),
    (None, "corrected", "!nothing-to-amend"),
    (None, "registered", None),
    (None, "entered-in-error", None),
    ("registered", "preliminary", "interim-report"),
    ("partial", "final", "complete"),
    ("preliminary", "preliminary", "interim-report"),
    ("preliminary", "final", "complete"),
    ("preliminary", "amended", "!nothing-to-amend"),
    ("preliminary", "registered", "!report-status-backwards"),
    ("preliminary", "cancelled", None),
    ("preliminary", "entered-in-error", None),
    ("final", "preliminary", "!final-report-reopened"),
    ("final", "partial", "!final-report-reopened"),
    ("final", "final", "!amend-as-amended"),
    ("final", "amended", "amend"),
    ("final", "corrected", "amend"),
    ("final", "appended", "amend"),
    ("final", "cancelled", "!final-report-reopened"),
    ("final", "entered-in-error", None),
    ("amended", "amended", "amend"),
    ("amended", "corrected", "amend"),
    ("corrected", "amended", "amend"),
    ("amended", "final", "!amend-as-amended"),
    ("amended", "preliminary", "!final-report-reopened"),
    ("amended", "entered-in-error", None),
    ("entered-in-error", "final", "!report-retracted"),
    ("entered-in-error", "preliminary", "!report-retracted"),
    ("entered-in-error", "entered-in-error", None),
    ("cancelled", "final", "!report-cancelled"),
    ("cancelled", "cancelled", None),
    ("preliminary", "unknown", "!report-status-not-used"),
]


@pytest.mark.parametrize(("old", "new", "outcome"), MOVES)
def test_report_status_move(old: str | None, new: str, outcome: str | None) -> None:
    if outcome is not None and outcome.startswith("!"):
        with pytest.raises(ReportMoveError) as err:
            report_status_move(old, new)
        assert err.value.code == outcome[1:]
        assert err.value.http_status == 422
        assert err.value.issues[0][1] == "DiagnosticReport.status"
    else:
        assert report_status_move(old, new) == outcome
