"""Outbox pruning: delivered events past the retention go, in bounded batches; pending events
and the event counter (what ``$status`` reports) stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.notifications.delivery import Worker
from server.notifications.store import NotifyStore
from server.timeutil import now
from tests.server.notifications.conftest import FAST, subscription
from tests.server.notifications.receiver import Receiver, wait_until

RETENTION = 3600.0


@pytest.fixture
def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    return app_factory(**FAST, notify_retention_seconds=RETENTION, notify_prune_batch=2)


def store(app: FastAPI) -> NotifyStore:
    return NotifyStore(app.state.consilium.store.db)


def worker(app: FastAPI) -> Worker:
    found = app.state.notifications.worker
    assert isinstance(found, Worker)
    return found


def delivered_events(c: TestClient, app: FastAPI, receiver: Receiver, n: int) -> str:
    r = c.post("/fhir/Subscription", json=subscription(receiver.url, payload="id-only"))
    assert r.status_code == 201, r.text
    sid = str(r.json()["id"])
    for _ in range(n):
        body = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "x"}}
        assert c.post("/fhir/DiagnosticReport", json=body).status_code == 201
    receiver.wait_for(n)
    outbox = store(app).outbox
    wait_until(lambda: outbox.count_documents({"sub": sid, "state": "delivered"}) == n, 5, list)
    return sid


def age(app: FastAPI, sid: str, numbers: list[int], seconds: float) -> None:
    store(app).outbox.update_many(
        {"sub": sid, "n": {"$in": numbers}},
        {"$set": {"delivered_at": now() - timedelta(seconds=seconds)}},
    )


def remaining(app: FastAPI, sid: str) -> list[int]:
    return sorted(int(d["n"]) for d in store(app).outbox.find({"sub": sid}))


def test_delivered_events_past_the_retention_are_pruned(
    app: FastAPI, c: TestClient, receiver: Receiver
) -> None:
    sid = delivered_events(c, app, receiver, 3)
    age(app, sid, [1, 2], RETENTION + 60)
    assert worker(app).prune() == 2
    assert remaining(app, sid) == [3]  # delivered within the retention: kept


def test_pruning_goes_in_bounded_batches(app: FastAPI, c: TestClient, receiver: Receiver) -> None:
    sid = delivered_events(c, app, receiver, 5)
    age(app, sid, [1, 2, 3, 4, 5], RETENTION + 60)
    assert worker(app).prune(max_batches=2) == 4  # 2 batches of notify_prune_batch=2
    assert remaining(app, sid) == [5]
    assert worker(app).prune() == 1


def test_pending_events_are_never_pruned(app: FastAPI, c: TestClient, receiver: Receiver) -> None:
    sid = delivered_events(c, app, receiver, 1)
    old = now() - timedelta(seconds=RETENTION * 10)
    store(app).outbox.insert_one(
        {
            "_id": f"{sid}:99",
            "sub": sid,
            "n": 99,
            "state": "pending",
            "ts": old,
            "delivered_at": old,
        }
    )
    store(app).subs.update_one({"_id": sid}, {"$set": {"status": "off"}})  # not sent meanwhile
    age(app, sid, [1], RETENTION + 60)
    assert worker(app).prune() == 1
    assert remaining(app, sid) == [99]


def test_status_counts_survive_pruning(app: FastAPI, c: TestClient, receiver: Receiver) -> None:
    sid = delivered_events(c, app, receiver, 3)
    age(app, sid, [1, 2, 3], RETENTION + 60)
    assert worker(app).prune() == 3
    got = c.get(f"/fhir/Subscription/{sid}/$status").json()
    params: dict[str, Any] = {
        p["name"]: p.get("valueString") for p in got["entry"][0]["resource"]["parameter"]
    }
    assert params["events-since-subscription-start"] == "3"
    body = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "x"}}
    assert c.post("/fhir/DiagnosticReport", json=body).status_code == 201
    assert receiver.wait_for(4)[-1].number == 4  # numbering continues after the pruned ones


def test_the_worker_prunes_on_its_own(
    app_factory: Callable[..., FastAPI], receiver: Receiver
) -> None:
    app = app_factory(**FAST, notify_retention_seconds=RETENTION, notify_prune_every_seconds=0.05)
    with TestClient(app, base_url="http://testserver") as c:
        sid = delivered_events(c, app, receiver, 2)
        age(app, sid, [1], RETENTION + 60)
        wait_until(lambda: remaining(app, sid) == [2], 5, lambda: remaining(app, sid))
        assert remaining(app, sid) == [2]
