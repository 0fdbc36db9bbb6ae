"""Coordination services over HTTP with bound party tokens: a clinic requests, a coordinator
does the work, the expert and the clinic see the consultation, the insurer does not; the final
report opens the follow-up (docs/coordination.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.cases.kit import FHIR, Case, Kit, ok, ref

CS = "https://consilium.health/fhir/CodeSystem/coordination-service"
PROFILE = "https://consilium.health/fhir/StructureDefinition/coordination-task"
LEAD = "exp-oncology-ca"
NETWORK = "Organization/net-consilium-experts"


def body(case_task: str, service: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": CS, "code": service}]},
        "partOf": [ref(f"Task/{case_task}")],
        "input": [{"type": {"text": "check-in"}, "valueDate": "2026-12-20"}],
        **extra,
    }


def request(kit: Kit, case: Case, service: str, headers: dict[str, str], **extra: Any) -> Any:
    task = kit.task(case)
    return kit.http.post(
        "/fhir/Task", json=body(task["id"], service, **extra), headers={**FHIR, **headers}
    )


def put(kit: Kit, task: dict[str, Any], headers: dict[str, str], **changes: Any) -> Any:
    new = {**task, **changes}
    return kit.http.put(f"/fhir/Task/{task['id']}", json=new, headers={**FHIR, **headers})


def rule_of(r: Any) -> str:
    return str(r.json()["issue"][0]["diagnostics"])


def search(kit: Kit, query: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    bundle = ok(kit.http.get(f"/fhir/Task?{query}", headers=headers or kit.p.coordinator))
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.fixture(scope="module")
def case(kit: Kit) -> Case:
    return kit.new_case()


# ----------------------------------------------------------------------------- requesting
def test_the_clinic_requests_a_hotel_and_the_server_fills_the_rest(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    case_task = kit.task(case)
    assert task["status"] == "requested"
    assert task["intent"] == "order"
    assert task["meta"]["profile"][0] == PROFILE
    assert task["partOf"] == [ref(f"Task/{case_task['id']}")]
    assert task["focus"] == ref(f"ServiceRequest/{case.sr}")
    assert task["for"] == ref(f"Patient/{case.patient}")
    assert task["owner"] == ref(NETWORK)
    assert task["requester"] == ref("Organization/clinic-lakeshore")
    assert task["authoredOn"]
    assert task["restriction"]["period"]["end"] > task["authoredOn"][:10]
    assert task["input"][0]["valueDate"] == "2026-12-20"


def test_what_the_clinic_claims_for_the_server_is_overwritten(kit: Kit, case: Case) -> None:
    task = ok(
        request(
            kit,
            case,
            "medical-transport",
            kit.p.clinic,
            owner=ref("Organization/clinic-lakeshore"),
            output=[{"type": {"text": "booking"}, "valueString": "fake"}],
        ),
        201,
    )
    assert task["owner"] == ref(NETWORK)
    assert "output" not in task


def test_a_clinics_due_date_is_kept(kit: Kit, case: Case) -> None:
    wanted = {"period": {"end": "2027-01-15"}}
    task = ok(request(kit, case, "travel-tickets", kit.p.clinic, restriction=wanted), 201)
    assert task["restriction"]["period"]["end"] == "2027-01-15"


def test_a_hotel_goes_from_requested_to_completed_with_its_booking(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    task = ok(put(kit, task, kit.p.coordinator, status="accepted"))
    task = ok(
        put(
            kit,
            task,
            kit.p.coordinator,
            status="in-progress",
            owner=ref("Organization/net-consilium-experts"),
        )
    )
    assert "start" in task["executionPeriod"]
    booking = [{"type": {"text": "booking reference"}, "valueString": "HTL-42"}]
    task = ok(put(kit, task, kit.p.coordinator, status="completed", output=booking))
    assert task["status"] == "completed"
    assert task["output"][0]["valueString"] == "HTL-42"
    assert "end" in task["executionPeriod"]
    seen = kit.read(f"Task/{task['id']}", kit.p.clinic)
    assert seen["output"] == booking


def test_a_clinic_cannot_request_for_another_clinics_case(kit: Kit, case: Case) -> None:
    r = request(kit, case, "hotel", kit.p.clinic_b)
    assert r.status_code == 403, r.text


@pytest.mark.parametrize("who", ["insurer", "expert"])
def test_experts_and_insurers_cannot_request(kit: Kit, case: Case, who: str) -> None:
    headers = kit.p.expert(LEAD) if who == "expert" else kit.p.insurer
    r = request(kit, case, "hotel", headers)
    assert r.status_code == 403, r.text
    assert "task-server-managed" in rule_of(r) or "scope" in rule_of(r)


def test_a_clinic_still_cannot_write_the_case_task(kit: Kit, case: Case) -> None:
    task = kit.task(case)
    r = put(kit, task, kit.p.clinic, status="cancelled")
    assert r.status_code == 403
    assert "task-server-managed" in rule_of(r)


def test_a_clinic_cannot_request_the_follow_up(kit: Kit, case: Case) -> None:
    r = request(kit, case, "follow-up", kit.p.clinic)
    assert r.status_code == 422
    assert "coordination-not-requestable" in rule_of(r)


def test_an_unknown_service_is_refused(kit: Kit, case: Case) -> None:
    r = request(kit, case, "spa-weekend", kit.p.clinic)
    assert r.status_code == 422, r.text


def test_part_of_must_be_a_case_task(kit: Kit, case: Case) -> None:
    hotel = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    r = kit.http.post(
        "/fhir/Task", json=body(hotel["id"], "hotel"), headers={**FHIR, **kit.p.clinic}
    )
    assert r.status_code == 422
    assert "coordination-part-of" in rule_of(r)
    r = kit.http.post(
        "/fhir/Task", json=body("no-such-task", "hotel"), headers={**FHIR, **kit.p.clinic}
    )
    assert r.status_code in (404, 422), r.text


def test_a_malformed_body_is_a_400(kit: Kit, case: Case) -> None:
    bad = {**body(kit.task(case)["id"], "hotel"), "status": "bogus"}
    r = kit.http.post("/fhir/Task", json=bad, headers={**FHIR, **kit.p.clinic})
    assert r.status_code == 400, r.text


def test_a_coordinator_requests_on_a_members_call(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "passport-visa", kit.p.coordinator), 201)
    assert task["requester"] == ref(f"Patient/{case.patient}")
    assert task["status"] == "requested"


# ------------------------------------------------------------------------------- moving
@pytest.mark.parametrize(
    ("path", "rule"),
    [
        (["completed"], "coordination-transition"),
        (["accepted", "in-progress", "completed"], "coordination-output"),
        (["accepted", "rejected"], "coordination-transition"),
        (["in-progress"], "coordination-transition"),
        (["accepted", "requested"], "coordination-transition"),
        (["rejected"], "coordination-reason"),
    ],
)
def test_wrong_transitions_are_422(kit: Kit, case: Case, path: list[str], rule: str) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    for status in path[:-1]:
        task = ok(put(kit, task, kit.p.coordinator, status=status))
    r = put(kit, task, kit.p.coordinator, status=path[-1])
    assert r.status_code == 422, r.text
    assert rule in rule_of(r)


def test_a_completed_task_is_final(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    for status in ("accepted", "in-progress"):
        task = ok(put(kit, task, kit.p.coordinator, status=status))
    out = [{"type": {"text": "booking"}, "valueString": "X"}]
    task = ok(put(kit, task, kit.p.coordinator, status="completed", output=out))
    r = put(kit, task, kit.p.coordinator, status="cancelled")
    assert r.status_code == 422


def test_the_clinic_may_cancel_before_the_work_starts(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    task = ok(put(kit, task, kit.p.coordinator, status="accepted"))
    task = ok(put(kit, task, kit.p.clinic, status="cancelled"))
    assert task["status"] == "cancelled"


def test_the_clinic_may_not_cancel_work_in_progress(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    for status in ("accepted", "in-progress"):
        task = ok(put(kit, task, kit.p.coordinator, status=status))
    r = put(kit, task, kit.p.clinic, status="cancelled")
    assert r.status_code == 422
    assert "coordination-cancel-after-start" in rule_of(r)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "accepted"},
        {"owner": ref("Organization/clinic-lakeshore")},
        {"output": [{"type": {"text": "booking"}, "valueString": "self-made"}]},
    ],
)
def test_the_clinic_does_not_do_the_coordinators_work(
    kit: Kit, case: Case, change: dict[str, Any]
) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    r = put(kit, task, kit.p.clinic, **change)
    assert r.status_code == 403, r.text
    assert "coordination-by-coordinator" in rule_of(r)


def test_another_clinic_cannot_touch_it(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    r = put(kit, task, kit.p.clinic_b, status="cancelled")
    assert r.status_code in (403, 404)


def test_what_identifies_the_request_never_changes(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    other = {"coding": [{"system": CS, "code": "travel-tickets"}]}
    r = put(kit, task, kit.p.coordinator, code=other)
    assert r.status_code == 422
    assert "coordination-immutable" in rule_of(r)


def test_an_expert_cannot_own_coordination_work(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    r = put(kit, task, kit.p.coordinator, owner=ref(f"PractitionerRole/{LEAD}"))
    assert r.status_code == 422
    assert "coordination-owner" in rule_of(r)


@pytest.mark.parametrize("who", ["clinic", "coordinator"])
def test_nobody_bound_deletes_a_coordination_task(kit: Kit, case: Case, who: str) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    headers = kit.p.clinic if who == "clinic" else kit.p.coordinator
    r = kit.http.delete(f"/fhir/Task/{task['id']}", headers=headers)
    assert r.status_code == 403


def test_the_expert_cannot_move_a_coordination_task(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "video-consultation", kit.p.clinic), 201)
    r = put(kit, task, kit.p.expert(LEAD), status="accepted")
    assert r.status_code == 403
