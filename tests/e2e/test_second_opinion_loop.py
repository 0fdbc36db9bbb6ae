"""The whole service over HTTP with authorization on, each party with its own bound client: an
EHR pushes a case, the server accepts it and assigns an expert, the expert pulls the file, asks,
gets an answer and closes the loop with a report, and the insurer follows the case status
without seeing clinical content. Nobody writes a Task: the server moves the case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.demo_copy import seed_demo
from tests.server.cases.kit import FHIR, Case, Kit, business, make_parties, ok
from tests.smart_helpers import ADMIN

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
LEAD = "exp-oncology-ca"


def example(name: str, **placeholders: str) -> dict[str, Any]:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    for key, value in placeholders.items():
        text = text.replace(key, value)
    return dict(json.loads(text))


@pytest.fixture
def kit(app_factory) -> Iterator[Kit]:  # type: ignore[no-untyped-def]
    app = app_factory(auth="on", admin_token=ADMIN)
    seed_demo(app.state.consilium)
    with TestClient(app, base_url="http://testserver") as client:
        yield Kit(client, make_parties(client))


def submit(kit: Kit) -> tuple[Case, dict[str, str]]:
    """The clinic's EHR pushes docs/examples/case-moreau.json; (case, created ids by type)."""
    body = ok(
        kit.http.post("/fhir", json=example("case-moreau.json"), headers={**FHIR, **kit.p.clinic})
    )
    ids = {"Patient": "pat-moreau"}
    for e in body["entry"]:
        assert e["response"]["status"].startswith("201"), e
        rtype, rid = e["response"]["location"].split("/")[-4:-2]
        ids[rtype] = rid
    return Case(ids), ids


def post(kit: Kit, rtype: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return kit.http.post(f"/fhir/{rtype}", json=body, headers={**FHIR, **headers})


def test_second_opinion_loop(kit: Kit) -> None:
    case, ids = submit(kit)
    expert, other = kit.p.expert(LEAD), kit.p.expert("exp-cardiology")

    # Accepted in the submission's transaction: expert assigned, due date, eligibility decision.
    task = kit.task(case, kit.p.clinic)
    assert (task["status"], business(task)) == ("accepted", "expert-assigned")
    assert task["owner"] == {"reference": f"PractitionerRole/{LEAD}"}
    assert task["restriction"]["period"]["end"] > task["restriction"]["period"]["start"]
    eligibility = next(i for i in task["input"] if i["type"]["text"] == "eligibility")
    response = kit.read(eligibility["valueReference"]["reference"], kit.p.clinic)
    assert response["insurance"][0]["inforce"] is True
    assert "error" not in response

    # The assigned expert pulls the case file (review starts); another expert cannot.
    assert kit.pull(case, other).status_code in (403, 404)
    assert kit.http.get(f"/fhir/Condition/{ids['Condition']}", headers=other).status_code in (
        403,
        404,
    )
    bundle = ok(kit.pull(case, expert))
    pulled = {
        (e["resource"]["resourceType"], e["resource"].get("id"))
        for e in bundle["entry"][1:]  # a document: the Composition first, then what it cites
    }
    for rtype in ("Patient", "Condition", "Observation", "DiagnosticReport", "DocumentReference"):
        assert (rtype, ids[rtype]) in pulled
    task = kit.task(case, expert)
    assert (task["status"], business(task)) == ("in-progress", "case-retrieved")

    # A question puts the case on hold; the clinic's reply resumes it and moves the due date.
    due = task["restriction"]["period"]["end"]
    question = ok(post(kit, "Communication", example("question.json", SR_ID=case.sr), expert), 201)
    assert question["sender"] == {"reference": f"PractitionerRole/{LEAD}"}
    task = kit.task(case, kit.p.clinic)
    assert (task["status"], business(task)) == ("on-hold", "awaiting-information")
    reply = example("reply.json", QUESTION_ID=question["id"])
    ok(post(kit, "Communication", reply, kit.p.clinic), 201)
    task = kit.task(case, kit.p.clinic)
    assert (task["status"], business(task)) == ("in-progress", "under-review")
    assert task["restriction"]["period"]["end"] > due

    # Nobody but the server moves the Task.
    r = kit.http.put(
        f"/fhir/Task/{task['id']}",
        json={**task, "status": "completed"},
        headers={**FHIR, **expert},
    )
    assert r.status_code == 403, r.text

    # The final report completes the Task and the ServiceRequest together.
    report = ok(post(kit, "DiagnosticReport", example("report.json", SR_ID=case.sr), expert), 201)
    assert report["performer"] == [{"reference": f"PractitionerRole/{LEAD}"}]
    task = kit.task(case, kit.p.clinic)
    assert (task["status"], business(task)) == ("completed", "report-issued")
    assert task["output"][0]["valueReference"] == {"reference": f"DiagnosticReport/{report['id']}"}
    assert kit.read(f"ServiceRequest/{case.sr}", kit.p.clinic)["status"] == "completed"

    # The clinic reads the report; the insurer sees status only, redacted, no clinical resource.
    seen = kit.read(f"DiagnosticReport/{report['id']}", kit.p.clinic)
    assert seen["conclusion"] == report["conclusion"]
    assert len(seen["conclusionCode"]) == 2
    status = kit.read(f"Task/{task['id']}", kit.p.insurer)
    assert (status["status"], business(status)) == ("completed", "report-issued")
    assert "output" not in status and "input" not in status
    redacted = kit.read(f"DiagnosticReport/{report['id']}", kit.p.insurer)
    assert {"conclusion", "conclusionCode", "presentedForm"}.isdisjoint(redacted)
    assert "REDACTED" in {s["code"] for s in redacted["meta"]["security"]}
    for key in (f"Condition/{ids['Condition']}", "Patient/pat-moreau"):
        assert kit.http.get(f"/fhir/{key}", headers=kit.p.insurer).status_code in (403, 404)
    assert kit.http.get(f"/fhir/Task/{task['id']}", headers=kit.p.insurer_b).status_code in (
        403,
        404,
    )

    # The timeline, in order.
    assert kit.timeline(task["id"]) == [
        "submitted",
        "eligible",
        "expert-assigned",
        "review-started",
        "question-asked",
        "question-answered",
        "report-final",
    ]


def test_clinic_cannot_see_another_clinics_case(kit: Kit) -> None:
    case, ids = submit(kit)
    other = kit.p.clinic_b
    assert kit.http.get(f"/fhir/Patient/{case.patient}", headers=other).status_code in (403, 404)
    assert kit.http.get(f"/fhir/ServiceRequest/{case.sr}", headers=other).status_code in (
        403,
        404,
    )
    found = ok(kit.http.get(f"/fhir/Task?focus=ServiceRequest/{case.sr}", headers=other))
    assert not [e for e in found.get("entry", []) if e["search"]["mode"] == "match"]
    r = kit.http.get(f"/fhir/Condition/{ids['Condition']}", headers=other)
    assert r.status_code in (403, 404)
