"""One app with authorization on and the demo network per test module; every test builds its
own members and cases on it (unique ids), so tests stay independent while the suite stays fast.
Tests whose figures depend on the whole database (caseloads, the queue) build a fresh app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo import MongoClient

from seed.loader import seed_all
from server.app import create_app
from tests.server.cases.kit import Kit, make_parties
from tests.smart_helpers import ADMIN


def _kit(app: FastAPI) -> Iterator[Kit]:
    seed_all(app.state.consilium, demo=True, network=False)
    with TestClient(app, base_url="http://testserver") as client:
        yield Kit(client, make_parties(client))


@pytest.fixture(scope="module")
def kit(module_settings: Callable[..., Any], mongo_uri: str) -> Iterator[Kit]:
    app = create_app(module_settings("cases", auth="on", admin_token=ADMIN))
    yield from _kit(app)
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(app.state.consilium.settings.db_name)
    cleanup.close()
    app.state.consilium.store.close()


@pytest.fixture
def fresh_kit(app_factory: Callable[..., FastAPI]) -> Iterator[Kit]:
    yield from _kit(app_factory(auth="on", admin_token=ADMIN))
