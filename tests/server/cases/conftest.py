"""One app with authorization on and the demo network per test module; every test builds its
own members and cases on it (unique ids), so tests stay independent while the suite stays fast.
Tests whose figures depend on the whole database (caseloads, the queue) build a fresh app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.demo_copy import seed_demo
from tests.server.cases.kit import Kit, make_parties, seeded_kit
from tests.smart_helpers import ADMIN


def _kit(app: FastAPI) -> Iterator[Kit]:
    seed_demo(app.state.consilium)
    with TestClient(app, base_url="http://testserver") as client:
        yield Kit(client, make_parties(client))


@pytest.fixture(scope="module")
def kit(module_settings: Callable[..., Any], mongo_uri: str) -> Iterator[Kit]:
    yield from seeded_kit(module_settings("cases", auth="on", admin_token=ADMIN), mongo_uri)


@pytest.fixture
def fresh_kit(app_factory: Callable[..., FastAPI]) -> Iterator[Kit]:
    yield from _kit(app_factory(auth="on", admin_token=ADMIN))
