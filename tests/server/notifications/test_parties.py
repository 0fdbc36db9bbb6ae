"""Notifications with authorization on, through real cases: what each party's endpoint gets is
what that party may read (an insurer: the status view, never clinical content)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from server.app import create_app
from server.notifications import spec
from server.notifications.store import NotifyStore
from tests.demo_copy import seed_demo
from tests.server.cases.kit import Case, Kit, make_parties, ok
from tests.server.notifications.conftest import FAST, subscription
from tests.server.notifications.receiver import Receiver, wait_until
from tests.smart_helpers import ADMIN

LEAD = "exp-oncology-ca"
CLINICAL = ("conclusion", "conclusionCode", "presentedForm", "result", "category")


@pytest.fixture(scope="module")
def kit(module_settings: Callable[..., Any], mongo_uri: str) -> Iterator[Kit]:
    app = create_app(module_settings("notify", auth="on", admin_token=ADMIN, **FAST))
    seed_demo(app.state.consilium)
    with TestClient(app, base_url="http://testserver") as client:
        yield Kit(client, make_parties(client))
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(app.state.consilium.settings.db_name)
    cleanup.close()


def subscribe(kit: Kit, headers: dict[str, str], body: dict[str, Any]) -> str:
    return str(ok(kit.http.post("/fhir/Subscription", json=body, headers=headers), 201)["id"])


def for_party(body: dict[str, Any], role: str, org: str) -> dict[str, Any]:
    """A Subscription a trusted integration provisions for a party (parties may also write
    their own: test_owners.py)."""
    body["extension"] = [
        {
            "url": spec.OWNER_EXT,
            "extension": [
                {"url": "role", "valueCode": role},
                {"url": "organization", "valueReference": {"reference": f"Organization/{org}"}},
            ],
        }
    ]
    return body


def started(kit: Kit) -> Case:
    case = kit.new_case()
    ok(kit.pull(case, kit.p.expert(LEAD)))
    return case


def test_a_final_report_notifies_the_clinic_exactly_once(kit: Kit, receiver: Receiver) -> None:
    case = started(kit)
    criteria = f"DiagnosticReport?based-on=ServiceRequest/{case.sr}&status=final"
    subscribe(kit, kit.p.clinic, subscription(receiver.url, criteria))
    ok(kit.report(case, kit.p.expert(LEAD), status="preliminary", outcomes=()), 201)
    report = ok(kit.report(case, kit.p.expert(LEAD)), 201)
    got = receiver.wait_for(1)
    wait_until(lambda: len(receiver.received()) > 1, 0.5, list)
    assert len(receiver.received()) == 1
    assert got[0].number == 1
    assert got[0].json["id"] == report["id"]
    assert got[0].json["conclusion"] == "Reviewed the whole file."  # the clinic reads it all


def test_an_insurer_gets_the_status_view_only(kit: Kit, receiver: Receiver) -> None:
    case = started(kit)
    criteria = f"DiagnosticReport?based-on=ServiceRequest/{case.sr}"
    body = for_party(subscription(receiver.url, criteria), "insurer", "ins-maple-mutual")
    subscribe(kit, kit.p.trusted, body)
    ok(kit.report(case, kit.p.expert(LEAD)), 201)
    got = receiver.wait_for(1)
    assert len(got) == 1
    shown = got[0].json
    assert shown["status"] == "final"
    assert not set(CLINICAL) & set(shown)
    assert any(s["code"] == "REDACTED" for s in shown["meta"]["security"])
    assert b"Reviewed the whole file" not in got[0].body


def test_an_insurer_follows_the_case_status(kit: Kit, receiver: Receiver) -> None:
    case = kit.new_case()
    criteria = f"Task?focus=ServiceRequest/{case.sr}"
    body = for_party(subscription(receiver.url, criteria), "insurer", "ins-maple-mutual")
    subscribe(kit, kit.p.trusted, body)
    ok(kit.pull(case, kit.p.expert(LEAD)))
    got = receiver.wait_for(1)
    assert got[0].json["resourceType"] == "Task"
    assert got[0].json["status"] == "in-progress"
    assert "input" not in got[0].json and "note" not in got[0].json


@pytest.mark.parametrize(
    ("role", "org"), [("insurer", "ins-albion-health"), ("clinic", "clinic-st-brigid")]
)
def test_a_party_that_cannot_read_the_case_hears_nothing(
    kit: Kit, receiver: Receiver, role: str, org: str
) -> None:
    case = started(kit)
    criteria = f"DiagnosticReport?based-on=ServiceRequest/{case.sr}"
    sid = subscribe(kit, kit.p.trusted, for_party(subscription(receiver.url, criteria), role, org))
    witness = Receiver().start()
    try:
        subscribe(kit, kit.p.clinic, subscription(witness.url, criteria))
        ok(kit.report(case, kit.p.expert(LEAD)), 201)
        assert len(witness.wait_for(1)) == 1  # the report was notified to its own clinic
        assert receiver.received() == []
        store = kit.http.app.state.consilium.store  # type: ignore[attr-defined]
        assert NotifyStore(store.db).subs.find_one({"_id": sid})["events"] == 0  # nothing counted
    finally:
        witness.stop()


def test_an_insurer_token_without_a_subscription_write_scope_cannot_subscribe(
    kit: Kit, receiver: Receiver
) -> None:
    r = kit.http.post(
        "/fhir/Subscription",
        json=subscription(receiver.url, "Task?status=completed"),
        headers=kit.p.insurer,  # system/*.rs: the scopes still bound the party rule
    )
    assert r.status_code == 403 and "rule scope" in r.text


# ------------------------------------------------------------------ topics (Backport IG form)
TOPIC = "https://consilium.health/fhir/SubscriptionTopic/"


def topic_body(endpoint: str, topic: str, *filters: str) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "case events",
        "criteria": TOPIC + topic,
        "_criteria": {"extension": [{"url": spec.FILTER_EXT, "valueString": f} for f in filters]},
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": spec.PAYLOAD_EXT, "valueCode": "full-resource"}]},
        },
    }


def focus_of(got: list[Any]) -> list[dict[str, Any]]:
    """The focus resources of the event notifications (handshakes left out)."""
    return [g.json["entry"][1]["resource"] for g in got if len(g.json["entry"]) > 1]


def test_the_clinic_hears_the_experts_question(kit: Kit, receiver: Receiver) -> None:
    case = started(kit)
    body = topic_body(
        receiver.url, "question-asked", f"Communication?based-on=ServiceRequest/{case.sr}"
    )
    subscribe(kit, kit.p.clinic, body)
    receiver.wait_for(1)  # the handshake
    ok(kit.ask(case, kit.p.expert(LEAD), text="Please send the MRI"), 201)
    got = focus_of(receiver.wait_for(2))
    assert [c["payload"][0]["contentString"] for c in got] == ["Please send the MRI"]


def test_the_expert_hears_the_clinics_answer(kit: Kit, receiver: Receiver) -> None:
    case = started(kit)
    body = topic_body(
        receiver.url, "question-answered", f"Communication?patient=Patient/{case.patient}"
    )
    body["extension"] = [
        {
            "url": spec.OWNER_EXT,
            "extension": [
                {"url": "role", "valueCode": "specialist"},
                {
                    "url": "organization",
                    "valueReference": {"reference": "Organization/net-consilium-experts"},
                },
                {
                    "url": "practitionerRole",
                    "valueReference": {"reference": f"PractitionerRole/{LEAD}"},
                },
            ],
        }
    ]
    subscribe(kit, kit.p.trusted, body)
    receiver.wait_for(1)
    question = ok(kit.ask(case, kit.p.expert(LEAD)), 201)
    ok(kit.answer(case, question["id"], kit.p.clinic), 201)
    got = focus_of(receiver.wait_for(2))
    assert len(got) == 1 and got[0]["inResponseTo"] == [
        {"reference": f"Communication/{question['id']}"}
    ]


def test_the_clinic_hears_the_case_assigned_at_submission(kit: Kit, receiver: Receiver) -> None:
    patient, coverage = kit.member()
    subscribe(
        kit,
        kit.p.clinic,
        topic_body(receiver.url, "case-assigned", f"Task?patient=Patient/{patient}"),
    )
    receiver.wait_for(1)
    kit.submit(patient, coverage)
    got = focus_of(receiver.wait_for(2))
    assert len(got) == 1
    assert got[0]["owner"]["reference"].startswith("PractitionerRole/")


def test_an_insurer_follows_case_status_changes_redacted(kit: Kit, receiver: Receiver) -> None:
    case = kit.new_case()
    body = topic_body(receiver.url, "case-status-changed", f"Task?focus=ServiceRequest/{case.sr}")
    subscribe(kit, kit.p.trusted, for_party(body, "insurer", "ins-maple-mutual"))
    receiver.wait_for(1)
    ok(kit.pull(case, kit.p.expert(LEAD)))
    ok(kit.report(case, kit.p.expert(LEAD)), 201)
    got = focus_of(receiver.wait_for(3))
    assert [t["status"] for t in got] == ["in-progress", "completed"]
    assert all(any(s["code"] == "REDACTED" for s in t["meta"]["security"]) for t in got)
    numbers = [
        g.json["entry"][0]["resource"]["parameter"][4]["valueString"] for g in receiver.received()
    ]
    assert numbers == ["0", "1", "2"]  # handshake, then continuous event numbers
