"""Start-up notices that stored index values predate the search registry (``consilium reindex``)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from resources.registry import search_parameters
from server.search import execute, registry_state
from server.search.keys import bucket_of
from server.search.reindex import reindex_all


def _stale(app: FastAPI) -> None:
    app.state.consilium.store.db[registry_state.STATE].replace_one(
        {"_id": registry_state.KEY},
        {
            "_id": registry_state.KEY,
            "fingerprint": "from-an-older-registry",
            "format": registry_state.INDEX_FORMAT,
        },
        upsert=True,
    )


def test_a_new_database_records_the_current_registry(app: FastAPI) -> None:
    store = app.state.consilium.store
    assert registry_state.recorded(store) is None
    assert registry_state.check(store)
    assert registry_state.recorded(store) == registry_state.fingerprint()


def test_a_changed_registry_is_reported_with_the_command_to_run(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    _stale(app)
    with caplog.at_level(logging.WARNING, logger=registry_state.__name__):
        assert not registry_state.check(app.state.consilium.store)
    assert "consilium reindex" in caplog.text
    assert registry_state.recorded(app.state.consilium.store) == "from-an-older-registry"


def test_an_older_layout_is_reindexed_at_start_up(
    app: FastAPI, client: TestClient, patient_body: dict[str, object]
) -> None:
    """Format 2 stored no ``ks`` keys: searches would find nothing, so start-up reindexes."""
    store = app.state.consilium.store
    rid = client.post("/fhir/Patient", json=patient_body).json()["id"]
    store.resources("Patient").update_many({}, {"$unset": {"ks": ""}})
    store.db[registry_state.STATE].replace_one(
        {"_id": registry_state.KEY}, {"_id": registry_state.KEY, "fingerprint": "x"}, upsert=True
    )
    assert registry_state.check(store)
    _assert_rekeyed(client, store, rid, patient_body["name"][0]["family"])  # type: ignore[index]


def test_a_full_reindex_records_the_registry(
    app: FastAPI, client: TestClient, patient_body: dict[str, object]
) -> None:
    client.post("/fhir/Patient", json=patient_body)
    _stale(app)
    reindex_all(app.state.consilium.store)
    assert registry_state.check(app.state.consilium.store)


def test_a_partial_reindex_leaves_the_registry_stale(
    app: FastAPI, client: TestClient, patient_body: dict[str, object]
) -> None:
    client.post("/fhir/Patient", json=patient_body)
    _stale(app)
    reindex_all(app.state.consilium.store, ["Patient"])
    assert not registry_state.check(app.state.consilium.store)


def test_fingerprint_follows_a_changed_expression(monkeypatch: pytest.MonkeyPatch) -> None:
    before = registry_state.fingerprint()
    assert registry_state.fingerprint() == before
    changed = {t: dict(ps) for t, ps in search_parameters().items()}
    family = changed["Patient"]["family"]
    changed["Patient"]["family"] = dataclasses.replace(family, expression="Patient.name.given")
    monkeypatch.setattr(registry_state, "search_parameters", lambda: changed)
    assert registry_state.fingerprint() != before


def test_a_format_3_database_gets_its_window_keys_at_start_up(
    app: FastAPI, client: TestClient, patient_body: dict[str, object]
) -> None:
    """Format 3 stored no ``kw``/``kb``: windowed searches would find nothing."""
    store = app.state.consilium.store
    rid = client.post("/fhir/Patient", json=patient_body).json()["id"]
    store.resources("Patient").update_many({}, {"$unset": {"kw": "", "kb": ""}})
    store.db[registry_state.STATE].replace_one(
        {"_id": registry_state.KEY},
        {"_id": registry_state.KEY, "fingerprint": "x", "format": 3},
        upsert=True,
    )
    assert registry_state.check(store)
    _assert_rekeyed(client, store, rid, patient_body["name"][0]["family"])  # type: ignore[index]


def _assert_rekeyed(client: TestClient, store: Any, rid: str, family: str) -> None:
    """The stored keys are the current layout's, and searches (windowed or not) find it."""
    stored = store.resources("Patient").find_one({"_id": rid})
    key = f"family\x1e{family.lower()}"
    assert key in stored["ks"]
    assert stored["kb"] == bucket_of(rid) and f"{key}\x1d{stored['kb']}" in stored["kw"]
    for densities in ({}, {("Patient", key): 1e-9}):  # windows, then the plain query
        execute._densities.clear()
        execute._densities.update(densities)
        found = client.get(f"/fhir/Patient?family={family}").json()
        assert [e["resource"]["id"] for e in found["entry"]] == [rid]
    assert registry_state.recorded(store) == registry_state.fingerprint()
