"""The PRE_WRITE contract (server/hooks.py): a resource a hook changes is validated again, and
hooks see a transaction Bundle's pending inserts through ``Repository.pending``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.hooks import HookPoint, WriteEvent


@pytest.fixture
def hooked(app: FastAPI) -> Iterator[tuple[TestClient, FastAPI]]:
    with TestClient(app) as c:
        yield c, app


def _patient(family: str = "Okafor") -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family}]}


def _register(app: FastAPI, hook: Any) -> None:
    app.state.consilium.hooks.register(HookPoint.PRE_WRITE, hook)


def test_a_resource_a_hook_breaks_in_place_is_refused(hooked: tuple[TestClient, FastAPI]) -> None:
    client, app = hooked

    def break_gender(event: WriteEvent) -> None:
        if event.resource is not None:
            event.resource["gender"] = "banana"  # not in the administrative-gender value set

    _register(app, break_gender)
    r = client.post("/fhir/Patient", json=_patient())
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient").json().get("total", 0) == 0


def test_a_resource_a_hook_replaces_with_an_invalid_one_is_refused(
    hooked: tuple[TestClient, FastAPI],
) -> None:
    client, app = hooked

    def replace(event: WriteEvent) -> None:
        if event.resource is not None:
            event.resource = {**event.resource, "birthDate": "not a date"}

    _register(app, replace)
    assert client.post("/fhir/Patient", json=_patient()).status_code == 400
    assert client.get("/fhir/Patient").json().get("total", 0) == 0


def test_a_valid_change_by_a_hook_is_stored(hooked: tuple[TestClient, FastAPI]) -> None:
    client, app = hooked

    def tag(event: WriteEvent) -> None:
        if event.resource is not None:
            event.resource["active"] = True

    _register(app, tag)
    r = client.post("/fhir/Patient", json=_patient())
    assert r.status_code == 201, r.text
    stored = client.get(f"/fhir/Patient/{r.json()['id']}").json()
    assert stored["active"] is True


def test_hooks_see_a_transactions_pending_inserts(hooked: tuple[TestClient, FastAPI]) -> None:
    client, app = hooked
    seen: list[list[str]] = []

    def look(event: WriteEvent) -> None:
        seen.append(sorted(d["_id"] for d in event.repository.pending("Patient")))

    _register(app, look)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient("A"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": _patient("B"), "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    first, second = seen
    assert first == [] and len(second) == 1
