"""The Backport IG form: topics as data, handshake, event-notification Bundles, heartbeat,
filters, ``$status``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.errors import FhirError
from server.notifications import spec
from server.notifications.topics import check_filters, topic_of, topics
from tests.server.notifications.conftest import FAST
from tests.server.notifications.receiver import Received, Receiver, wait_until

TOPIC = "https://consilium.health/fhir/SubscriptionTopic/"
CASE_TOPICS = (
    "case-status-changed",
    "report-final",
    "report-amended",
    "question-asked",
    "question-answered",
    "case-assigned",
)


def topic_subscription(
    endpoint: str, topic: str, *filters: str, payload: str = "full-resource", **channel: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "case events",
        "criteria": TOPIC + topic,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": spec.PAYLOAD_EXT, "valueCode": payload}]},
            **channel,
        },
    }
    if filters:
        body["_criteria"] = {
            "extension": [{"url": spec.FILTER_EXT, "valueString": f} for f in filters]
        }
    return body


def status_of(bundle: dict[str, Any]) -> dict[str, Any]:
    """The status Parameters (first entry) as {name: value or parts}."""
    assert bundle["resourceType"] == "Bundle"
    out: dict[str, Any] = {}
    for p in bundle["entry"][0]["resource"]["parameter"]:
        value = next((v for k, v in p.items() if k.startswith("value")), None)
        if "part" in p:
            value = {
                q["name"]: next(v for k, v in q.items() if k.startswith("value")) for q in p["part"]
            }
        out[p["name"]] = value
    return out


def kinds(got: list[Received]) -> list[str]:
    return [status_of(g.json)["type"] for g in got]


# --------------------------------------------------------------------------------- pure
@pytest.mark.parametrize("name", CASE_TOPICS)
def test_every_case_topic_ships_and_plans(name: str) -> None:
    topic = topic_of(TOPIC + name)
    assert topic.triggers and all(t.current is not None for t in topic.triggers)
    assert topic.filters


def test_only_the_shipped_topics_are_known() -> None:
    assert sorted(topics()) == sorted(TOPIC + n for n in CASE_TOPICS)
    with pytest.raises(FhirError, match="unknown SubscriptionTopic"):
        topic_of("https://example.org/SubscriptionTopic/admission")


@pytest.mark.parametrize(
    ("topic", "filters", "why"),
    [
        ("report-final", ["DiagnosticReport?status=final"], "cannot filter"),
        ("report-final", ["Task?patient=Patient/1"], "does not trigger on Task"),
        ("report-final", ["DiagnosticReport?based-on:missing=x"], "based-on"),
        ("case-assigned", ["Task?focus:ServiceRequest.status=active"], "cannot filter"),
    ],
)
def test_bad_filters_are_422(topic: str, filters: list[str], why: str) -> None:
    with pytest.raises(FhirError, match=why) as err:
        check_filters(topic_of(TOPIC + topic), filters)
    assert err.value.status == 422


def test_good_filters_pass() -> None:
    got = check_filters(
        topic_of(TOPIC + "report-final"), ["DiagnosticReport?based-on=ServiceRequest/1"]
    )
    assert got == [("DiagnosticReport", "based-on=ServiceRequest/1")]


# --------------------------------------------------------------------------------- HTTP


def patient(c: TestClient) -> str:
    return str(c.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"])


def report(c: TestClient, pid: str, status: str) -> dict[str, Any]:
    body = {
        "resourceType": "DiagnosticReport",
        "status": status,
        "code": {"text": "consult"},
        "subject": {"reference": f"Patient/{pid}"},
        "conclusion": "text",
    }
    r = c.post("/fhir/DiagnosticReport", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def put(c: TestClient, body: dict[str, Any], **change: Any) -> dict[str, Any]:
    r = c.put(f"/fhir/{body['resourceType']}/{body['id']}", json={**body, **change})
    assert r.status_code == 200, r.text
    return dict(r.json())


def subscribe(c: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = c.post("/fhir/Subscription", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def active(c: TestClient, sid: str) -> str:
    return str(
        wait_until(
            lambda: c.get(f"/fhir/Subscription/{sid}").json()["status"] == "active",
            5,
            lambda: c.get(f"/fhir/Subscription/{sid}").json()["status"],
        )
    )


def test_a_handshake_activates_the_subscription(c: TestClient, receiver: Receiver) -> None:
    sub = subscribe(c, topic_subscription(receiver.url, "report-final"))
    assert sub["status"] == "requested"
    assert active(c, sub["id"]) == "active"
    got = receiver.wait_for(1)
    status = status_of(got[0].json)
    assert got[0].json["type"] == "history"
    assert (status["type"], status["status"]) == ("handshake", "requested")
    assert status["events-since-subscription-start"] == "0"
    assert status["topic"] == TOPIC + "report-final"


def test_a_failed_handshake_ends_in_error(
    app_factory: Callable[..., FastAPI], receiver: Receiver
) -> None:
    receiver.stop()
    with TestClient(app_factory(**{**FAST, "notify_max_failures": 2})) as c:
        sid = subscribe(c, topic_subscription(receiver.url, "report-final"))["id"]
        final = wait_until(
            lambda: c.get(f"/fhir/Subscription/{sid}").json()["status"] == "error",
            5,
            lambda: c.get(f"/fhir/Subscription/{sid}").json()["status"],
        )
        assert final == "error"


def test_report_final_fires_on_the_transition_only(c: TestClient, receiver: Receiver) -> None:
    pid = patient(c)
    other = patient(c)
    sid = subscribe(
        c, topic_subscription(receiver.url, "report-final", f"DiagnosticReport?patient={pid}")
    )["id"]
    active(c, sid)
    draft = report(c, pid, "preliminary")
    report(c, other, "final")  # filtered out: another patient
    final = put(c, draft, status="final")
    put(c, final, conclusion="typo fixed, still final")  # no transition: no event
    got = receiver.wait_for(2)
    wait_until(lambda: len(receiver.received()) > 2, 0.5, list)
    assert kinds(receiver.received()) == ["handshake", "event-notification"]
    status = status_of(got[1].json)
    assert status["events-since-subscription-start"] == "1"
    assert status["notification-event"]["event-number"] == "1"
    assert status["notification-event"]["focus"]["reference"] == (
        f"DiagnosticReport/{draft['id']}/_history/2"
    )
    focus = got[1].json["entry"][1]
    assert focus["resource"]["status"] == "final"
    assert focus["request"] == {"method": "PUT", "url": f"DiagnosticReport/{draft['id']}"}


def test_report_amended_and_id_only(c: TestClient, receiver: Receiver) -> None:
    pid = patient(c)
    sid = subscribe(c, topic_subscription(receiver.url, "report-amended", payload="id-only"))["id"]
    active(c, sid)
    final = report(c, pid, "final")
    put(c, final, status="amended", conclusion="amended")
    got = receiver.wait_for(2)
    assert kinds(got) == ["handshake", "event-notification"]
    entry = got[1].json["entry"][1]
    assert "resource" not in entry
    assert entry["fullUrl"] == f"DiagnosticReport/{final['id']}"


def test_empty_payload_names_no_focus(c: TestClient, receiver: Receiver) -> None:
    pid = patient(c)
    sid = subscribe(c, topic_subscription(receiver.url, "report-final", payload="empty"))["id"]
    active(c, sid)
    report(c, pid, "final")
    got = receiver.wait_for(2)
    assert len(got[1].json["entry"]) == 1
    assert "focus" not in status_of(got[1].json)["notification-event"]


def test_heartbeats_come_when_nothing_happens(c: TestClient, receiver: Receiver) -> None:
    heartbeat = {"extension": [{"url": spec.HEARTBEAT_EXT, "valueUnsignedInt": 1}]}
    sid = subscribe(c, topic_subscription(receiver.url, "report-final", **heartbeat))["id"]
    active(c, sid)
    got = receiver.wait_for(2, timeout=4)
    assert kinds(got)[:2] == ["handshake", "heartbeat"]
    assert status_of(got[1].json)["status"] == "active"


def test_status_operation_counts_events(c: TestClient, receiver: Receiver) -> None:
    pid = patient(c)
    sid = subscribe(c, topic_subscription(receiver.url, "report-final"))["id"]
    active(c, sid)
    report(c, pid, "final")
    report(c, pid, "final")
    r = c.get(f"/fhir/Subscription/{sid}/$status")
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "searchset"
    status = status_of(r.json())
    assert (status["type"], status["status"]) == ("query-status", "active")
    assert status["events-since-subscription-start"] == "2"
    assert c.get("/fhir/Subscription/nope/$status").status_code == 404


@pytest.mark.parametrize(
    ("criteria", "filters"),
    [
        (TOPIC + "nope", []),
        (TOPIC + "report-final", ["DiagnosticReport?status=final"]),
        (TOPIC + "report-final", ["Task?patient=Patient/1"]),
    ],
)
def test_bad_topic_subscriptions_are_422(c: TestClient, criteria: str, filters: list[str]) -> None:
    body = topic_subscription("http://127.0.0.1:9/hook", "report-final", *filters)
    body["criteria"] = criteria
    assert c.post("/fhir/Subscription", json=body).status_code == 422


@pytest.mark.parametrize("name", CASE_TOPICS)
def test_previous_criteria_are_decided_in_python(name: str) -> None:
    """The previous version is not in the database, so its criteria must be decidable."""
    from server.notifications.outbox import decidable

    for trigger in topic_of(TOPIC + name).triggers:
        if trigger.previous is not None:
            assert all(decidable(c) for c in [trigger.previous.filter, *trigger.previous.residual])
