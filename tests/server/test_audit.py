"""Audit: every interaction, allowed or denied, becomes a PHI-free R4 AuditEvent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from resources.validation import validate_resource
from tests.smart_helpers import ADMIN, backend_token, bearer


@pytest.fixture
def app(app_factory) -> FastAPI:  # type: ignore[no-untyped-def]
    return app_factory(auth="on", admin_token=ADMIN, audit="on")  # type: ignore[no-any-return]


@pytest.fixture
def c(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def events(app: FastAPI) -> list[dict[str, Any]]:
    app.state.consilium.audit_writer.flush()
    docs = app.state.consilium.store.db.AuditEvent.find({}, {"resource": 1})
    return [d["resource"] for d in docs]


def test_allowed_read_is_audited_with_agent_entity_and_request_id(
    app: FastAPI, c: TestClient
) -> None:
    r = c.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Secretname"}]},
        headers=bearer(ADMIN),
    )
    pid = r.json()["id"]
    tok = backend_token(c, "system/Patient.rs")
    read = c.get(f"/fhir/Patient/{pid}", headers={**bearer(tok), "X-Request-Id": "req-42"})
    assert read.status_code == 200
    found = [e for e in events(app) if e["subtype"][0]["code"] == "read"]
    assert len(found) == 1
    event = found[0]
    assert event["type"]["code"] == "rest" and event["outcome"] == "0"
    assert event["entity"][0]["what"]["reference"] == f"Patient/{pid}"
    assert event["entity"][1]["what"]["identifier"]["value"] == "req-42"
    assert event["agent"][0]["network"]["address"]
    assert event["agent"][0]["who"]["identifier"]["value"]  # the client id
    assert "Secretname" not in str(event)  # no PHI payload
    validate_resource(event, "AuditEvent")


def test_denied_requests_are_audited(app: FastAPI, c: TestClient) -> None:
    assert c.get("/fhir/Patient/x").status_code == 401
    tok = backend_token(c, "system/Observation.rs")
    assert c.get("/fhir/Patient/x", headers=bearer(tok)).status_code == 403
    outcomes = sorted(
        (e["outcome"], e["outcomeDesc"].split()[1]) for e in events(app) if e["action"] == "R"
    )
    assert outcomes == [("4", "401"), ("4", "403")]


def test_search_query_values_are_not_recorded(app: FastAPI, c: TestClient) -> None:
    c.get("/fhir/Patient?name=Secretname", headers=bearer(ADMIN))
    assert "Secretname" not in str(events(app))


def test_audit_is_queryable_by_admins_only(app: FastAPI, c: TestClient) -> None:
    c.get("/fhir/Patient/x", headers=bearer(ADMIN))
    events(app)
    r = c.get("/fhir/AuditEvent", headers=bearer(ADMIN))
    assert r.status_code == 200 and r.json()["entry"]
    clinic = backend_token(c, "system/*.rs", org="clinic-a", role="clinic")
    assert c.get("/fhir/AuditEvent", headers=bearer(clinic)).status_code == 403


def test_shutdown_flushes_the_queue(app_factory) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(auth="on", admin_token=ADMIN, audit="on")
    with TestClient(app) as client:
        for _ in range(50):
            client.get("/fhir/Patient/x", headers=bearer(ADMIN))
    # the lifespan shutdown drained the queue before closing the store
    from pymongo import MongoClient

    settings = app.state.consilium.settings
    check: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri)
    try:
        assert check[settings.db_name].AuditEvent.count_documents({}) == 50
    finally:
        check.close()


def test_audit_off_writes_nothing(app_factory) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(auth="on", admin_token=ADMIN, audit="off")
    with TestClient(app) as client:
        client.get("/fhir/Patient/x", headers=bearer(ADMIN))
        assert app.state.consilium.audit_writer is None
        assert app.state.consilium.store.db.AuditEvent.count_documents({}) == 0


def test_token_grants_and_refusals_are_security_events(app: FastAPI, c: TestClient) -> None:
    from tests.smart_helpers import backend_client, token_request

    cid, key = backend_client(c, "system/Patient.rs")
    assert token_request(c, cid, key).status_code == 200
    assert token_request(c, cid, key, aud="http://wrong.example/token").status_code == 401
    logins = [e for e in events(app) if e["subtype"][0]["code"] == "110122"]
    assert sorted(e["outcome"] for e in logins) == ["0", "4"]
    granted = next(e for e in logins if e["outcome"] == "0")
    assert granted["agent"][0]["who"]["identifier"]["value"] == cid
    assert "client_assertion" not in str(logins)  # no credentials in the record
    registrations = [e for e in events(app) if e["subtype"][0]["code"] == "110136"]
    assert registrations and registrations[0]["agent"][0]["who"]["identifier"]["value"] == "admin"
    for e in logins + registrations:
        validate_resource(e, "AuditEvent")


def test_each_batch_entry_is_audited_with_its_own_outcome(app: FastAPI, c: TestClient) -> None:
    tok = backend_token(c, "system/Patient.cruds")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ],
    }
    r = c.post(
        "/fhir", json=batch, headers={**bearer(tok), "Content-Type": "application/fhir+json"}
    )
    assert r.status_code == 200
    created = r.json()["entry"][0]["response"]["location"].split("/")[-3]
    subtypes = sorted(
        (e["subtype"][0]["code"], e["outcome"])
        for e in events(app)
        if e["subtype"][0]["code"] in ("create", "read", "batch")
    )
    assert subtypes == [("batch", "0"), ("create", "0"), ("read", "4")]
    create = next(e for e in events(app) if e["subtype"][0]["code"] == "create")
    assert create["entity"][0]["what"]["reference"] == f"Patient/{created}"


def test_sign_ins_are_security_events_naming_client_and_user(app: FastAPI, c: TestClient) -> None:
    import base64
    import hashlib
    import secrets

    from tests.smart_helpers import register

    store = app.state.consilium.auth.store
    store.add_user("dr.a", "correct horse", "PractitionerRole/role-a")
    cid = register(
        c,
        {
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://app.example/cb"],
            "scope": "openid fhirUser user/*.rs",
        },
    )["client_id"]
    digest = hashlib.sha256(secrets.token_urlsafe(48).encode()).digest()
    params = {
        "response_type": "code",
        "client_id": cid,
        "redirect_uri": "https://app.example/cb",
        "scope": "user/*.rs",
        "state": "s",
        "aud": "http://testserver/fhir",
        "code_challenge": base64.urlsafe_b64encode(digest).decode().rstrip("="),
        "code_challenge_method": "S256",
        "decision": "allow",
        "username": "dr.a",
    }
    ok = c.post(
        "/oauth/authorize", data={**params, "password": "correct horse"}, follow_redirects=False
    )
    bad = c.post("/oauth/authorize", data={**params, "password": "wrong"})
    assert (ok.status_code, bad.status_code) == (302, 401)
    logins = sorted(
        (e["outcome"], [a["who"] for a in e["agent"]])
        for e in events(app)
        if e["outcomeDesc"].startswith("HTTP") and e["subtype"][0]["code"] == "110122"
    )
    client_who = {"identifier": {"system": "urn:consilium:oauth-client", "value": cid}}
    assert logins == [
        ("0", [client_who, {"reference": "PractitionerRole/role-a"}]),
        ("4", [client_who]),
    ]
    assert "correct horse" not in str(events(app))
