"""Shared fixtures: one real embedded SecantusDB per test session, reached over the wire.

Each test module gets its own database name (so state never leaks between modules) but the
same database server process (so the suite stays fast).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo import MongoClient

from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = EmbeddedDatabase(Path(tmp_path_factory.mktemp("secantus")) / "db")
    db.start()
    try:
        yield db.uri
    finally:
        db.stop()


def _db_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^A-Za-z0-9]", "_", request.node.name)[:30]
    return f"t_{base}_{uuid.uuid4().hex[:8]}"


def _settings(
    mongo_uri: str, db_name: str, data_dir: Path, overrides: dict[str, object]
) -> Settings:
    values: dict[str, object] = {
        "mongodb_uri": mongo_uri,
        "db_name": db_name,
        "data_dir": data_dir,
        "auth": "off",
        "audit": "off",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings_factory(mongo_uri: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Build Settings for a fresh database; keyword overrides go straight to Settings."""

    def make(**overrides: object) -> Settings:
        return _settings(mongo_uri, _db_name(request), tmp_path / "data", overrides)

    return make


@pytest.fixture(scope="module")
def module_settings(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Settings for a database that one module's read-only tests share (its ``world``); the
    module drops the database when done. ``prefix`` names it; overrides go to Settings."""

    def make(prefix: str, **overrides: object) -> Settings:
        name = f"t_{prefix}_{uuid.uuid4().hex[:8]}"
        return _settings(mongo_uri, name, tmp_path_factory.mktemp(prefix) / "data", overrides)

    return make


@pytest.fixture
def app_factory(settings_factory, mongo_uri: str):  # type: ignore[no-untyped-def]
    apps: list[FastAPI] = []

    def make(**overrides: object) -> FastAPI:
        app = create_app(settings_factory(**overrides))
        apps.append(app)
        return app

    yield make
    cleanup: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    for app in apps:
        cleanup.drop_database(app.state.consilium.settings.db_name)
        app.state.consilium.store.close()
    cleanup.close()


@pytest.fixture
def app(app_factory) -> FastAPI:  # type: ignore[no-untyped-def]
    return app_factory()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


FHIR = "application/fhir+json"


@pytest.fixture
def patient_body() -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": "123-45-6789"}],
        "name": [{"family": "Okafor", "given": ["Adaeze"]}],
        "gender": "female",
        "birthDate": "1971-04-12",
    }
