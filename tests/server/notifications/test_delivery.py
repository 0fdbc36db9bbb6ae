"""Delivery to a real local receiver: retries, restart, two workers, ordering, HMAC, error."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.notifications.delivery import backoff, sign
from server.notifications.store import NotifyStore
from tests.server.notifications.conftest import FAST, subscription
from tests.server.notifications.receiver import Received, Receiver, wait_until

SECRET = "shared-secret-of-the-clinic-0123456789"


def subscribe(
    c: TestClient, endpoint: str, criteria: str = "DiagnosticReport?status=final", **kw: Any
) -> str:
    r = c.post("/fhir/Subscription", json=subscription(endpoint, criteria, **kw))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def report(c: TestClient, status: str = "final") -> dict[str, Any]:
    body = {"resourceType": "DiagnosticReport", "status": status, "code": {"text": "consult"}}
    r = c.post("/fhir/DiagnosticReport", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def numbers(got: list[Received], sid: str | None = None) -> list[int]:
    return [g.number for g in got if sid is None or g.headers["x-consilium-subscription"] == sid]


def pending(app: FastAPI) -> int:
    return NotifyStore(app.state.consilium.store.db).outbox.count_documents({"state": "pending"})


def test_a_final_report_is_posted_once_with_the_resource(
    app: FastAPI, c: TestClient, receiver: Receiver
) -> None:
    sid = subscribe(c, receiver.url)
    dr = report(c)
    report(c, "preliminary")
    got = receiver.wait_for(1)
    assert len(got) == 1
    assert got[0].json["id"] == dr["id"] and got[0].json["status"] == "final"
    assert got[0].headers["x-consilium-subscription"] == sid
    assert got[0].headers["content-type"] == "application/fhir+json"
    wait_until(lambda: pending(app) == 0, 5, lambda: None)
    assert len(receiver.received()) == 1


def test_id_only_and_empty_carry_no_resource(c: TestClient, receiver: Receiver) -> None:
    ids = subscribe(c, receiver.url, payload="id-only")
    empty = subscribe(c, receiver.url, payload=None)
    dr = report(c)
    got = {g.headers["x-consilium-subscription"]: g for g in receiver.wait_for(2)}
    assert got[ids].body == b"" and got[ids].headers["x-consilium-focus"] == (
        f"DiagnosticReport/{dr['id']}/_history/1"
    )
    assert got[empty].body == b"" and "x-consilium-focus" not in got[empty].headers


def test_receiver_down_then_back_gets_every_event_in_order(
    app: FastAPI, c: TestClient, receiver: Receiver
) -> None:
    sid = subscribe(c, receiver.url)
    receiver.stop()
    for _ in range(3):
        report(c)
    delivery = NotifyStore(app.state.consilium.store.db).delivery
    wait_until(lambda: (delivery.find_one({"_id": sid}) or {}).get("failures", 0) >= 2, 5, list)
    assert (delivery.find_one({"_id": sid}) or {})["failures"] >= 2  # it retried
    receiver.start()
    assert numbers(receiver.wait_for(3)) == [1, 2, 3]


def test_pending_deliveries_resume_after_a_restart(
    app_factory: Callable[..., FastAPI], receiver: Receiver
) -> None:
    first = app_factory(**FAST)
    receiver.stop()
    with TestClient(first) as c1:
        subscribe(c1, receiver.url)
        report(c1)
        report(c1)
    receiver.start()
    again = app_factory(**{**FAST, "db_name": first.state.consilium.settings.db_name})
    assert pending(again) == 2  # the first server stopped with both undelivered
    with TestClient(again):
        assert numbers(receiver.wait_for(2)) == [1, 2]


def test_two_workers_on_one_database_deliver_each_event_once(
    app: FastAPI, c: TestClient, app_factory: Callable[..., FastAPI], receiver: Receiver
) -> None:
    other = app_factory(**{**FAST, "db_name": app.state.consilium.settings.db_name})
    with TestClient(other) as c2:
        subs = [subscribe(c, receiver.url) for _ in range(3)]
        for i in range(8):
            report(c if i % 2 else c2)
        receiver.wait_for(24)
        wait_until(lambda: pending(app) == 0, 5, lambda: None)
    for sid in subs:
        got = numbers(receiver.received(), sid)
        assert sorted(set(got)) == list(range(1, 9))  # after dedupe by event number: all
        assert got == sorted(got)  # in order per subscription
        assert len(got) == 8  # and, without a crash, no duplicate at all


def test_the_hmac_signature_verifies(c: TestClient, receiver: Receiver) -> None:
    subscribe(c, receiver.url, secret=SECRET)
    report(c)
    got = receiver.wait_for(1)[0]
    fields = dict(p.split("=", 1) for p in got.headers["x-consilium-signature"].split(","))
    expected = hmac.new(
        SECRET.encode(), f"{fields['t']}.".encode() + got.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert sign(SECRET, int(fields["t"]), got.body + b"x") != got.headers["x-consilium-signature"]


def test_channel_headers_are_sent(c: TestClient, receiver: Receiver) -> None:
    subscribe(c, receiver.url, payload=None)
    sid = c.get("/fhir/Subscription").json()["entry"][0]["resource"]
    sid["channel"]["header"] = ["Authorization: Bearer clinic-token"]
    assert c.put(f"/fhir/Subscription/{sid['id']}", json=sid).status_code == 200
    report(c)
    assert receiver.wait_for(1)[0].headers["authorization"] == "Bearer clinic-token"


def test_redirects_are_not_followed(c: TestClient, receiver: Receiver) -> None:
    redirecting = Receiver(status=307).start()
    try:
        subscribe(c, redirecting.url)
        report(c)
        wait_until(lambda: len(redirecting.received()) >= 2, 5, list)
        assert len(redirecting.received()) >= 2  # retried, because a 3xx is a failure
        assert receiver.received() == []
    finally:
        redirecting.stop()


def test_after_n_failures_the_subscription_is_in_error_and_keeps_counting(
    app_factory: Callable[..., FastAPI], receiver: Receiver
) -> None:
    app = app_factory(**{**FAST, "notify_max_failures": 2})
    receiver.stop()
    with TestClient(app) as c:
        sid = subscribe(c, receiver.url)
        report(c)
        status = wait_until(
            lambda: c.get(f"/fhir/Subscription/{sid}").json()["status"] == "error",
            5,
            lambda: c.get(f"/fhir/Subscription/{sid}").json(),
        )
        assert status["status"] == "error" and "delivery failed" in status["error"]
        report(c)
        report(c)
        assert pending(app) == 3  # counted while in error
        status = c.get(f"/fhir/Subscription/{sid}/$status").json()["entry"][0]["resource"]
        values = {p["name"]: p for p in status["parameter"]}
        assert values["status"]["valueCode"] == "error"
        assert values["events-since-subscription-start"]["valueString"] == "3"
        assert "ConnectError" in values["error"]["valueCodeableConcept"]["text"]
        receiver.start()
        body = c.get(f"/fhir/Subscription/{sid}").json()
        r = c.put(f"/fhir/Subscription/{sid}", json={**body, "status": "requested"})
        assert r.status_code == 200 and r.json()["status"] == "active"
        assert "error" not in r.json()
        assert numbers(receiver.wait_for(3)) == [1, 2, 3]


def test_a_hanging_endpoint_does_not_delay_other_subscriptions(
    app_factory: Callable[..., FastAPI], receiver: Receiver
) -> None:
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)  # accepts connections, never answers
    stop = threading.Event()
    try:
        app = app_factory(**{**FAST, "notify_timeout_seconds": 3})
        with TestClient(app) as c:
            subscribe(c, f"http://127.0.0.1:{hang.getsockname()[1]}/hook")
            live = subscribe(c, receiver.url)
            for _ in range(3):
                report(c)
            got = receiver.wait_for(3, timeout=2.5)  # well before the hanging call times out
            assert numbers(receiver.received(), live) == [1, 2, 3], got
    finally:
        stop.set()
        hang.close()


@pytest.mark.parametrize(
    ("failures", "seconds"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (12, 300.0)]
)
def test_backoff_doubles_up_to_the_cap(failures: int, seconds: float) -> None:
    assert backoff(failures, 1.0, 300.0) == seconds


def test_a_lost_acknowledgement_resends_the_same_event_number(
    app: FastAPI, c: TestClient, receiver: Receiver
) -> None:
    sid = subscribe(c, receiver.url)
    report(c)
    first = receiver.wait_for(1)[0]
    outbox = NotifyStore(app.state.consilium.store.db).outbox
    wait_until(lambda: pending(app) == 0, 5, lambda: None)
    # As if the worker died after the receiver's 2xx but before recording it.
    outbox.update_one({"_id": f"{sid}:1"}, {"$set": {"state": "pending"}})
    got = receiver.wait_for(2)
    assert [g.number for g in got] == [1, 1]
    assert got[1].body == first.body  # the same notification again: the receiver drops it
    assert len({(g.headers["x-consilium-subscription"], g.number) for g in got}) == 1
