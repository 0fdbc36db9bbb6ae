"""Round trips of the write batch (server/repository.py ``write_batch``, ``current``,
``prefetch``): counted on the wire with a pymongo CommandListener on the app's client."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo import MongoClient, monitoring

import server.database
from server.app import create_app
from server.repository import Repository


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.on = False
        self.seen: Counter[tuple[str, str]] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on:
            self.seen[(event.command_name, str(event.command.get(event.command_name)))] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def recorded(settings_factory: Any, mongo_uri: str) -> Iterator[tuple[FastAPI, Commands]]:
    commands = Commands()
    real = server.database.MongoClient  # type: ignore[attr-defined]

    def with_listener(*args: Any, **kwargs: Any) -> Any:
        return real(*args, event_listeners=[commands], **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(server.database, "MongoClient", with_listener)
        app = create_app(settings_factory())
    yield app, commands
    cleanup: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    cleanup.drop_database(app.state.consilium.settings.db_name)
    cleanup.close()
    app.state.consilium.store.close()


def _put_bundle(ids: list[str], gender: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": i, "gender": gender},
                "request": {"method": "PUT", "url": f"Patient/{i}"},
            }
            for i in ids
        ],
    }


def test_a_bundle_of_puts_writes_each_collection_once(recorded: tuple[FastAPI, Commands]) -> None:
    app, commands = recorded
    ids = [f"b{k}" for k in range(8)]
    with TestClient(app) as http:
        assert http.post("/fhir", json=_put_bundle(ids, "female")).status_code == 200
        commands.on = True
        r = http.post("/fhir", json=_put_bundle(ids, "male"))
        commands.on = False
        assert http.get("/fhir/Patient/b3").json()["meta"]["versionId"] == "2"
    assert r.status_code == 200
    assert all(e["response"]["status"].startswith("200") for e in r.json()["entry"])
    assert commands.seen[("update", "Patient")] == 1  # one bulk_write of 8 replacements
    assert commands.seen[("insert", "_history")] == 1


def test_a_bundle_of_puts_reads_the_current_versions_once(
    recorded: tuple[FastAPI, Commands],
) -> None:
    app, commands = recorded
    ids = [f"f{k}" for k in range(8)]
    with TestClient(app) as http:
        assert http.post("/fhir", json=_put_bundle(ids, "female")).status_code == 200
        commands.on = True
        r = http.post("/fhir", json=_put_bundle(ids, "male"))
        commands.on = False
        assert [http.get(f"/fhir/Patient/{i}").json()["gender"] for i in ids] == ["male"] * 8
    assert r.status_code == 200
    assert commands.seen[("find", "Patient")] == 1  # the prefetch, not one find per entry


def test_a_bundle_of_put_creates_inserts_once(recorded: tuple[FastAPI, Commands]) -> None:
    app, commands = recorded
    with TestClient(app) as http:
        commands.on = True
        r = http.post("/fhir", json=_put_bundle([f"c{k}" for k in range(8)], "female"))
        commands.on = False
    assert r.status_code == 200
    assert commands.seen[("insert", "Patient")] == 1
    assert commands.seen[("insert", "_history")] == 1


def test_prefetch_reads_a_batch_of_currents_once(recorded: tuple[FastAPI, Commands]) -> None:
    app, commands = recorded
    state = app.state.consilium
    repo = Repository(state.store, state.hooks)
    for k in range(3):
        repo.update("Patient", f"p{k}", {"resourceType": "Patient", "id": f"p{k}"})

    def work(r: Repository) -> list[int | None]:
        r.prefetch("Patient", ["p0", "p1", "p2", "nobody"])
        found = [r.current("Patient", i) for i in ("p0", "p1", "p2", "nobody")]
        return [s.version_id if s else None for s in found]

    commands.on = True
    versions = repo.transaction(work)
    commands.on = False
    assert versions == [1, 1, 1, None]
    assert commands.seen[("find", "Patient")] == 1


def test_current_sees_the_batchs_own_writes_without_flushing(
    recorded: tuple[FastAPI, Commands],
) -> None:
    app, commands = recorded
    state = app.state.consilium
    repo = Repository(state.store, state.hooks)
    repo.update("Patient", "old", {"resourceType": "Patient", "id": "old"})

    def work(r: Repository) -> tuple[Any, ...]:
        with r.write_batch():
            r.update("Patient", "new", {"resourceType": "Patient", "id": "new"})
            r.update("Patient", "old", {"resourceType": "Patient", "id": "old", "gender": "male"})
            new, old = r.current("Patient", "new"), r.current("Patient", "old")
            pending = sorted(d["_id"] for d in r.pending("Patient"))
            writes = commands.seen[("insert", "Patient")] + commands.seen[("update", "Patient")]
        return new.version_id if new else None, old.version_id if old else None, pending, writes

    commands.on = True
    new_vid, old_vid, pending, writes_inside = repo.transaction(work)
    commands.on = False
    assert (new_vid, old_vid) == (1, 2)
    assert pending == ["new", "old"]  # the replacement is pending too, for write hooks
    assert writes_inside == 0  # nothing flushed before the batch ended
    assert repo.read("Patient", "old").resource["gender"] == "male"  # type: ignore[index]


def test_a_retried_transaction_does_not_trust_the_cache(recorded: tuple[FastAPI, Commands]) -> None:
    app, _ = recorded
    state = app.state.consilium
    repo = Repository(state.store, state.hooks)
    attempts: list[int | None] = []

    def work(r: Repository) -> None:
        stored = r.current("Patient", "x")
        attempts.append(stored.version_id if stored else None)
        if len(attempts) == 1:
            r.update("Patient", "x", {"resourceType": "Patient", "id": "x"})
            raise _Retry

    with pytest.raises(_Retry):
        repo.transaction(work)
    repo.transaction(work)
    assert attempts == [None, None]  # the aborted attempt's write is not remembered


class _Retry(Exception):
    pass


def test_a_hook_lookup_sees_a_pending_new_version(recorded: tuple[FastAPI, Commands]) -> None:
    """``find_visible(flush=False)`` (the policy's facts) has always seen new versions of
    existing ids: a replacement waiting in the batch is flushed for it."""
    app, _ = recorded
    state = app.state.consilium
    repo = Repository(state.store, state.hooks)
    repo.update("Patient", "x", {"resourceType": "Patient", "id": "x", "gender": "female"})

    def work(r: Repository) -> list[Any]:
        with r.write_batch():
            r.update("Patient", "x", {"resourceType": "Patient", "id": "x", "gender": "male"})
            found = r.find_visible("Patient", {"_id": "x"}, flush=False)
            return [d["resource"]["gender"] for d in found]

    assert repo.transaction(work) == ["male"]
