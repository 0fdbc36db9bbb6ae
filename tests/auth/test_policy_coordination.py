"""The policy's coordination-Task exception: which parties may write one, that the refusal of a
bare Task write is not final for them, and who reads which coordination Tasks."""

from __future__ import annotations

from typing import Any

import pytest

from auth.acl import COORDINATION_SYSTEM, compute_acl, coordination_service
from auth.policy import TASK_SERVER_MANAGED
from profiles.conformance import CS_COORDINATION
from tests.auth.test_policy import BOUND, CLINIC_A, COORD, EXPERT_1, INSURER_X, POLICY, who

HOTEL = {"coding": [{"system": COORDINATION_SYSTEM, "code": "hotel"}]}


def coordination(service: str = "hotel") -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": "x",
        "code": {"coding": [{"system": COORDINATION_SYSTEM, "code": service}]},
        "for": {"reference": "Patient/pa"},
        "focus": {"reference": "ServiceRequest/sr-a"},
    }


def test_the_canonical_is_the_guides() -> None:
    assert COORDINATION_SYSTEM == CS_COORDINATION


@pytest.mark.parametrize(
    ("task", "service"),
    [
        (coordination("fee-negotiation"), "fee-negotiation"),
        ({"code": {"coding": [{"system": "other", "code": "hotel"}]}}, None),
        ({"code": "hotel"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_coordination_service(task: dict[str, Any] | None, service: str | None) -> None:
    assert coordination_service(task) == service


def test_the_acl_of_a_coordination_task_names_its_service() -> None:
    acl = compute_acl("Task", "x", coordination(), None, None, lambda s: {})
    assert acl["service"] == "hotel" and acl["requests"] == ["sr-a"]
    assert "service" not in compute_acl("Task", "y", {"code": {}}, None, None, lambda s: {})


@pytest.mark.parametrize(
    ("party", "interaction", "final"),
    [
        ("clinic", "create", False),
        ("coordinator", "update", False),
        ("coordinator", "patch", False),
        ("clinic", "delete", True),
        ("specialist", "create", True),
        ("insurer", "create", True),
    ],
)
def test_a_bare_task_write_is_refused_but_not_always_finally(
    party: str, interaction: str, final: bool
) -> None:
    verdict = POLICY.decide(who("system/*.cruds", **BOUND[party]), interaction, "Task")
    assert (verdict.allowed, verdict.rule, verdict.final) == (False, "task-server-managed", final)
    assert verdict.reason == TASK_SERVER_MANAGED


@pytest.mark.parametrize(
    ("binding", "interaction", "allowed", "rule"),
    [
        (CLINIC_A, "create", True, "scope"),
        (COORD, "create", True, "scope"),
        (COORD, "update", True, "scope"),
        (CLINIC_A, "delete", False, "task-server-managed"),
        (EXPERT_1, "create", False, "task-server-managed"),
        (INSURER_X, "update", False, "task-server-managed"),
    ],
)
def test_decide_with_the_service(
    binding: dict[str, Any], interaction: str, allowed: bool, rule: str
) -> None:
    verdict = POLICY.decide(who("system/*.cruds", **binding), interaction, "Task", "hotel")
    assert (verdict.allowed, verdict.rule) == (allowed, rule)


def _write(binding: dict[str, Any], new: dict[str, Any], previous: dict[str, Any] | None) -> Any:
    p = who("system/*.cruds", **binding)
    new_acl = compute_acl("Task", "x", new, p, None, lambda s: {"pa": {"clinic-a"}})
    old_acl = None
    if previous is not None:
        old_acl = compute_acl("Task", "x", previous, None, None, lambda s: {"pa": {"clinic-a"}})
    interaction = "update" if previous is not None else "create"
    return POLICY.check_write(p, interaction, "Task", new, new_acl, old_acl, previous)


def test_a_clinic_writes_a_coordination_task_of_its_patient() -> None:
    assert _write(CLINIC_A, coordination(), None).rule == "clinic-own-patients"
    assert _write(CLINIC_A, coordination(), None).allowed


def test_a_coordinator_writes_one_on_behalf() -> None:
    assert _write(COORD, coordination(), coordination()).rule == "coordinator-on-behalf"


def test_a_case_task_cannot_be_turned_into_a_coordination_task() -> None:
    case_task = {**coordination(), "code": {"coding": [{"code": "fulfill"}]}}
    verdict = _write(COORD, coordination(), case_task)
    assert (verdict.allowed, verdict.rule) == (False, "task-server-managed")


def test_nor_a_coordination_task_into_a_case_task() -> None:
    case_task = {**coordination(), "code": {"coding": [{"code": "fulfill"}]}}
    verdict = _write(COORD, case_task, coordination())
    assert (verdict.allowed, verdict.rule) == (False, "task-server-managed")


def test_an_expert_cannot_write_one() -> None:
    verdict = _write(EXPERT_1, coordination(), None)
    assert (verdict.allowed, verdict.rule) == (False, "task-server-managed")


@pytest.mark.parametrize(
    ("binding", "acl", "allowed"),
    [
        (EXPERT_1, {"service": "video-consultation", "requests": ["sr-a"]}, True),
        (EXPERT_1, {"service": "hotel", "requests": ["sr-a"]}, True),
        (EXPERT_1, {"service": "hotel", "requests": ["sr-b"]}, False),
        (EXPERT_1, {"requests": ["sr-a"], "owners": ["e2"]}, False),  # a board Task of e2
        (INSURER_X, {"service": "fee-negotiation", "patients": ["pa"]}, True),
        (INSURER_X, {"service": "hotel", "patients": ["pa"]}, False),
        (INSURER_X, {"service": "video-consultation", "patients": ["pa"]}, False),
        (INSURER_X, {"patients": ["pa"]}, True),  # the case Task
        (INSURER_X, {"service": "fee-negotiation", "patients": ["pb"]}, False),
    ],
)
def test_who_reads_a_coordination_task(
    binding: dict[str, Any], acl: dict[str, Any], allowed: bool
) -> None:
    assert POLICY.can_read(who("system/*.rs", **binding), "Task", {"id": "x"}, acl) is allowed


@pytest.mark.parametrize(
    ("binding", "interaction", "allowed"),
    [
        (COORD, "create", True),
        (EXPERT_1, "update", True),
        (CLINIC_A, "create", True),  # the engine refuses a clinic's consultation booking
        (INSURER_X, "read", False),
        (INSURER_X, "create", False),
    ],
)
def test_appointments(binding: dict[str, Any], interaction: str, allowed: bool) -> None:
    verdict = POLICY.decide(who("system/*.cruds", **binding), interaction, "Appointment")
    assert verdict.allowed is allowed
