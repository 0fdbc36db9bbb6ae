"""Who may do what to a case: every party tries every case action over HTTP, on a fresh case in
the state the action needs, and the answer and the case afterwards are checked.

The table ``EXPECTED`` is the contract (docs/cases.md, resources/task.py ``ACTIONS``,
auth/policy.py): 403 for a party that can see the case but may not do this (or may not write
that type at all), 404 for a party that may not even see the case, 200/201 where allowed. A
refusal must leave the case as it was (same Task version, no new Communication, report or
Provenance); a read must not leak: an insurer sees status, never clinical content, and a refused
read carries no resource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.server.cases.kit import FHIR, Case, Kit, business, ok

OTHER_EXPERT = "exp-cardiology"  # a specialist of the network who never gets an oncology case
NEW_OWNER = "exp-oncology-in"
PARTIES = (
    "clinic_a",
    "clinic_b",
    "expert",
    "other_expert",
    "insurer_x",
    "insurer_y",
    "coordinator",
)

# action -> {party: expected HTTP status}
EXPECTED: dict[str, dict[str, int]] = {
    # POST the transaction Bundle for a member of clinic A's
    "submit": {
        "clinic_a": 200,
        "clinic_b": 403,
        "expert": 403,
        "other_expert": 403,
        "insurer_x": 403,
        "insurer_y": 403,
        "coordinator": 200,
    },
    # direct PUT of the accepted case's Task to in-progress: only the server moves Tasks
    "accept": dict.fromkeys(PARTIES, 403),
    # $reassign expert=PractitionerRole/exp-oncology-in on an accepted case
    "assign": {
        "clinic_a": 403,
        "clinic_b": 404,
        "expert": 403,
        "other_expert": 404,
        "insurer_x": 403,
        "insurer_y": 404,
        "coordinator": 200,
    },
    # GET ServiceRequest/{id}/$case-bundle on an accepted case
    "pull": {
        "clinic_a": 200,
        "clinic_b": 404,
        "expert": 200,
        "other_expert": 404,
        "insurer_x": 200,  # status only: the redacted request, Task and their Coverage
        "insurer_y": 404,
        "coordinator": 200,
    },
    # Communication information-request on a case in review
    "ask": {
        "clinic_a": 403,
        "clinic_b": 403,
        "expert": 201,
        "other_expert": 403,
        "insurer_x": 403,
        "insurer_y": 403,
        "coordinator": 403,
    },
    # reply inResponseTo the expert's question, case on hold
    "answer": {
        "clinic_a": 201,
        "clinic_b": 403,
        "expert": 403,
        "other_expert": 403,
        "insurer_x": 403,
        "insurer_y": 403,
        "coordinator": 201,
    },
    # final report on a case in review
    "report": {
        "clinic_a": 403,
        "clinic_b": 403,
        "expert": 201,
        "other_expert": 403,
        "insurer_x": 403,
        "insurer_y": 403,
        "coordinator": 403,
    },
    # PUT of the final report as amended, case completed
    "amend": {
        "clinic_a": 403,
        "clinic_b": 403,
        "expert": 200,
        "other_expert": 403,
        "insurer_x": 403,
        "insurer_y": 403,
        "coordinator": 403,
    },
    # direct PUT of the case-in-review's Task to completed
    "complete": dict.fromkeys(PARTIES, 403),
    # $cancel on an accepted case
    "cancel": {
        "clinic_a": 200,
        "clinic_b": 404,
        "expert": 403,
        "other_expert": 404,
        "insurer_x": 403,
        "insurer_y": 404,
        "coordinator": 200,
    },
    # GET the final report of a completed case
    "read_report": {
        "clinic_a": 200,
        "clinic_b": 404,
        "expert": 200,
        "other_expert": 404,
        "insurer_x": 200,  # status only: redacted
        "insurer_y": 404,
        "coordinator": 200,
    },
    # GET the case's Condition
    "read_condition": {
        "clinic_a": 200,
        "clinic_b": 404,
        "expert": 200,
        "other_expert": 404,
        "insurer_x": 403,  # insurers never access clinical types
        "insurer_y": 403,
        "coordinator": 200,
    },
}
CLINICAL = {"Patient", "Condition", "Observation", "Communication", "DocumentReference"}


@dataclass
class Cell:
    """One case in the state an action needs, and what the party under test is told."""

    kit: Kit
    case: Case | None = None
    patient: str = ""
    coverage: str = ""
    owner: str = ""
    question: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)

    def headers(self, party: str) -> dict[str, str]:
        p = self.kit.p
        return {
            "clinic_a": p.clinic,
            "clinic_b": p.clinic_b,
            "expert": p.expert(self.owner or "exp-oncology-ca"),
            "other_expert": p.expert(OTHER_EXPERT),
            "insurer_x": p.insurer,
            "insurer_y": p.insurer_b,
            "coordinator": p.coordinator,
        }[party]


# --------------------------------------------------------------------------------- states
def _count(kit: Kit, query: str) -> int:
    bundle = ok(kit.http.get(f"/fhir/{query}&_count=200", headers=kit.p.coordinator))
    return sum(1 for e in bundle.get("entry", []) if e["search"]["mode"] == "match")


def snapshot(kit: Kit, case: Case) -> dict[str, Any]:
    """What a refused action must leave as it was."""
    task = kit.task(case)
    return {
        "task": (task["meta"]["versionId"], task["status"], business(task), task.get("owner")),
        "communications": _count(kit, f"Communication?based-on=ServiceRequest/{case.sr}"),
        "reports": _count(kit, f"DiagnosticReport?based-on=ServiceRequest/{case.sr}"),
        "provenance": _count(kit, f"Provenance?target=Task/{task['id']}"),
        "request": kit.read(f"ServiceRequest/{case.sr}")["meta"]["versionId"],
    }


def accepted(kit: Kit) -> Cell:
    cell = Cell(kit, kit.new_case())
    assert cell.case is not None
    task = kit.task(cell.case)
    assert (task["status"], business(task)) == ("accepted", "expert-assigned"), task
    cell.owner = task["owner"]["reference"].split("/", 1)[1]
    return cell


def reviewing(kit: Kit) -> Cell:
    cell = accepted(kit)
    assert cell.case is not None
    ok(kit.pull(cell.case, cell.headers("expert")))
    return cell


def on_hold(kit: Kit) -> Cell:
    cell = reviewing(kit)
    assert cell.case is not None
    cell.question = ok(kit.ask(cell.case, cell.headers("expert")), 201)["id"]
    return cell


def completed(kit: Kit) -> Cell:
    cell = reviewing(kit)
    assert cell.case is not None
    cell.report = ok(kit.report(cell.case, cell.headers("expert")), 201)
    return cell


def unsubmitted(kit: Kit) -> Cell:
    patient, coverage = kit.member()
    return Cell(kit, None, patient, coverage)


# --------------------------------------------------------------------------------- actions
def _put_task(cell: Cell, headers: dict[str, str], status: str) -> Any:
    assert cell.case is not None
    task = cell.kit.task(cell.case)
    return cell.kit.http.put(
        f"/fhir/Task/{task['id']}", json={**task, "status": status}, headers={**FHIR, **headers}
    )


def _task_id(cell: Cell) -> str:
    assert cell.case is not None
    return str(cell.kit.task(cell.case)["id"])


def do_submit(cell: Cell, h: dict[str, str]) -> Any:
    return cell.kit.http.post(
        "/fhir", json=cell.kit.bundle(cell.patient, cell.coverage), headers={**FHIR, **h}
    )


def do_accept(cell: Cell, h: dict[str, str]) -> Any:
    return _put_task(cell, h, "in-progress")


def do_assign(cell: Cell, h: dict[str, str]) -> Any:
    return cell.kit.op(
        _task_id(cell), "reassign", h, reason="language", expert=f"PractitionerRole/{NEW_OWNER}"
    )


def do_pull(cell: Cell, h: dict[str, str]) -> Any:
    assert cell.case is not None
    return cell.kit.pull(cell.case, h)


def do_ask(cell: Cell, h: dict[str, str]) -> Any:
    assert cell.case is not None
    return cell.kit.ask(cell.case, h)


def do_answer(cell: Cell, h: dict[str, str]) -> Any:
    assert cell.case is not None
    return cell.kit.answer(cell.case, cell.question, h)


def do_report(cell: Cell, h: dict[str, str]) -> Any:
    assert cell.case is not None
    body = cell.kit.report_body(cell.case)
    # A party other than the expert names the expert as performer, as a forger would.
    body["performer"] = [{"reference": f"PractitionerRole/{cell.owner}"}]
    return cell.kit.http.post("/fhir/DiagnosticReport", json=body, headers={**FHIR, **h})


def do_amend(cell: Cell, h: dict[str, str]) -> Any:
    amended = {**cell.report, "status": "amended", "conclusion": "Corrected wording."}
    return cell.kit.http.put(
        f"/fhir/DiagnosticReport/{cell.report['id']}", json=amended, headers={**FHIR, **h}
    )


def do_complete(cell: Cell, h: dict[str, str]) -> Any:
    return _put_task(cell, h, "completed")


def do_cancel(cell: Cell, h: dict[str, str]) -> Any:
    return cell.kit.op(_task_id(cell), "cancel", h, reason="patient recovered")


def do_read_report(cell: Cell, h: dict[str, str]) -> Any:
    return cell.kit.http.get(f"/fhir/DiagnosticReport/{cell.report['id']}", headers=h)


def do_read_condition(cell: Cell, h: dict[str, str]) -> Any:
    assert cell.case is not None
    return cell.kit.http.get(f"/fhir/Condition/{cell.case.ids['Condition']}", headers=h)


# ------------------------------------------------------------------------- after-effects
def after_submit(cell: Cell, party: str, r: Any) -> None:
    found = ok(
        cell.kit.http.get(
            f"/fhir/ServiceRequest?subject=Patient/{cell.patient}", headers=cell.kit.p.coordinator
        )
    )
    requests = [e for e in found.get("entry", []) if e["search"]["mode"] == "match"]
    if r.status_code != 200:
        assert requests == [], "a refused submission left a request behind"
        conditions = ok(
            cell.kit.http.get(
                f"/fhir/Condition?subject=Patient/{cell.patient}", headers=cell.kit.p.coordinator
            )
        )
        assert not conditions.get("entry"), "a refused submission left a Condition behind"
        return
    assert len(requests) == 1
    case = Case({"ServiceRequest": requests[0]["resource"]["id"], "Patient": cell.patient})
    task = cell.kit.task(case)
    assert (task["status"], business(task)) == ("accepted", "expert-assigned")


def _unchanged(cell: Cell, party: str, r: Any) -> None:
    assert cell.case is not None
    assert snapshot(cell.kit, cell.case) == cell.before


def _task_now(cell: Cell) -> dict[str, Any]:
    assert cell.case is not None
    return cell.kit.task(cell.case)


def after_assign(cell: Cell, party: str, r: Any) -> None:
    if r.status_code != 200:
        return _unchanged(cell, party, r)
    task = _task_now(cell)
    assert task["owner"]["reference"] == f"PractitionerRole/{NEW_OWNER}"
    assert cell.kit.timeline(task["id"])[-1] == "reassigned"


def after_pull(cell: Cell, party: str, r: Any) -> None:
    if r.status_code != 200 or party != "expert":
        _unchanged(cell, party, r)
    else:
        task = _task_now(cell)
        assert (task["status"], business(task)) == ("in-progress", "case-retrieved")
    if r.status_code == 200 and party.startswith("insurer"):
        assert_status_only(r.json())


def assert_status_only(bundle: dict[str, Any]) -> None:
    """An insurer's case file: no clinical resource, and every case resource redacted."""
    resources = [e["resource"] for e in bundle.get("entry", [])]
    types = {r["resourceType"] for r in resources}
    assert not types & CLINICAL, f"the case file leaks {types & CLINICAL} to an insurer"
    for res in resources:
        if res["resourceType"] in ("ServiceRequest", "Task", "DiagnosticReport"):
            tags = {t.get("code") for t in (res.get("meta") or {}).get("security", [])}
            assert "REDACTED" in tags, res
            leaked = {"conclusion", "conclusionCode", "presentedForm", "reasonCode", "note"}
            assert not leaked & set(res), res


def _one_more_message(cell: Cell, party: str, r: Any, status: tuple[str, str]) -> None:
    """A question or a reply: stored (one more Communication) and the case moved to ``status``."""
    if r.status_code != 201:
        return _unchanged(cell, party, r)
    task = _task_now(cell)
    assert (task["status"], business(task)) == status
    assert cell.case is not None
    assert snapshot(cell.kit, cell.case)["communications"] == cell.before["communications"] + 1


def after_ask(cell: Cell, party: str, r: Any) -> None:
    _one_more_message(cell, party, r, ("on-hold", "awaiting-information"))


def after_answer(cell: Cell, party: str, r: Any) -> None:
    _one_more_message(cell, party, r, ("in-progress", "under-review"))


def after_report(cell: Cell, party: str, r: Any) -> None:
    if r.status_code != 201:
        return _unchanged(cell, party, r)
    task = _task_now(cell)
    assert (task["status"], business(task)) == ("completed", "report-issued")
    assert task["output"][0]["valueReference"]["reference"] == f"DiagnosticReport/{r.json()['id']}"


def after_amend(cell: Cell, party: str, r: Any) -> None:
    report = cell.kit.read(f"DiagnosticReport/{cell.report['id']}")
    if r.status_code != 200:
        assert report["status"] == "final"
        assert report["conclusion"] == cell.report["conclusion"]
        return _unchanged(cell, party, r)
    assert report["status"] == "amended"
    task = _task_now(cell)
    assert task["status"] == "completed"
    assert cell.kit.timeline(task["id"])[-1] == "report-amended"


def after_cancel(cell: Cell, party: str, r: Any) -> None:
    if r.status_code != 200:
        return _unchanged(cell, party, r)
    assert cell.case is not None
    assert _task_now(cell)["status"] == "cancelled"
    assert cell.kit.read(f"ServiceRequest/{cell.case.sr}")["status"] == "revoked"


def after_read_report(cell: Cell, party: str, r: Any) -> None:
    _unchanged(cell, party, r)
    body = r.json()
    if r.status_code != 200:
        assert body.get("resourceType") == "OperationOutcome", body
        assert "conclusion" not in r.text
        return
    assert body["id"] == cell.report["id"]
    if party.startswith("insurer"):
        leaked = {"conclusion", "conclusionCode", "presentedForm", "result"} & set(body)
        assert not leaked, f"an insurer reads the report's {leaked}"
    else:
        assert body["conclusion"] == cell.report["conclusion"]


def after_read_condition(cell: Cell, party: str, r: Any) -> None:
    _unchanged(cell, party, r)
    body = r.json()
    if r.status_code != 200:
        assert body.get("resourceType") == "OperationOutcome", body
        return
    assert body["resourceType"] == "Condition" and body["code"]


@dataclass(frozen=True)
class Action:
    state: Callable[[Kit], Cell]
    act: Callable[[Cell, dict[str, str]], Any]
    after: Callable[[Cell, str, Any], None]


ACTIONS: dict[str, Action] = {
    "submit": Action(unsubmitted, do_submit, after_submit),
    "accept": Action(accepted, do_accept, _unchanged),
    "assign": Action(accepted, do_assign, after_assign),
    "pull": Action(accepted, do_pull, after_pull),
    "ask": Action(reviewing, do_ask, after_ask),
    "answer": Action(on_hold, do_answer, after_answer),
    "report": Action(reviewing, do_report, after_report),
    "amend": Action(completed, do_amend, after_amend),
    "complete": Action(reviewing, do_complete, _unchanged),
    "cancel": Action(accepted, do_cancel, after_cancel),
    "read_report": Action(completed, do_read_report, after_read_report),
    "read_condition": Action(accepted, do_read_condition, after_read_condition),
}
CELLS = [
    pytest.param(action, party, status, id=f"{action}-{party}-{status}")
    for action, row in EXPECTED.items()
    for party, status in row.items()
]


def test_the_table_covers_every_action_and_party() -> None:
    assert set(EXPECTED) == set(ACTIONS)
    assert all(set(row) == set(PARTIES) for row in EXPECTED.values())


# Cells that leave the case as it was (refusals, reads, a non-owner's pull) share one case per
# action: each still snapshots the case before it acts and asserts it unchanged afterwards, and
# building a fresh case per cell would double this file's run time.
_SHARED: dict[tuple[int, str], Cell] = {}


def _leaves_case_unchanged(action: str, party: str, expected: int) -> bool:
    if expected >= 400:
        return True
    return action.startswith("read_") or (action == "pull" and party != "expert")


@pytest.mark.parametrize(("action", "party", "expected"), CELLS)
def test_party_action(kit: Kit, action: str, party: str, expected: int) -> None:
    spec = ACTIONS[action]
    if _leaves_case_unchanged(action, party, expected):
        key = (id(kit), action)
        if key not in _SHARED:
            _SHARED[key] = spec.state(kit)
        cell = _SHARED[key]
    else:
        cell = spec.state(kit)
    if cell.case is not None:
        cell.before = snapshot(kit, cell.case)
    r = spec.act(cell, cell.headers(party))
    assert r.status_code == expected, r.text
    assert r.status_code != 500
    spec.after(cell, party, r)


def test_an_insurers_case_file_of_a_completed_case_shows_no_report_content(kit: Kit) -> None:
    cell = completed(kit)
    assert cell.case is not None
    bundle = ok(kit.pull(cell.case, kit.p.insurer))
    assert "DiagnosticReport" in {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert_status_only(bundle)
    assert "Reviewed the whole file." not in str(bundle)
