"""The case after acceptance: review, questions, reports, cancel, decline, reassign, boards and
third opinions, each driven by the party that may, through HTTP with authorization on."""

from __future__ import annotations

from tests.server.cases.kit import Case, Kit, business, ok

LEAD = "exp-oncology-ca"


def started(kit: Kit) -> Case:
    case = kit.new_case()
    ok(kit.pull(case, kit.p.expert(LEAD)))
    return case


# ------------------------------------------------------------------------------- review start
def test_the_assigned_experts_first_pull_starts_the_review(kit: Kit) -> None:
    case = kit.new_case()
    bundle = ok(kit.pull(case, kit.p.expert(LEAD)))
    task = kit.task(case)
    assert task["status"] == "in-progress"
    assert business(task) == "case-retrieved"
    assert "start" in task["executionPeriod"]
    shown = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task")
    assert shown["status"] == "in-progress"


def test_a_second_pull_changes_nothing(kit: Kit) -> None:
    case = started(kit)
    version = kit.task(case)["meta"]["versionId"]
    ok(kit.pull(case, kit.p.expert(LEAD)))
    assert kit.task(case)["meta"]["versionId"] == version


def test_another_expert_cannot_pull_the_case(kit: Kit) -> None:
    case = kit.new_case()
    assert kit.pull(case, kit.p.expert("exp-cardiology")).status_code in (403, 404)
    assert kit.task(case)["status"] == "accepted"


def test_a_coordinator_pull_does_not_start_the_review(kit: Kit) -> None:
    case = kit.new_case()
    ok(kit.pull(case, kit.p.coordinator))
    assert kit.task(case)["status"] == "accepted"


# ---------------------------------------------------------------------------------- questions
def test_a_question_puts_the_case_on_hold(kit: Kit) -> None:
    case = started(kit)
    question = ok(kit.ask(case, kit.p.expert(LEAD)), 201)
    assert question["sender"] == {"reference": f"PractitionerRole/{LEAD}"}
    task = kit.task(case)
    assert (task["status"], business(task)) == ("on-hold", "awaiting-information")


def test_the_clinics_reply_resumes_the_review_and_moves_the_due_date(kit: Kit) -> None:
    case = started(kit)
    due_before = kit.task(case)["restriction"]["period"]["end"]
    question = ok(kit.ask(case, kit.p.expert(LEAD)), 201)
    reply = ok(kit.answer(case, question["id"], kit.p.clinic), 201)
    assert reply["basedOn"] == [{"reference": f"ServiceRequest/{case.sr}"}]
    task = kit.task(case)
    assert (task["status"], business(task)) == ("in-progress", "under-review")
    assert task["restriction"]["period"]["end"] > due_before
    assert kit.timeline(task["id"])[-2:] == ["question-asked", "question-answered"]


def test_what_the_reply_attaches_joins_the_case_bundle(kit: Kit) -> None:
    case = started(kit)
    question = ok(kit.ask(case, kit.p.expert(LEAD)), 201)
    doc = ok(
        kit.http.post(
            "/fhir/DocumentReference",
            json={
                "resourceType": "DocumentReference",
                "status": "current",
                "subject": {"reference": f"Patient/{case.patient}"},
                "content": [{"attachment": {"contentType": "text/plain", "data": "TVJJ"}}],
            },
            headers={"Content-Type": "application/fhir+json", **kit.p.clinic},
        ),
        201,
    )
    ok(kit.answer(case, question["id"], kit.p.clinic, attach=f"DocumentReference/{doc['id']}"), 201)
    bundle = ok(kit.pull(case, kit.p.expert(LEAD)))
    keys = {f"{e['resource']['resourceType']}/{e['resource'].get('id')}" for e in bundle["entry"]}
    assert f"DocumentReference/{doc['id']}" in keys


def test_only_the_assigned_expert_asks(kit: Kit) -> None:
    case = started(kit)
    assert kit.ask(case, kit.p.expert("exp-cardiology")).status_code in (403, 404)
    assert kit.ask(case, kit.p.clinic).status_code == 403
    assert kit.task(case)["status"] == "in-progress"


def test_another_clinic_cannot_answer(kit: Kit) -> None:
    case = started(kit)
    question = ok(kit.ask(case, kit.p.expert(LEAD)), 201)
    assert kit.answer(case, question["id"], kit.p.clinic_b).status_code in (403, 404, 422)
    assert kit.task(case)["status"] == "on-hold"


# ------------------------------------------------------------------------------------ reports
def test_a_preliminary_report_is_an_interim_report(kit: Kit) -> None:
    case = started(kit)
    report = ok(kit.report(case, kit.p.expert(LEAD), status="preliminary", outcomes=()), 201)
    assert report["performer"] == [{"reference": f"PractitionerRole/{LEAD}"}]
    task = kit.task(case)
    assert (task["status"], business(task)) == ("in-progress", "interim-report")


def test_a_final_report_completes_the_case_and_the_request(kit: Kit) -> None:
    case = started(kit)
    report = ok(
        kit.report(
            case, kit.p.expert(LEAD), outcomes=("confirm-diagnosis", "alternative-treatment")
        ),
        201,
    )
    task = kit.task(case)
    assert (task["status"], business(task)) == ("completed", "report-issued")
    assert task["output"][0]["valueReference"] == {"reference": f"DiagnosticReport/{report['id']}"}
    assert "end" in task["executionPeriod"]
    assert kit.read(f"ServiceRequest/{case.sr}")["status"] == "completed"
    assert len(report["conclusionCode"]) == 2


def test_a_final_report_on_an_on_hold_case_completes_it(kit: Kit) -> None:
    case = started(kit)
    ok(kit.ask(case, kit.p.expert(LEAD)), 201)
    ok(kit.report(case, kit.p.expert(LEAD), outcomes=("insufficient-information",)), 201)
    assert kit.task(case)["status"] == "completed"


def test_an_amended_report_keeps_history_and_the_case_completed(kit: Kit) -> None:
    case = started(kit)
    report = ok(kit.report(case, kit.p.expert(LEAD)), 201)
    amended = {**report, "status": "amended", "conclusion": "Corrected wording."}
    ok(
        kit.http.put(
            f"/fhir/DiagnosticReport/{report['id']}",
            json=amended,
            headers={"Content-Type": "application/fhir+json", **kit.p.expert(LEAD)},
        )
    )
    history = ok(
        kit.http.get(f"/fhir/DiagnosticReport/{report['id']}/_history", headers=kit.p.clinic)
    )
    assert [e["resource"]["status"] for e in history["entry"]] == ["amended", "final"]
    task = kit.task(case)
    assert task["status"] == "completed"
    assert kit.timeline(task["id"])[-1] == "report-amended"


def test_a_final_report_cannot_go_back_to_preliminary(kit: Kit) -> None:
    case = started(kit)
    report = ok(kit.report(case, kit.p.expert(LEAD)), 201)
    r = kit.http.put(
        f"/fhir/DiagnosticReport/{report['id']}",
        json={**report, "status": "preliminary"},
        headers={"Content-Type": "application/fhir+json", **kit.p.expert(LEAD)},
    )
    assert r.status_code == 422, r.text


def test_a_second_final_report_is_refused(kit: Kit) -> None:
    case = started(kit)
    ok(kit.report(case, kit.p.expert(LEAD)), 201)
    r = kit.report(case, kit.p.expert(LEAD))
    assert r.status_code == 422, r.text


def test_the_clinic_cannot_write_the_report(kit: Kit) -> None:
    case = started(kit)
    r = kit.report(case, kit.p.clinic, performer=f"PractitionerRole/{LEAD}")
    assert r.status_code == 403, r.text
    assert kit.task(case)["status"] == "in-progress"


def test_a_report_naming_a_colleague_as_performer_is_refused(kit: Kit) -> None:
    case = started(kit)
    r = kit.report(case, kit.p.expert(LEAD), performer="PractitionerRole/exp-oncology-in")
    assert r.status_code == 403, r.text


def test_a_final_report_needs_an_outcome(kit: Kit) -> None:
    case = started(kit)
    assert kit.report(case, kit.p.expert(LEAD), outcomes=()).status_code == 422


# ------------------------------------------------------------------------------------- cancel
def test_the_clinic_cancels_before_review(kit: Kit) -> None:
    case = kit.new_case()
    task = ok(kit.op(kit.task(case)["id"], "cancel", kit.p.clinic, reason="patient recovered"))
    assert task["status"] == "cancelled"
    assert kit.read(f"ServiceRequest/{case.sr}")["status"] == "revoked"


def test_the_clinic_cannot_cancel_after_review_started(kit: Kit) -> None:
    case = started(kit)
    r = kit.op(kit.task(case)["id"], "cancel", kit.p.clinic, reason="changed mind")
    assert r.status_code == 422, r.text
    assert "cancel" in r.text


def test_revoking_the_request_cancels_the_case(kit: Kit) -> None:
    case = kit.new_case()
    sr = kit.read(f"ServiceRequest/{case.sr}", kit.p.clinic)
    ok(
        kit.http.put(
            f"/fhir/ServiceRequest/{case.sr}",
            json={**sr, "status": "revoked"},
            headers={"Content-Type": "application/fhir+json", **kit.p.clinic},
        )
    )
    assert kit.task(case)["status"] == "cancelled"


def test_the_clinic_cannot_complete_its_request(kit: Kit) -> None:
    case = kit.new_case()
    sr = kit.read(f"ServiceRequest/{case.sr}", kit.p.clinic)
    r = kit.http.put(
        f"/fhir/ServiceRequest/{case.sr}",
        json={**sr, "status": "completed"},
        headers={"Content-Type": "application/fhir+json", **kit.p.clinic},
    )
    assert r.status_code == 422, r.text


def test_a_coordinator_cancels_a_case_in_review(kit: Kit) -> None:
    case = started(kit)
    ok(kit.op(kit.task(case)["id"], "cancel", kit.p.coordinator, reason="duplicate"))
    assert kit.task(case)["status"] == "cancelled"


def test_the_clinic_cannot_patch_the_task(kit: Kit) -> None:
    case = kit.new_case()
    task = kit.task(case, kit.p.clinic)
    r = kit.http.put(
        f"/fhir/Task/{task['id']}",
        json={**task, "status": "completed"},
        headers={"Content-Type": "application/fhir+json", **kit.p.clinic},
    )
    assert r.status_code == 403, r.text


# ---------------------------------------------------------------------------- decline/reassign
def test_a_decline_goes_to_the_next_match(kit: Kit) -> None:
    case = kit.new_case()
    done = ok(kit.op(kit.task(case)["id"], "decline", kit.p.expert(LEAD), reason="conflict"))
    assert done["resourceType"] == "OperationOutcome"  # no longer the expert's case to see
    task = kit.task(case)
    assert task["owner"]["reference"] == "PractitionerRole/exp-oncology-in"
    assert business(task) == "expert-assigned"
    assert kit.timeline(task["id"])[-1] == "declined"


def test_when_everyone_declined_the_case_awaits_an_expert(kit: Kit) -> None:
    case = kit.new_case()
    tid = kit.task(case)["id"]
    ok(kit.op(tid, "decline", kit.p.expert(LEAD), reason="capacity"))
    ok(kit.op(tid, "decline", kit.p.expert("exp-oncology-in"), reason="capacity"))
    task = kit.task(case)
    assert (task["status"], business(task)) == ("accepted", "awaiting-expert")
    assert "owner" not in task


def test_a_decline_needs_a_reason(kit: Kit) -> None:
    case = kit.new_case()
    assert kit.op(kit.task(case)["id"], "decline", kit.p.expert(LEAD)).status_code == 400


def test_only_the_assigned_expert_declines(kit: Kit) -> None:
    case = kit.new_case()
    r = kit.op(kit.task(case)["id"], "decline", kit.p.expert("exp-oncology-in"), reason="x")
    assert r.status_code in (403, 404)


def test_a_coordinator_reassigns_to_a_named_expert(kit: Kit) -> None:
    case = started(kit)
    task = ok(
        kit.op(
            kit.task(case)["id"],
            "reassign",
            kit.p.coordinator,
            reason="second language",
            expert="PractitionerRole/exp-oncology-in",
        )
    )
    assert task["owner"]["reference"] == "PractitionerRole/exp-oncology-in"
    assert task["status"] == "accepted"
    assert kit.pull(case, kit.p.expert(LEAD)).status_code in (403, 404)


def test_the_clinic_cannot_reassign(kit: Kit) -> None:
    case = kit.new_case()
    r = kit.op(kit.task(case)["id"], "reassign", kit.p.clinic, reason="prefer another")
    assert r.status_code == 403, r.text


def test_reassign_to_the_requesting_clinics_own_doctor_is_refused(kit: Kit) -> None:
    case = kit.new_case()
    r = kit.op(
        kit.task(case)["id"],
        "reassign",
        kit.p.coordinator,
        reason="x",
        expert="PractitionerRole/role-doc-lakeshore-patel",
    )
    assert r.status_code == 422, r.text


# ------------------------------------------------------------------------------------- boards
def test_a_board_member_contributes_and_the_lead_completes(kit: Kit) -> None:
    case = started(kit)
    tid = kit.task(case)["id"]
    sub = ok(
        kit.op(
            tid,
            "add-expert",
            kit.p.coordinator,
            expert="PractitionerRole/exp-neurology",
            reason="neurological symptoms",
        )
    )
    assert sub["partOf"] == [{"reference": f"Task/{tid}"}]
    board = kit.p.expert("exp-neurology")
    ok(kit.pull(case, board))
    contribution = ok(kit.report(case, board, outcomes=("confirm-diagnosis",)), 201)
    assert kit.read(f"Task/{sub['id']}")["status"] == "completed"
    assert kit.task(case)["status"] == "in-progress"
    ok(kit.report(case, kit.p.expert(LEAD)), 201)
    assert kit.task(case)["status"] == "completed"
    assert contribution["performer"] == [{"reference": "PractitionerRole/exp-neurology"}]


def test_only_a_coordinator_adds_board_members(kit: Kit) -> None:
    case = started(kit)
    r = kit.op(
        kit.task(case)["id"],
        "add-expert",
        kit.p.expert(LEAD),
        expert="PractitionerRole/exp-neurology",
    )
    assert r.status_code == 403, r.text


# ------------------------------------------------------------------------------ third opinion
def test_a_third_opinion_after_an_alternative_is_free_and_goes_to_another_expert(kit: Kit) -> None:
    patient, coverage = kit.member(plan="MM-GCI-PLUS")
    first = kit.submit(patient, coverage)
    second = kit.submit(patient, coverage)  # the allowance (two) is now used
    for c in (first,):
        ok(kit.pull(c, kit.p.expert(LEAD)))
        ok(kit.report(c, kit.p.expert(LEAD), outcomes=("alternative-diagnosis",)), 201)
    third = kit.submit(patient, coverage, replaces=first.sr)
    task = kit.task(third)
    assert task["status"] == "accepted", task.get("statusReason")
    assert task["owner"]["reference"] != f"PractitionerRole/{LEAD}"
    assert kit.task(second)["status"] == "accepted"


def test_a_replacing_request_after_a_confirmation_counts_as_a_new_opinion(kit: Kit) -> None:
    patient, coverage = kit.member(plan="MM-GCI-PLUS")
    first = kit.submit(patient, coverage)
    kit.submit(patient, coverage)
    ok(kit.pull(first, kit.p.expert(LEAD)))
    ok(kit.report(first, kit.p.expert(LEAD), outcomes=("confirm-diagnosis",)), 201)
    task = kit.task(kit.submit(patient, coverage, replaces=first.sr))
    assert task["status"] == "rejected"
    assert {c["code"] for c in task["statusReason"]["coding"]} == {"benefit-exhausted"}


# ----------------------------------------------------------------------------- overdue search
def test_overdue_cases_are_found_by_due_date(kit: Kit) -> None:
    case = kit.new_case()
    task = kit.task(case)
    due = task["restriction"]["period"]["end"]
    found = ok(kit.http.get(f"/fhir/Task?due=le{due[:10]}&_count=500", headers=kit.p.coordinator))
    assert task["id"] in {e["resource"]["id"] for e in found.get("entry", [])}
    early = ok(kit.http.get("/fhir/Task?due=lt2000-01-01", headers=kit.p.coordinator))
    assert task["id"] not in {e["resource"]["id"] for e in early.get("entry", [])}
