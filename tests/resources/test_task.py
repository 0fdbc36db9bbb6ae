"""The case lifecycle as pure tables: transitions, business status fit, task rules, actions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from profiles.terminology import concept
from resources.task import (
    ACTIONS,
    PARTIES,
    business_status_fits,
    check_action,
    check_task,
    needs_owner,
    transition_allowed,
)

B = "https://consilium.health/fhir"
CBS = f"{B}/CodeSystem/case-business-status"
STATUSES = [
    "requested", "accepted", "rejected", "ready", "in-progress", "on-hold",
    "completed", "failed", "cancelled",
]  # fmt: skip
ALLOWED = {
    ("requested", "accepted"), ("requested", "rejected"), ("requested", "cancelled"),
    ("accepted", "in-progress"), ("accepted", "ready"), ("accepted", "cancelled"),
    ("ready", "in-progress"), ("ready", "cancelled"),
    ("in-progress", "on-hold"), ("on-hold", "in-progress"),
    ("in-progress", "completed"), ("in-progress", "failed"), ("in-progress", "cancelled"),
    ("in-progress", "accepted"),  # declined or reassigned: back to matching
    ("on-hold", "completed"), ("on-hold", "cancelled"), ("on-hold", "accepted"),
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


@pytest.mark.parametrize(
    ("status", "business", "needed"),
    [
        ("requested", "received", False),
        ("accepted", "eligible", False),
        ("accepted", "awaiting-expert", False),
        ("accepted", "expert-assigned", True),
        ("ready", "expert-matched", True),
        ("in-progress", "case-retrieved", True),
        ("on-hold", "awaiting-information", True),
        ("completed", "report-issued", True),
        ("failed", "failed", True),
        ("cancelled", "cancelled", False),
        ("rejected", "member-not-found", False),
    ],
)
def test_needs_owner(status: str, business: str, needed: bool) -> None:
    assert needs_owner(status, business) is needed


# --- the action table -------------------------------------------------------------------------

ALL_STATUSES = [*STATUSES, "entered-in-error"]
TERMINAL = {"rejected", "completed", "failed", "cancelled", "entered-in-error"}
OPEN = {"requested", "accepted", "ready", "in-progress", "on-hold"}
REVIEWING = {"accepted", "in-progress", "on-hold"}
# The brief's table, transcribed: action → {party: statuses it may act from}. "trusted" may do
# every party action (not the server's own), from wherever any party may.
SPEC: dict[str, dict[str, set[str]]] = {
    "accept": {"server": {"requested"}},
    "reject": {"server": {"requested"}},
    "assign": {"server": {"accepted"}},
    "await-expert": {"server": {"accepted"}},
    "start-review": {"assigned-expert": {"accepted", "ready"}},
    "ask": {"assigned-expert": {"in-progress"}},
    "answer": {"clinic": {"on-hold"}, "coordinator": {"on-hold"}},
    "interim-report": {"assigned-expert": {"in-progress"}},
    "complete": {"assigned-expert": {"in-progress", "on-hold"}},
    "amend": {"assigned-expert": {"completed"}},
    "cancel": {"clinic": {"requested", "accepted", "ready"}, "coordinator": OPEN},
    "decline": {"assigned-expert": {"accepted", "in-progress"}},
    "reassign": {"coordinator": REVIEWING},
    "add-expert": {"coordinator": REVIEWING},
}
for _rules in SPEC.values():
    if "server" not in _rules:
        _rules["trusted"] = set().union(*_rules.values())
# (to status, business status) each action leads to; None: unchanged / chosen by the engine.
MOVES: dict[str, tuple[str | None, str | None]] = {
    "accept": ("accepted", "eligible"),
    "reject": ("rejected", None),
    "assign": ("accepted", "expert-assigned"),
    "await-expert": ("accepted", "awaiting-expert"),
    "start-review": ("in-progress", "case-retrieved"),
    "ask": ("on-hold", "awaiting-information"),
    "answer": ("in-progress", "under-review"),
    "interim-report": ("in-progress", "interim-report"),
    "complete": ("completed", "report-issued"),
    "amend": (None, None),
    "cancel": ("cancelled", "cancelled"),
    "decline": ("accepted", None),
    "reassign": ("accepted", None),
    "add-expert": (None, None),
}


def test_the_table_has_exactly_the_specified_actions() -> None:
    assert set(ACTIONS) == set(SPEC) == set(MOVES)


@pytest.mark.parametrize("action", sorted(SPEC))
def test_action_moves(action: str) -> None:
    a = ACTIONS[action]
    assert (a.to_status, a.business_status) == MOVES[action]


def expected(action: str, party: str, status: str) -> tuple[int, str | None] | None:
    allowed = SPEC[action].get(party)
    if allowed is None:
        return (403, "action-not-permitted")
    if status in allowed:
        return None
    return (422, "case-closed" if status in TERMINAL else None)


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("party", sorted(PARTIES))
@pytest.mark.parametrize("action", sorted(SPEC))
def test_check_action_matrix(action: str, party: str, status: str) -> None:
    got = check_action(action, status, party)
    want = expected(action, party, status)
    if want is None:
        assert got is None
        return
    assert got is not None
    http, code, explanation = got
    assert http == want[0]
    if want[1] is not None:
        assert code == want[1]
    else:
        assert code not in ("action-not-permitted", "case-closed")
    assert explanation


@pytest.mark.parametrize(
    ("action", "status", "party", "code"),
    [
        ("cancel", "in-progress", "clinic", "cancel-after-review-started"),
        ("cancel", "on-hold", "clinic", "cancel-after-review-started"),
        ("cancel", "completed", "clinic", "case-closed"),
        ("cancel", "completed", "coordinator", "case-closed"),
        ("start-review", "in-progress", "assigned-expert", "review-not-startable"),
        ("answer", "in-progress", "clinic", "no-open-question"),
        ("amend", "in-progress", "assigned-expert", "not-completed"),
        ("complete", "accepted", "assigned-expert", "not-under-review"),
    ],
)
def test_refusal_codes(action: str, status: str, party: str, code: str) -> None:
    got = check_action(action, status, party)
    assert got is not None and got[1] == code


def test_refusal_explains_in_plain_words() -> None:
    got = check_action("cancel", "in-progress", "clinic")
    assert got is not None and "coordinator" in got[2] and "in-progress" in got[2]


def test_unknown_action_is_400() -> None:
    got = check_action("teleport", "accepted", "trusted")
    assert got is not None and got[:2] == (400, "unknown-action")


@pytest.mark.parametrize("action", sorted(SPEC))
def test_every_action_move_is_a_legal_transition(action: str) -> None:
    a = ACTIONS[action]
    for old in a.from_statuses | {s for r in a.per_party.values() for s in r.from_statuses}:
        assert transition_allowed(old, a.to_status or old), (action, old)


@pytest.mark.parametrize(
    "action", sorted(n for n, a in ACTIONS.items() if a.to_status and a.business_status)
)
def test_action_business_status_goes_with_its_status(action: str) -> None:
    a = ACTIONS[action]
    assert a.to_status is not None and a.business_status is not None
    cbs = "https://consilium.health/fhir/CodeSystem/case-business-status"
    if concept(cbs, a.business_status) is None:
        pytest.skip(f"{a.business_status} is not in the CodeSystem yet (the terms change)")
    assert business_status_fits(a.to_status, a.business_status)
