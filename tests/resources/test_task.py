"""The case lifecycle as pure tables: transitions, business status fit, task rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from resources.task import business_status_fits, check_task, transition_allowed

B = "https://consilium.health/fhir"
CBS = f"{B}/CodeSystem/case-business-status"
STATUSES = [
    "requested", "accepted", "rejected", "ready", "in-progress", "on-hold",
    "completed", "failed", "cancelled",
]  # fmt: skip
ALLOWED = {
    ("requested", "accepted"), ("requested", "rejected"), ("requested", "cancelled"),
    ("accepted", "ready"), ("accepted", "cancelled"),
    ("ready", "in-progress"), ("ready", "cancelled"),
    ("in-progress", "on-hold"), ("on-hold", "in-progress"),
    ("in-progress", "completed"), ("in-progress", "failed"), ("in-progress", "cancelled"),
    ("on-hold", "cancelled"),
}  # fmt: skip


@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_transition_table(old: str, new: str) -> None:
    assert transition_allowed(old, new) is (old == new or (old, new) in ALLOWED)


@pytest.mark.parametrize("new", STATUSES)
def test_create_may_start_anywhere(new: str) -> None:
    assert transition_allowed(None, new)


@pytest.mark.parametrize("old", [*STATUSES])
def test_entered_in_error_from_anywhere_and_final(old: str) -> None:
    assert transition_allowed(old, "entered-in-error")
    assert not transition_allowed("entered-in-error", old)


@pytest.mark.parametrize(
    ("status", "code", "fits"),
    [
        ("requested", "received", True),
        ("requested", "eligibility-check", True),
        ("requested", "eligible", False),
        ("accepted", "eligible", True),
        ("rejected", "condition-not-covered", True),
        ("rejected", "rejected", False),  # the grouper: a rejection carries its reason
        ("rejected", "eligible", False),
        ("ready", "expert-matched", True),
        ("in-progress", "case-retrieved", True),
        ("in-progress", "under-review", True),
        ("on-hold", "awaiting-information", True),
        ("on-hold", "under-review", False),
        ("completed", "report-issued", True),
        ("completed", "under-review", False),
        ("cancelled", "cancelled", True),
        ("failed", "failed", True),
        ("in-progress", None, False),
        ("in-progress", "no-such-code", False),
    ],
)
def test_business_status_fits(status: str, code: str | None, fits: bool) -> None:
    assert business_status_fits(status, code) is fits


def task(status: str, code: str, **extra: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "resourceType": "Task",
        "status": status,
        "businessStatus": {"coding": [{"system": CBS, "code": code}]},
        "owner": {"reference": "PractitionerRole/e1"},
    }
    t.update(extra)
    return t


REPORT_OUT = [{"type": {"text": "report"}, "valueReference": {"reference": "DiagnosticReport/r1"}}]
REASON = {"coding": [{"system": CBS, "code": "member-not-found"}]}

# (new task, previous task or None, expected violated expressions)
CASES: list[tuple[dict[str, Any], dict[str, Any] | None, list[str]]] = [
    (task("requested", "received"), None, []),
    (task("accepted", "eligible"), task("requested", "eligibility-check"), []),
    (
        task("completed", "report-issued"),
        task("requested", "received"),
        ["Task.status", "Task.output"],
    ),
    (
        task("completed", "report-issued", output=REPORT_OUT),
        task("in-progress", "under-review"),
        [],
    ),
    (
        task("completed", "report-issued", output=[{"type": {"text": "x"}, "valueString": "done"}]),
        task("in-progress", "under-review"),
        ["Task.output"],
    ),
    (task("in-progress", "under-review"), task("completed", "report-issued"), ["Task.status"]),
    (task("rejected", "member-not-found", statusReason=REASON), task("requested", "received"), []),
    (task("rejected", "member-not-found"), task("requested", "received"), ["Task.statusReason"]),
    (
        task("rejected", "member-not-found", statusReason={"text": "no cover"}),
        None,
        ["Task.statusReason"],
    ),
    (task("on-hold", "under-review"), task("in-progress", "under-review"), ["Task.businessStatus"]),
    (
        {k: v for k, v in task("ready", "expert-matched").items() if k != "owner"},
        task("accepted", "eligible"),
        ["Task.owner"],
    ),
    (
        task("ready", "expert-matched", owner={"reference": "Practitioner/p"}),
        None,
        ["Task.owner"],
    ),
    (task("entered-in-error", "received"), task("in-progress", "under-review"), []),
]


@pytest.mark.parametrize(("new", "previous", "expected"), CASES)
def test_check_task(
    new: dict[str, Any], previous: dict[str, Any] | None, expected: list[str]
) -> None:
    assert sorted(e for _, e in check_task(copy.deepcopy(new), previous)) == sorted(expected)
