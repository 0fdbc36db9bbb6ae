"""Fixtures for the operations tests: apps with the demo network (seed/data) loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.demo_copy import seed_demo
from tests.server.cases.kit import Kit, seeded_kit
from tests.smart_helpers import ADMIN

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _client(app: FastAPI) -> Iterator[TestClient]:
    seed_demo(app.state.consilium)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def demo(app: FastAPI) -> Iterator[TestClient]:
    """A client on an app whose database holds the demo network."""
    yield from _client(app)


@pytest.fixture
def loose_demo(app_factory: Callable[..., FastAPI]) -> Iterator[TestClient]:
    """The demo network without referential integrity, so links may dangle or be deleted."""
    yield from _client(app_factory(enforce_referential_integrity=False))


def keys(bundle: dict[str, Any], mode: str | None = None) -> list[str]:
    """``Type/id`` of the Bundle's resources (of one search mode), in order."""
    out = []
    for e in bundle.get("entry", []):
        if mode is not None and e.get("search", {}).get("mode") != mode:
            continue
        r = e["resource"]
        if r["resourceType"] != "OperationOutcome":
            out.append(f"{r['resourceType']}/{r['id']}")
    return out


def outcome(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    for e in bundle.get("entry", []):
        if e["resource"]["resourceType"] == "OperationOutcome":
            issues += e["resource"]["issue"]
    return issues


def read(client: TestClient, key: str) -> dict[str, Any]:
    r = client.get(f"/fhir/{key}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def put(client: TestClient, resource: dict[str, Any]) -> None:
    r = client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON
    )
    assert r.status_code in (200, 201), r.text


def parameters(*params: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Parameters"}
    if params:
        body["parameter"] = list(params)
    return body


@pytest.fixture(scope="module")
def kit(module_settings: Callable[..., Any], mongo_uri: str) -> Iterator[Kit]:
    """Authorization on, the core demo, a bound client per party (tests/server/cases/kit.py)."""
    yield from seeded_kit(module_settings("ops", auth="on", admin_token=ADMIN), mongo_uri)
