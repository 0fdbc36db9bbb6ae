"""The pure coordination rules: which Task is one, transitions, who may change what, what the
server fills, and the participant rule of consultation Appointments."""

from __future__ import annotations

from typing import Any

import pytest

from profiles.conformance import CS_COORDINATION, PROFILE_COORDINATION_TASK
from profiles.terminology import in_value_set
from profiles.validator import validate
from resources import coordination as co
from resources.task import is_second_opinion_task


def task(service: str = "hotel", **kw: Any) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": CS_COORDINATION, "code": service}]},
        "partOf": [{"reference": "Task/case"}],
        "focus": {"reference": "ServiceRequest/sr"},
        "for": {"reference": "Patient/p"},
        "requester": {"reference": "Organization/clinic"},
        "owner": {"reference": "Organization/net"},
        "authoredOn": "2026-12-02T10:00:00Z",
        **kw,
    }


@pytest.mark.parametrize(
    ("resource", "service"),
    [
        (task("hotel"), "hotel"),
        (task("video-consultation"), "video-consultation"),
        ({"resourceType": "Task", "code": {"coding": [{"code": "hotel"}]}}, None),
        (
            {
                "resourceType": "Task",
                "code": {
                    "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "x"}]
                },
            },
            None,
        ),
        ({"resourceType": "Appointment", "code": task()["code"]}, None),
        (None, None),
    ],
)
def test_service_of(resource: dict[str, Any] | None, service: str | None) -> None:
    assert co.service_of(resource) == service


def test_a_coordination_task_is_not_a_case_task() -> None:
    assert not is_second_opinion_task(task())


@pytest.mark.parametrize(
    ("service", "requestable"),
    [
        ("appointment", True),
        ("medical-transport", True),
        ("hotel", True),
        ("travel-tickets", True),
        ("passport-visa", True),
        ("fee-negotiation", True),
        ("video-consultation", True),
        ("follow-up", False),
        ("spa", False),
    ],
)
def test_requestable(service: str, requestable: bool) -> None:
    assert co.requestable(service) is requestable


def test_every_service_is_in_the_value_set() -> None:
    assert len(co.known_services()) == 8
    for code in co.known_services():
        assert in_value_set(
            "https://consilium.health/fhir/ValueSet/coordination-service", CS_COORDINATION, code
        )


@pytest.mark.parametrize(
    ("service", "day", "due"),
    [
        ("hotel", "2026-12-04T10:00:00Z", "2026-12-09"),  # Friday + 3 business days
        ("follow-up", "2026-12-02", "2026-12-09"),  # Wednesday + 5
        ("video-consultation", "2026-12-05", "2026-12-11"),  # Saturday + 5
        ("spa", "2026-12-02", None),
        ("hotel", "not a date", None),
    ],
)
def test_default_due(service: str, day: str, due: str | None) -> None:
    assert co.default_due(service, day) == due


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ("requested", "accepted", True),
        ("requested", "rejected", True),
        ("requested", "cancelled", True),
        ("requested", "in-progress", False),
        ("requested", "completed", False),
        ("accepted", "in-progress", True),
        ("accepted", "failed", True),
        ("accepted", "rejected", False),
        ("accepted", "requested", False),
        ("in-progress", "completed", True),
        ("in-progress", "failed", True),
        ("in-progress", "cancelled", True),
        ("in-progress", "accepted", False),
        ("completed", "cancelled", False),
        ("cancelled", "requested", False),
        ("completed", "entered-in-error", True),
        ("entered-in-error", "entered-in-error", True),
    ],
)
def test_transitions(old: str, new: str, allowed: bool) -> None:
    assert co.transition_allowed(old, new) is allowed


@pytest.mark.parametrize(
    ("new", "old", "rule"),
    [
        (task(status="accepted"), task(), None),
        (task(status="in-progress"), task(), "coordination-transition"),
        (task(status="on-hold"), task(status="in-progress"), "coordination-transition"),
        (task(status="completed"), task(status="in-progress"), "coordination-output"),
        (
            task(status="completed", output=[{"type": {"text": "b"}, "valueString": "x"}]),
            task(status="in-progress"),
            None,
        ),
        (
            task(
                "video-consultation",
                status="completed",
                output=[{"type": {"text": "b"}, "valueString": "x"}],
            ),
            task("video-consultation", status="in-progress"),
            "video-consultation-appointment",
        ),
        (
            task(
                "video-consultation",
                status="completed",
                output=[{"type": {"text": "a"}, "valueReference": {"reference": "Appointment/a"}}],
            ),
            task("video-consultation", status="in-progress"),
            None,
        ),
        (task(status="rejected"), task(), "coordination-reason"),
        (task(status="rejected", statusReason={"text": "no rooms"}), task(), None),
        (task(status="failed"), task(status="accepted"), "coordination-reason"),
        (task(**{"for": {"reference": "Patient/q"}}), task(), "coordination-immutable"),
        (task("travel-tickets"), task(), "coordination-immutable"),
        (task(status="completed"), None, "coordination-output"),  # an import, still checked
        (task(status="accepted"), None, None),
        (task(status="draft"), None, "coordination-transition"),
    ],
)
def test_check_lifecycle(new: dict[str, Any], old: dict[str, Any] | None, rule: str | None) -> None:
    found = " ".join(d for d, _ in co.check_lifecycle(new, old))
    if rule is None:
        assert found == ""
    else:
        assert f"rule {rule}" in found


@pytest.mark.parametrize(
    ("party", "new", "old", "refusal"),
    [
        ("coordinator", task(status="accepted"), task(), None),
        ("trusted", task(status="accepted"), task(), None),
        ("requester", task(status="cancelled"), task(), None),
        ("requester", task(status="cancelled"), task(status="accepted"), None),
        (
            "requester",
            task(status="cancelled"),
            task(status="in-progress"),
            (422, "coordination-cancel-after-start"),
        ),
        ("requester", task(status="accepted"), task(), (403, "coordination-by-coordinator")),
        (
            "requester",
            task(owner={"reference": "Organization/clinic"}),
            task(),
            (403, "coordination-by-coordinator"),
        ),
        ("requester", task(note=[{"text": "late arrival"}]), task(), None),
        ("insurer", task(status="cancelled"), task(), (403, "coordination-not-yours")),
        ("other-clinic", task(status="cancelled"), task(), (403, "coordination-not-yours")),
        ("specialist", task(status="accepted"), task(), (403, "coordination-not-yours")),
    ],
)
def test_check_party_change(
    party: str,
    new: dict[str, Any],
    old: dict[str, Any],
    refusal: tuple[int, str] | None,
) -> None:
    found = co.check_party_change(party, new, old)
    assert (found[:2] if found else None) == refusal


def test_fill_request_sets_what_the_server_owns() -> None:
    sent = task(
        status="completed",
        intent="plan",
        partOf=[{"reference": "Task/elsewhere"}],
        output=[{"valueString": "x"}],
        businessStatus={"text": "done"},
    )
    sent.pop("owner")
    filled = co.fill_request(
        sent,
        case_task_id="case",
        request_id="sr",
        patient="p",
        requester={"reference": "Organization/clinic"},
        owner={"reference": "Organization/net"},
        authored="2026-12-02T10:00:00Z",
    )
    assert filled["status"] == "requested" and filled["intent"] == "order"
    assert filled["partOf"] == [{"reference": "Task/case"}]
    assert "output" not in filled and "businessStatus" not in filled
    assert filled["restriction"]["period"]["end"] == "2026-12-07"  # hotel: 3 business days
    assert filled["meta"]["profile"] == [PROFILE_COORDINATION_TASK]
    assert validate(filled, PROFILE_COORDINATION_TASK) == []


def test_fill_request_keeps_a_named_owner_and_due_date() -> None:
    sent = task(restriction={"period": {"end": "2027-01-31"}}, owner={"reference": "X/1"})
    filled = co.fill_request(
        sent,
        case_task_id="case",
        request_id="sr",
        patient="p",
        requester={"reference": "Patient/p"},
        owner={"reference": "Organization/net"},
        authored="2026-12-02T10:00:00Z",
    )
    assert filled["restriction"]["period"]["end"] == "2027-01-31"
    assert filled["owner"] == {"reference": "X/1"}


@pytest.mark.parametrize(
    ("owner", "kind"),
    [
        ({"reference": "PractitionerRole/c"}, "PractitionerRole"),
        ({"reference": "Organization/n"}, "Organization"),
        ({"reference": "Patient/p"}, None),
        (None, None),
    ],
)
def test_owner_kind(owner: Any, kind: str | None) -> None:
    assert co.owner_kind({"owner": owner}) == kind


def test_the_profile_refuses_a_task_without_its_case() -> None:
    bare = task()
    bare.pop("partOf")
    assert any(i.expression == "Task.partOf" for i in validate(bare, PROFILE_COORDINATION_TASK))


# --------------------------------------------------------------------------- appointments
def appt(expert: str = "needs-action", patient: str = "accepted", **kw: Any) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2026-12-21T15:00:00Z",
        "participant": [
            {"actor": {"reference": "Patient/p"}, "status": patient},
            {"actor": {"reference": "PractitionerRole/e"}, "status": expert},
        ],
        **kw,
    }


EXPERT = {"PractitionerRole/e"}


@pytest.mark.parametrize(
    ("actors", "new", "refusal"),
    [
        (EXPERT, appt("accepted"), None),
        (EXPERT, appt("declined"), None),
        (EXPERT, appt("booked"), (422, "appointment-participant-status")),
        (EXPERT, appt(patient="declined"), (403, "appointment-by-coordinator")),
        (EXPERT, appt(start="2026-12-22T15:00:00Z"), (403, "appointment-by-coordinator")),
        (EXPERT, appt(status="cancelled"), (403, "appointment-by-coordinator")),
        ({"PractitionerRole/other"}, appt("accepted"), (403, "appointment-not-a-participant")),
        (set(), appt(), (403, "appointment-not-a-participant")),
    ],
)
def test_check_participant_change(
    actors: set[str], new: dict[str, Any], refusal: tuple[int, str] | None
) -> None:
    found = co.check_participant_change(actors, new, appt())
    assert (found[:2] if found else None) == refusal
