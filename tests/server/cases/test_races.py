"""Two parties moving the same case at the same moment, on real threads against one app: the
engine writes every move with the Task's version as a precondition inside the client's
transaction, so one move wins, the other is refused (409 or the rule it now breaks), and the
case is never half-written: one Task, one owner, one Provenance per move that happened."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.cases.kit import Case, Kit, business, ok

LEAD = "exp-oncology-ca"
ROUNDS = range(3)
LOST = {409, 422}  # the loser of a race: a conflict, or the rule the winner's move now breaks


def together(kit: Kit, *calls: Callable[[Kit], Any]) -> list[Any]:
    """Run ``calls`` on their own threads, each with its own TestClient on the same app (one
    client serialises requests on its event loop), released at once; responses in order."""
    kits = [Kit(TestClient(kit.http.app, base_url="http://testserver"), kit.p) for _ in calls]
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[Kit], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            out[i] = call(kits[i])
        except BaseException as exc:  # reported below, not lost on the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return out


def matches(kit: Kit, query: str) -> list[dict[str, Any]]:
    bundle = ok(kit.http.get(f"/fhir/{query}&_count=200", headers=kit.p.coordinator))
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def reviewing(kit: Kit) -> Case:
    case = kit.new_case()
    assert kit.task(case)["owner"]["reference"] == f"PractitionerRole/{LEAD}"
    ok(kit.pull(case, kit.p.expert(LEAD)))
    return case


@pytest.mark.parametrize("round_", ROUNDS)
def test_two_final_reports_at_once_file_exactly_one(kit: Kit, round_: int) -> None:
    case = reviewing(kit)
    expert = kit.p.expert(LEAD)
    responses = together(kit, lambda k: k.report(case, expert), lambda k: k.report(case, expert))
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 201 and codes[1] in LOST, [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 201)
    finals = [
        r
        for r in matches(kit, f"DiagnosticReport?based-on=ServiceRequest/{case.sr}")
        if r["status"] == "final"
    ]
    assert [r["id"] for r in finals] == [winner["id"]]
    task = kit.task(case)
    assert (task["status"], business(task)) == ("completed", "report-issued")
    assert [o["valueReference"]["reference"] for o in task["output"]] == [
        f"DiagnosticReport/{winner['id']}"
    ]
    assert kit.timeline(task["id"]).count("report-final") == 1


@pytest.mark.parametrize("round_", ROUNDS)
def test_two_declines_at_once_move_the_case_once(kit: Kit, round_: int) -> None:
    case = kit.new_case()
    tid = kit.task(case)["id"]
    expert = kit.p.expert(LEAD)
    responses = together(
        kit,
        lambda k: k.op(tid, "decline", expert, reason="capacity"),
        lambda k: k.op(tid, "decline", expert, reason="capacity"),
    )
    codes = sorted(r.status_code for r in responses)
    # The loser either lost the write (409), or ran after the winner: no longer the owner, it
    # cannot see the case (404) or is not its expert any more (403).
    assert codes[0] == 200 and codes[1] in {403, 404, 409}, [r.text for r in responses]
    task = kit.task(case)
    assert task["owner"]["reference"] == "PractitionerRole/exp-oncology-in"
    assert (task["status"], business(task)) == ("accepted", "expert-assigned")
    assert kit.timeline(task["id"]).count("declined") == 1


@pytest.mark.parametrize("round_", ROUNDS)
def test_a_reply_racing_a_reassign_leaves_a_consistent_case(kit: Kit, round_: int) -> None:
    case = reviewing(kit)
    question = ok(kit.ask(case, kit.p.expert(LEAD)), 201)["id"]
    tid = kit.task(case)["id"]
    before = kit.timeline(tid)
    comms_before = len(matches(kit, f"Communication?based-on=ServiceRequest/{case.sr}"))
    reply, reassign = together(
        kit,
        lambda k: k.answer(case, question, k.p.clinic),
        lambda k: k.op(
            tid,
            "reassign",
            kit.p.coordinator,
            reason="language",
            expert="PractitionerRole/exp-oncology-in",
        ),
    )
    assert reply.status_code in {201, *LOST}, reply.text
    assert reassign.status_code in {200, *LOST}, reassign.text
    assert reply.status_code == 201 or reassign.status_code == 200, "both lost"
    task = kit.task(case)
    after = kit.timeline(tid)
    assert after[: len(before)] == before
    added = after[len(before) :]
    comms = len(matches(kit, f"Communication?based-on=ServiceRequest/{case.sr}"))
    assert comms == comms_before + (reply.status_code == 201)
    if reassign.status_code == 200:
        assert added.count("reassigned") == 1
        assert (task["status"], business(task)) == ("accepted", "expert-assigned")
        assert task["owner"]["reference"] == "PractitionerRole/exp-oncology-in"
    else:
        assert "reassigned" not in added
        assert task["owner"]["reference"] == f"PractitionerRole/{LEAD}"
    if reply.status_code == 201 and reassign.status_code != 200:
        assert added == ["question-answered"]
        assert (task["status"], business(task)) == ("in-progress", "under-review")
    if reply.status_code != 201:
        assert "question-answered" not in added
    # A reply that came after the reassignment answers no open question: no transition.
    assert added.count("question-answered") <= 1
    assert len(added) == (reassign.status_code == 200) + added.count("question-answered")
