"""Matching in the writing transaction: outbox events, event numbers, the cache, and that the
matcher agrees with the search itself (it is the search's plan, evaluated on the written
version)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.notifications.store import NotifyStore
from tests.server.notifications.conftest import FAST, subscription

HOOK = "http://127.0.0.1:9/hook"  # never called: the worker is off in these tests
QUIET = {**FAST, "notify_worker": False}


@pytest.fixture
def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    return app_factory(**QUIET)


def events(app: FastAPI, sid: str | None = None) -> list[dict[str, Any]]:
    flt = {} if sid is None else {"sub": sid}
    return list(NotifyStore(app.state.consilium.store.db).outbox.find(flt).sort("n"))


def subscribe(c: TestClient, criteria: str, **kw: Any) -> str:
    r = c.post("/fhir/Subscription", json=subscription(HOOK, criteria, **kw))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def report(c: TestClient, status: str = "final", **kw: Any) -> dict[str, Any]:
    body = {"resourceType": "DiagnosticReport", "status": status, "code": {"text": "x"}, **kw}
    r = c.post("/fhir/DiagnosticReport", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_matching_write_gets_one_event_per_version(app: FastAPI, c: TestClient) -> None:
    sid = subscribe(c, "DiagnosticReport?status=final")
    dr = report(c)
    report(c, "preliminary")
    got = events(app, sid)
    assert [(e["n"], e["rid"], e["vid"]) for e in got] == [(1, dr["id"], 1)]
    dr["conclusion"] = "amended text"
    assert c.put(f"/fhir/DiagnosticReport/{dr['id']}", json=dr).status_code == 200
    assert [(e["n"], e["vid"]) for e in events(app, sid)] == [(1, 1), (2, 2)]


def test_event_numbers_are_per_subscription(app: FastAPI, c: TestClient) -> None:
    finals = subscribe(c, "DiagnosticReport?status=final")
    every = subscribe(c, "DiagnosticReport")
    report(c, "preliminary")
    report(c)
    assert [e["n"] for e in events(app, every)] == [1, 2]
    assert [e["n"] for e in events(app, finals)] == [1]


def test_a_rolled_back_transaction_leaves_no_event(app: FastAPI, c: TestClient) -> None:
    sid = subscribe(c, "DiagnosticReport?status=final")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "code": {"text": "x"},
                },
                "request": {"method": "POST", "url": "DiagnosticReport"},
            },
            {"request": {"method": "DELETE", "url": "Patient/does-not-exist"}},
        ],
    }
    r = c.post("/fhir", json=bundle)
    assert r.status_code == 404, r.text  # the DELETE fails: the whole Bundle rolls back
    assert events(app, sid) == []
    report(c)
    assert [e["n"] for e in events(app, sid)] == [1]  # the counter did not move either


def test_a_subscription_turned_off_stops_matching(app: FastAPI, c: TestClient) -> None:
    sid = subscribe(c, "DiagnosticReport?status=final")
    report(c)
    body = c.get(f"/fhir/Subscription/{sid}").json()
    assert c.put(f"/fhir/Subscription/{sid}", json={**body, "status": "off"}).status_code == 200
    report(c)
    assert len(events(app, sid)) == 1


def test_a_subscription_written_by_another_process_is_seen(
    app: FastAPI, c: TestClient, app_factory: Callable[..., FastAPI]
) -> None:
    report(c)  # this process has loaded its (empty) cache
    other = app_factory(**{**QUIET, "db_name": app.state.consilium.settings.db_name})
    with TestClient(other) as c2:
        sid = subscribe(c2, "DiagnosticReport?status=final")
    report(c)
    assert len(events(app, sid)) == 1


def test_the_end_of_a_subscription_stops_it(app: FastAPI, c: TestClient) -> None:
    sid = subscribe(c, "DiagnosticReport", end="2001-01-01T00:00:00Z")
    report(c)
    assert events(app, sid) == []


def test_chained_criteria_are_planned_at_write_time(app: FastAPI, c: TestClient) -> None:
    pat = c.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"}).json()
    other = c.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "male"}).json()
    sid = subscribe(c, "DiagnosticReport?subject:Patient.gender=female")
    report(c, subject={"reference": f"Patient/{other['id']}"})
    mine = report(c, subject={"reference": f"Patient/{pat['id']}"})
    assert [e["rid"] for e in events(app, sid)] == [mine["id"]]


CRITERIA = [
    ("Patient", "gender=female"),
    ("Patient", "gender:not=female"),
    ("Patient", "name=ok"),
    ("Patient", "name:exact=Okafor"),
    ("Patient", "name:contains=kaf"),  # a $regex: decided by the database, restricted to _id
    ("Patient", "birthdate=ge1970-01-01&birthdate=lt1972"),
    ("Patient", "birthdate=1971"),
    ("Patient", "identifier=urn:oid:1|123"),
    ("Patient", "family:missing=true"),
    ("Patient", "_id=nope"),
    ("Observation", "value-quantity=gt5"),
    ("Observation", "value-quantity=le5"),
    ("Observation", "code=http://loinc.org|1234-5,http://loinc.org|9"),
    ("Observation", "status=final&code=http://loinc.org|1234-5"),
]
RESOURCES = [
    {
        "resourceType": "Patient",
        "gender": "female",
        "name": [{"family": "Okafor", "given": ["Ada"]}],
        "birthDate": "1971-04-12",
        "identifier": [{"system": "urn:oid:1", "value": "123"}],
    },
    {"resourceType": "Patient", "gender": "male", "birthDate": "1969-12-31"},
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
        "valueQuantity": {"value": 7.5, "unit": "mg", "system": "http://unitsofmeasure.org"},
    },
]


@pytest.mark.parametrize(("rtype", "query"), CRITERIA)
def test_the_matcher_agrees_with_the_search(
    app: FastAPI, c: TestClient, rtype: str, query: str
) -> None:
    sid = subscribe(c, f"{rtype}?{query}")
    written = []
    for body in RESOURCES:
        if body["resourceType"] == rtype:
            r = c.post(f"/fhir/{rtype}", json=body)
            assert r.status_code == 201, r.text
            written.append(r.json()["id"])
    found = c.get(f"/fhir/{rtype}?{query}&_count=100").json()
    searched = {e["resource"]["id"] for e in found.get("entry", [])} & set(written)
    assert {e["rid"] for e in events(app, sid)} == searched


def subscription_and_match() -> list[dict[str, Any]]:
    """Transaction entries: a Subscription to final reports, and a final report."""
    report_body = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "x"}}
    return [
        {
            "resource": subscription(HOOK, "DiagnosticReport?status=final"),
            "request": {"method": "POST", "url": "Subscription"},
        },
        {"resource": report_body, "request": {"method": "POST", "url": "DiagnosticReport"}},
    ]


def test_a_subscription_in_a_rolled_back_bundle_never_matches(app: FastAPI, c: TestClient) -> None:
    report(c)  # the cache is loaded
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            *subscription_and_match(),
            {"request": {"method": "DELETE", "url": "Patient/does-not-exist"}},
        ],
    }
    assert c.post("/fhir", json=bundle).status_code == 404
    other = subscribe(c, "Patient?gender=female")  # a committed write takes the next generation
    report(c)
    assert [e["sub"] for e in events(app)] == []
    c.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert [e["sub"] for e in events(app)] == [other]


def test_a_subscription_and_a_match_in_one_bundle(app: FastAPI, c: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            *subscription_and_match(),
        ],
    }
    r = c.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    assert len(events(app)) == 1  # the subscription commits with the write it matches
