"""Subscription create/update over HTTP: validation (422), status, secret kept server-side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.notifications import spec
from server.notifications.store import NotifyStore
from tests.server.notifications.conftest import FAST, subscription

SECRET = "a-very-secret-shared-key-0123456789"


def state(app: FastAPI, sid: str) -> dict[str, Any]:
    doc = NotifyStore(app.state.consilium.store.db).subs.find_one({"_id": sid})
    assert doc is not None
    return doc


def test_a_valid_subscription_becomes_active(c: TestClient) -> None:
    r = c.post("/fhir/Subscription", json=subscription("http://127.0.0.1:9/hook"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"
    assert c.get(f"/fhir/Subscription/{r.json()['id']}").json()["status"] == "active"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://192.168.0.10/hook",
        "ftp://127.0.0.1/hook",
        "http://user:pw@127.0.0.1/hook",
    ],
)
def test_unsafe_endpoints_are_refused_at_create(c: TestClient, endpoint: str) -> None:
    r = c.post("/fhir/Subscription", json=subscription(endpoint))
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["expression"] == ["channel.endpoint"]


def test_loopback_needs_the_development_setting(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory()) as client:
        r = client.post("/fhir/Subscription", json=subscription("http://127.0.0.1:9/hook"))
        assert r.status_code == 422
        assert "loopback" in r.text


@pytest.mark.parametrize(
    "criteria", ["DiagnosticReport?colour=blue", "Nonsense?x=1", "DiagnosticReport?_sort=date"]
)
def test_criteria_the_search_refuses_are_422(c: TestClient, criteria: str) -> None:
    r = c.post("/fhir/Subscription", json=subscription("http://127.0.0.1:9/hook", criteria))
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["expression"] == ["criteria"]


def test_an_update_to_an_unsafe_endpoint_is_refused_and_nothing_changes(
    app: FastAPI, c: TestClient
) -> None:
    body = c.post("/fhir/Subscription", json=subscription("http://127.0.0.1:9/hook")).json()
    bad = {**body, "channel": {**body["channel"], "endpoint": "http://10.1.1.1/x"}}
    assert c.put(f"/fhir/Subscription/{body['id']}", json=bad).status_code == 422
    assert state(app, body["id"])["endpoint"] == "http://127.0.0.1:9/hook"
    assert c.get(f"/fhir/Subscription/{body['id']}").json()["meta"]["versionId"] == "1"


def test_the_secret_is_never_returned_but_kept_server_side(app: FastAPI, c: TestClient) -> None:
    r = c.post("/fhir/Subscription", json=subscription("http://127.0.0.1:9/hook", secret=SECRET))
    assert SECRET not in r.text
    sid = r.json()["id"]
    assert SECRET not in c.get(f"/fhir/Subscription/{sid}").text
    assert SECRET not in c.get(f"/fhir/Subscription/{sid}/_history/1").text
    assert SECRET not in c.get("/fhir/Subscription").text
    assert state(app, sid)["secret"] == SECRET
    # An update without the extension keeps the secret.
    again = {**r.json(), "reason": "changed"}
    assert c.put(f"/fhir/Subscription/{sid}", json=again).status_code == 200
    assert state(app, sid)["secret"] == SECRET


def test_a_client_cannot_set_error_but_can_turn_it_off(app: FastAPI, c: TestClient) -> None:
    body = c.post("/fhir/Subscription", json=subscription("http://127.0.0.1:9/hook")).json()
    r = c.put(f"/fhir/Subscription/{body['id']}", json={**body, "status": "error"})
    assert r.status_code == 422
    r = c.put(f"/fhir/Subscription/{body['id']}", json={**body, "status": "off"})
    assert r.status_code == 200 and r.json()["status"] == "off"
    assert state(app, body["id"])["status"] == "off"


def test_deleting_a_subscription_turns_it_off(app: FastAPI, c: TestClient) -> None:
    body = c.post("/fhir/Subscription", json=subscription("http://127.0.0.1:9/hook")).json()
    assert c.delete(f"/fhir/Subscription/{body['id']}").status_code in (200, 204)
    assert state(app, body["id"])["status"] == "off"


def test_a_bound_party_cannot_provision_for_another(app_factory: Callable[..., FastAPI]) -> None:
    from tests.smart_helpers import ADMIN, backend_token, bearer

    with TestClient(app_factory(auth="on", admin_token=ADMIN, **FAST)) as client:
        clinic = bearer(backend_token(client, "system/*.cruds", org="clinic-a", role="clinic"))
        body = subscription("http://127.0.0.1:9/hook")
        body["extension"] = [
            {
                "url": spec.OWNER_EXT,
                "extension": [
                    {"url": "role", "valueCode": "insurer"},
                    {"url": "organization", "valueReference": {"reference": "Organization/i"}},
                ],
            }
        ]
        r = client.post("/fhir/Subscription", json=body, headers=clinic)
        assert r.status_code == 422, r.text
        assert "trusted" in r.text


def test_the_owner_is_the_writing_party(app_factory: Callable[..., FastAPI]) -> None:
    from tests.smart_helpers import ADMIN, backend_token, bearer

    app = app_factory(auth="on", admin_token=ADMIN, **FAST)
    with TestClient(app) as client:
        clinic = bearer(backend_token(client, "system/*.cruds", org="clinic-a", role="clinic"))
        r = client.post(
            "/fhir/Subscription", json=subscription("http://127.0.0.1:9/hook"), headers=clinic
        )
        assert r.status_code == 201, r.text
        owner = state(app, r.json()["id"])["owner"]
        assert (owner["role"], owner["organization"]) == ("clinic", "clinic-a")
