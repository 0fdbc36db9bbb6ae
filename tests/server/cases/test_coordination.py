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
    if "_count=" not in query:  # the module's shared case collects many services
        query += "&_count=500"
    bundle = ok(kit.http.get(f"/fhir/Task?{query}", headers=headers or kit.p.coordinator))
    assert "next" not in {link["relation"] for link in bundle.get("link", [])}
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


# ------------------------------------------------------------------ video consultation
def appointment(case: Case, task_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2026-12-21T15:00:00Z",
        "end": "2026-12-21T15:30:00Z",
        "basedOn": [ref(f"ServiceRequest/{case.sr}")],
        "participant": [{"actor": ref(f"Patient/{case.patient}"), "status": "accepted"}],
        **extra,
    }
    if task_id:
        body["supportingInformation"] = [ref(f"Task/{task_id}")]
    return body


def book(kit: Kit, case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
    """(video-consultation Task, Appointment): requested by the clinic, booked by the
    coordinator."""
    task = ok(request(kit, case, "video-consultation", kit.p.clinic), 201)
    task = ok(put(kit, task, kit.p.coordinator, status="accepted"))
    appt = ok(
        kit.http.post(
            "/fhir/Appointment",
            json=appointment(case, task["id"]),
            headers={**FHIR, **kit.p.coordinator},
        ),
        201,
    )
    return kit.read(f"Task/{task['id']}"), appt


def participant(appt: dict[str, Any], actor: str) -> dict[str, Any]:
    return next(p for p in appt["participant"] if p["actor"]["reference"] == actor)


def test_a_booked_consultation_names_the_member_the_expert_and_the_clinician(
    kit: Kit, case: Case
) -> None:
    _, appt = book(kit, case)
    actors = {p["actor"]["reference"] for p in appt["participant"]}
    assert actors == {
        f"Patient/{case.patient}",
        f"PractitionerRole/{LEAD}",
        "PractitionerRole/role-doc-lakeshore-patel",
    }
    assert participant(appt, f"PractitionerRole/{LEAD}")["status"] == "needs-action"
    assert appt["serviceType"][0]["coding"][0]["code"] == "video-consultation"


def test_the_appointment_becomes_the_video_tasks_output(kit: Kit, case: Case) -> None:
    task, appt = book(kit, case)
    assert {"reference": f"Appointment/{appt['id']}"} in [
        o.get("valueReference") for o in task["output"]
    ]
    task = ok(put(kit, task, kit.p.coordinator, status="in-progress"))
    task = ok(put(kit, task, kit.p.coordinator, status="completed"))
    assert task["status"] == "completed"


def test_a_video_consultation_is_not_completed_without_its_appointment(
    kit: Kit, case: Case
) -> None:
    task = ok(request(kit, case, "video-consultation", kit.p.clinic), 201)
    for status in ("accepted", "in-progress"):
        task = ok(put(kit, task, kit.p.coordinator, status=status))
    out = [{"type": {"text": "note"}, "valueString": "done by phone"}]
    r = put(kit, task, kit.p.coordinator, status="completed", output=out)
    assert r.status_code == 422
    assert "video-consultation-appointment" in rule_of(r)


def test_an_output_appointment_must_be_of_the_same_case(kit: Kit, case: Case) -> None:
    other = kit.new_case()
    _, foreign = book(kit, other)
    task = ok(request(kit, case, "video-consultation", kit.p.clinic), 201)
    out = [{"type": {"text": "Appointment"}, "valueReference": ref(f"Appointment/{foreign['id']}")}]
    r = put(kit, task, kit.p.coordinator, output=out)
    assert r.status_code == 422
    assert "coordination-appointment" in rule_of(r)


def test_the_expert_and_the_clinic_read_the_appointment_the_insurer_does_not(
    kit: Kit, case: Case
) -> None:
    _, appt = book(kit, case)
    path = f"/fhir/Appointment/{appt['id']}"
    assert kit.http.get(path, headers=kit.p.expert(LEAD)).status_code == 200
    assert kit.http.get(path, headers=kit.p.clinic).status_code == 200
    assert kit.http.get(path, headers=kit.p.insurer).status_code == 403
    assert kit.http.get(path, headers=kit.p.expert("exp-cardiology")).status_code == 404
    assert kit.http.get(path, headers=kit.p.clinic_b).status_code == 404


def test_the_expert_reads_the_video_task_of_its_case(kit: Kit, case: Case) -> None:
    task, _ = book(kit, case)
    assert kit.http.get(f"/fhir/Task/{task['id']}", headers=kit.p.expert(LEAD)).status_code == 200
    found = search(kit, f"part-of=Task/{task['partOf'][0]['reference'][5:]}", kit.p.expert(LEAD))
    assert task["id"] in {t["id"] for t in found}
    other = kit.http.get(f"/fhir/Task/{task['id']}", headers=kit.p.expert("exp-cardiology"))
    assert other.status_code == 404


def test_the_expert_accepts_the_consultation(kit: Kit, case: Case) -> None:
    _, appt = book(kit, case)
    participant(appt, f"PractitionerRole/{LEAD}")["status"] = "accepted"
    r = kit.http.put(
        f"/fhir/Appointment/{appt['id']}", json=appt, headers={**FHIR, **kit.p.expert(LEAD)}
    )
    updated = ok(r)
    assert participant(updated, f"PractitionerRole/{LEAD}")["status"] == "accepted"


@pytest.mark.parametrize("change", ["time", "others-status"])
def test_the_expert_changes_only_its_own_answer(kit: Kit, case: Case, change: str) -> None:
    _, appt = book(kit, case)
    if change == "time":
        appt["start"] = "2026-12-22T15:00:00Z"
    else:
        participant(appt, f"Patient/{case.patient}")["status"] = "declined"
    r = kit.http.put(
        f"/fhir/Appointment/{appt['id']}", json=appt, headers={**FHIR, **kit.p.expert(LEAD)}
    )
    assert r.status_code == 403, r.text
    assert "appointment-by-coordinator" in rule_of(r)


def test_the_clinic_cannot_book_a_consultation(kit: Kit, case: Case) -> None:
    r = kit.http.post("/fhir/Appointment", json=appointment(case), headers={**FHIR, **kit.p.clinic})
    assert r.status_code == 403
    assert "appointment-by-coordinator" in rule_of(r)


def test_the_insurer_cannot_book_one(kit: Kit, case: Case) -> None:
    r = kit.http.post(
        "/fhir/Appointment", json=appointment(case), headers={**FHIR, **kit.p.insurer}
    )
    assert r.status_code == 403


def test_a_booked_consultation_needs_its_times(kit: Kit, case: Case) -> None:
    body = appointment(case)
    body.pop("end")
    r = kit.http.post("/fhir/Appointment", json=body, headers={**FHIR, **kit.p.coordinator})
    assert r.status_code in (400, 422), r.text


# ----------------------------------------------------------------------------- insurer
def test_the_insurer_sees_fee_negotiation_only(kit: Kit, case: Case) -> None:
    fee = ok(request(kit, case, "fee-negotiation", kit.p.clinic), 201)
    hotel = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    shown = kit.http.get(f"/fhir/Task/{fee['id']}", headers=kit.p.insurer)
    assert shown.status_code == 200
    assert "input" not in shown.json()  # the status view, like the case itself
    assert kit.http.get(f"/fhir/Task/{hotel['id']}", headers=kit.p.insurer).status_code == 404
    ids = {t["id"] for t in search(kit, f"patient=Patient/{case.patient}", kit.p.insurer)}
    assert fee["id"] in ids and hotel["id"] not in ids
    assert kit.task(case)["id"] in ids  # the case Task stays visible


def test_another_insurer_sees_none(kit: Kit, case: Case) -> None:
    fee = ok(request(kit, case, "fee-negotiation", kit.p.clinic), 201)
    assert kit.http.get(f"/fhir/Task/{fee['id']}", headers=kit.p.insurer_b).status_code == 404


# ------------------------------------------------------------------------------ searches
def test_the_coordinators_queue_is_a_search(kit: Kit) -> None:
    case = kit.new_case()
    hotel = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    visa = ok(request(kit, case, "passport-visa", kit.p.clinic), 201)
    found = search(kit, f"code={CS}|hotel&status=requested&owner={NETWORK}&_count=500")
    ids = {t["id"] for t in found}
    assert hotel["id"] in ids and visa["id"] not in ids
    assert all(t["status"] == "requested" for t in found)
    ok(put(kit, hotel, kit.p.coordinator, status="accepted"))
    found = search(kit, f"code={CS}|hotel&status=requested&owner={NETWORK}&_count=500")
    assert hotel["id"] not in {t["id"] for t in found}


def test_a_cases_services_are_a_search(kit: Kit) -> None:
    case = kit.new_case()
    made = {ok(request(kit, case, s, kit.p.clinic), 201)["id"] for s in ("hotel", "appointment")}
    case_task = kit.task(case)["id"]
    assert {t["id"] for t in search(kit, f"part-of=Task/{case_task}")} == made
    assert {t["id"] for t in search(kit, f"part-of=Task/{case_task}", kit.p.clinic)} == made
    assert search(kit, f"part-of=Task/{case_task}", kit.p.clinic_b) == []


# ------------------------------------------------------------------ the case's consequences
def finish(kit: Kit, case: Case) -> None:
    ok(kit.pull(case, kit.p.expert(LEAD)))
    ok(kit.report(case, kit.p.expert(LEAD)), 201)


def follow_ups(kit: Kit, case_task: str) -> list[dict[str, Any]]:
    return search(kit, f"part-of=Task/{case_task}&code={CS}|follow-up")


def test_the_final_report_opens_one_follow_up(kit: Kit) -> None:
    case = kit.new_case()
    hotel = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    finish(kit, case)
    case_task = kit.task(case)
    assert case_task["status"] == "completed"
    found = follow_ups(kit, case_task["id"])
    assert len(found) == 1
    follow = found[0]
    assert (follow["status"], follow["owner"]) == ("requested", ref(NETWORK))
    assert follow["for"] == ref(f"Patient/{case.patient}")
    assert follow["restriction"]["period"]["end"] > follow["authoredOn"][:10]
    assert kit.read(f"Task/{hotel['id']}")["status"] == "requested"  # the services go on


def test_an_amended_report_opens_no_second_follow_up(kit: Kit) -> None:
    case = kit.new_case()
    finish(kit, case)
    report = search_reports(kit, case)[0]
    amended = {**report, "status": "amended", "conclusion": "Amended after review."}
    ok(
        kit.http.put(
            f"/fhir/DiagnosticReport/{report['id']}",
            json=amended,
            headers={**FHIR, **kit.p.expert(LEAD)},
        )
    )
    assert len(follow_ups(kit, kit.task(case)["id"])) == 1


def search_reports(kit: Kit, case: Case) -> list[dict[str, Any]]:
    bundle = ok(
        kit.http.get(
            f"/fhir/DiagnosticReport?based-on=ServiceRequest/{case.sr}", headers=kit.p.coordinator
        )
    )
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_no_follow_up_before_the_report(kit: Kit) -> None:
    case = kit.new_case()
    ok(kit.pull(case, kit.p.expert(LEAD)))
    assert follow_ups(kit, kit.task(case)["id"]) == []


def test_a_cancelled_case_cancels_its_open_services(kit: Kit) -> None:
    case = kit.new_case()
    hotel = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    ok(kit.op(kit.task(case)["id"], "cancel", kit.p.clinic, reason="patient recovered"))
    closed = kit.read(f"Task/{hotel['id']}")
    assert closed["status"] == "cancelled"
    assert "cancelled" in closed["statusReason"]["text"]
    r = request(kit, case, "hotel", kit.p.clinic)
    assert r.status_code == 422
    assert "coordination-case-closed" in rule_of(r)


def test_every_write_is_versioned(kit: Kit, case: Case) -> None:
    task = ok(request(kit, case, "hotel", kit.p.clinic), 201)
    ok(put(kit, task, kit.p.coordinator, status="accepted"))
    history = ok(kit.http.get(f"/fhir/Task/{task['id']}/_history", headers=kit.p.coordinator))
    assert [e["resource"]["status"] for e in history["entry"]] == ["accepted", "requested"]


def test_overdue_services_are_a_search(kit: Kit) -> None:
    case = kit.new_case()
    late = {"period": {"end": "2026-01-05"}}
    overdue = ok(request(kit, case, "hotel", kit.p.clinic, restriction=late), 201)
    later = ok(request(kit, case, "appointment", kit.p.clinic), 201)
    ids = {t["id"] for t in search(kit, f"code={CS}|&due=lt2026-02-01&_count=500")}
    assert overdue["id"] in ids and later["id"] not in ids


def test_a_members_consultations_are_a_search(kit: Kit) -> None:
    case = kit.new_case()
    _, appt = book(kit, case)
    query = f"/fhir/Appointment?patient=Patient/{case.patient}&service-type=video-consultation"
    for headers in (kit.p.clinic, kit.p.expert(LEAD), kit.p.coordinator):
        bundle = ok(kit.http.get(query, headers=headers))
        assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [appt["id"]]
    assert kit.http.get(query, headers=kit.p.insurer).status_code == 403


def test_dropping_based_on_does_not_free_a_consultation(kit: Kit, case: Case) -> None:
    _, appt = book(kit, case)
    appt.pop("basedOn")
    appt["start"] = "2026-12-23T15:00:00Z"
    r = kit.http.put(f"/fhir/Appointment/{appt['id']}", json=appt, headers={**FHIR, **kit.p.clinic})
    assert r.status_code == 403, r.text


def test_the_clinic_answers_for_its_clinician(kit: Kit, case: Case) -> None:
    _, appt = book(kit, case)
    participant(appt, "PractitionerRole/role-doc-lakeshore-patel")["status"] = "accepted"
    r = kit.http.put(f"/fhir/Appointment/{appt['id']}", json=appt, headers={**FHIR, **kit.p.clinic})
    assert participant(ok(r), "PractitionerRole/role-doc-lakeshore-patel")["status"] == "accepted"


def test_an_expert_cannot_cancel_the_consultation(kit: Kit, case: Case) -> None:
    _, appt = book(kit, case)
    r = kit.http.delete(f"/fhir/Appointment/{appt['id']}", headers=kit.p.expert(LEAD))
    assert r.status_code == 403
