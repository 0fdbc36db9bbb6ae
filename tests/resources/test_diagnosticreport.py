"""A final second-opinion report must state its outcome."""

from __future__ import annotations

from typing import Any

import pytest

from resources.diagnosticreport import check_report, is_second_opinion_report

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
