"""Second-opinion requests: recognising one, the Task that opens its case, the old adapter."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from resources.coverage import PlanBenefits
from resources.servicerequest import (
    HOOKS,
    case_task_id,
    check_eligibility,
    is_second_opinion_request,
    new_case_task,
)
from tests.resources.case_samples import CONDITION, COVERAGE, REQUEST, S

TODAY = date(2026, 11, 25)
SR: dict[str, Any] = {k: v for k, v in REQUEST.items() if k != "reasonReference"}
BENEFITS = PlanBenefits(included=True, opinions_per_year=2, opinions_used=1, turnaround_days=10)

Args = tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, PlanBenefits | None]
Edit = Callable[[Args], Args]

# The deprecated adapter: (eligible, first failure code) of the new rules.
LEGACY: list[tuple[str, Edit, tuple[bool, str | None]]] = [
    ("eligible", lambda a: a, (True, None)),
    ("no coverage", lambda a: (a[0], None, None, a[3]), (False, "member-not-found")),
    (
        "lapsed and not covered: the first failure",
        lambda a: (a[0], {**COVERAGE, "status": "cancelled"}, {"code": {"text": "x"}}, a[3]),
        (False, "coverage-not-in-force"),
    ),
    (
        "benefit used up",
        lambda a: (a[0], a[1], a[2], PlanBenefits(True, 1, 1)),
        (False, "benefit-exhausted"),
    ),
    (
        "only a letter attached",
        lambda a: ({**a[0], "supportingInfo": [{"reference": "DocumentReference/x"}]}, *a[1:]),
        (False, "investigations-incomplete"),
    ),
]


@pytest.mark.parametrize(("name", "edit", "expected"), LEGACY, ids=[c[0] for c in LEGACY])
def test_deprecated_check_eligibility(
    name: str, edit: Edit, expected: tuple[bool, str | None]
) -> None:
    sr, coverage, condition, benefits = edit(
        (copy.deepcopy(SR), copy.deepcopy(COVERAGE), copy.deepcopy(CONDITION), BENEFITS)
    )
    assert check_eligibility(sr, coverage, condition, benefits, today=TODAY) == expected


def test_is_second_opinion_request() -> None:
    assert is_second_opinion_request(SR)
    assert not is_second_opinion_request({**SR, "reasonCode": [{"text": "S"}]})
    assert not is_second_opinion_request({"resourceType": "Task", "reasonCode": [S]})
    assert not is_second_opinion_request(None)


def test_new_case_task_opens_a_received_case() -> None:
    t = new_case_task(SR, "sr-1")
    assert t["id"] == case_task_id("sr-1") != case_task_id("sr-2")
    assert (t["status"], t["businessStatus"]["coding"][0]["code"]) == ("requested", "received")
    assert t["focus"] == t["basedOn"][0] == {"reference": "ServiceRequest/sr-1"}
    assert t["code"]["coding"][0]["code"] == "fulfill"
    assert (t["for"], t["requester"], t["insurance"]) == (
        SR["subject"],
        SR["requester"],
        SR["insurance"],
    )
    assert "restriction" not in t and "authoredOn" not in t


def test_new_case_task_carries_authored_and_due_dates() -> None:
    t = new_case_task(
        SR, "sr-1", authored="2026-11-25T10:00:00Z", start="2026-11-25", due="2026-12-02"
    )
    assert t["authoredOn"] == "2026-11-25T10:00:00Z"
    assert t["restriction"] == {"period": {"start": "2026-11-25", "end": "2026-12-02"}}


def test_new_case_task_due_date_alone() -> None:
    assert new_case_task(SR, "sr-1", due="2026-12-02")["restriction"] == {
        "period": {"end": "2026-12-02"}
    }


def test_requests_open_no_case_by_hook() -> None:
    """The case engine opens cases inside the submission's transaction; no hook here."""
    assert HOOKS == []
