"""The read cache inside one process: hits, invalidation on every kind of write, policy per
request, bounds, and the cache switched off (server/read_cache.py, docs/workers.md)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from server.cli import build_parser
from server.config import Settings
from server.read_cache import CURRENT, ReadCache
from server.storage import Stored
from tests.server.conftest import ready

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PATIENT = {"resourceType": "Patient", "name": [{"family": "Cached"}], "gender": "female"}


def stored(rid: str, vid: int = 1, family: str = "X") -> Stored:
    resource = {"resourceType": "Patient", "id": rid, "name": [{"family": family}]}
    return Stored("Patient", rid, vid, datetime.now(UTC), False, resource)


def create(c: TestClient, body: dict[str, Any] = PATIENT) -> dict[str, Any]:
    r = c.post(f"/fhir/{body['resourceType']}", json=body, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------- pure LRU
def test_lru_drops_the_least_recently_used_entry_by_count() -> None:
    cache = ReadCache(max_entries=2, max_bytes=10**6)
    for rid in ("a", "b"):
        cache.put(("Patient", rid, CURRENT), stored(rid), cache.begin())
    assert cache.get(("Patient", "a", CURRENT)) is not None  # a is now the most recent
    cache.put(("Patient", "c", CURRENT), stored("c"), cache.begin())
    assert cache.get(("Patient", "b", CURRENT)) is None
    assert len(cache) == 2


def test_lru_stays_under_its_byte_bound() -> None:
    cache = ReadCache(max_entries=1000, max_bytes=2000)
    for i in range(50):
        cache.put(("Patient", str(i), CURRENT), stored(str(i), family="F" * 100), cache.begin())
    assert 0 < cache.bytes <= 2000
    assert len(cache) < 50


def test_an_entry_larger_than_the_byte_bound_is_not_kept() -> None:
    cache = ReadCache(max_entries=10, max_bytes=1024)
    cache.put(("Patient", "big", CURRENT), stored("big", family="F" * 5000), cache.begin())
    assert len(cache) == 0


def test_a_fill_that_raced_an_invalidation_is_dropped() -> None:
    cache = ReadCache(max_entries=10, max_bytes=10**6)
    token = cache.begin()  # a reader starts reading version 1 from the database ...
    cache.invalidate("Patient", "a")  # ... a writer commits version 2 and invalidates ...
    cache.put(("Patient", "a", CURRENT), stored("a", 1), token)  # ... the old fill arrives
    assert cache.get(("Patient", "a", CURRENT)) is None


def test_a_fill_that_raced_a_clear_is_dropped() -> None:
    cache = ReadCache(max_entries=10, max_bytes=10**6)
    token = cache.begin()
    cache.clear()
    cache.put(("Patient", "a", CURRENT), stored("a"), token)
    assert len(cache) == 0


def test_current_versions_are_not_served_while_the_watcher_is_unhealthy() -> None:
    cache = ReadCache(max_entries=10, max_bytes=10**6)
    cache.put(("Patient", "a", CURRENT), stored("a"), cache.begin())
    cache.put(("Patient", "a", 1), stored("a"), cache.begin())
    cache.usable = lambda: False
    assert cache.get(("Patient", "a", CURRENT)) is None
    assert cache.get(("Patient", "a", 1)) is not None  # versions are immutable


def test_a_hit_is_a_copy_the_caller_may_change() -> None:
    cache = ReadCache(max_entries=10, max_bytes=10**6)
    cache.put(("Patient", "a", CURRENT), stored("a"), cache.begin())
    hit = cache.get(("Patient", "a", CURRENT))
    assert hit is not None and hit.resource is not None
    hit.resource["name"] = []
    again = cache.get(("Patient", "a", CURRENT))
    assert again is not None and again.resource is not None
    assert again.resource["name"] == [{"family": "X"}]


# ------------------------------------------------------------------------------- over HTTP
def test_a_second_read_is_a_cache_hit(cached: tuple[TestClient, FastAPI]) -> None:
    c, app = cached
    p = create(c)
    cache = app.state.consilium.read_cache
    assert c.get(f"/fhir/Patient/{p['id']}").json() == p
    hits = cache.hits
    assert c.get(f"/fhir/Patient/{p['id']}").json() == p
    assert cache.hits == hits + 1


def own_event_seen(app: FastAPI, resource_type: str, rid: str, vid: int) -> None:
    """Wait until this process's change-stream watcher has processed the write's event."""
    watcher = app.state.consilium.read_cache_watcher
    deadline = time.monotonic() + 10
    while (watcher.seen(resource_type, rid) or 0) < vid:
        assert time.monotonic() < deadline, f"no change event for {resource_type}/{rid}/{vid}"
        time.sleep(0.02)


def test_the_change_event_of_ones_own_write_keeps_the_read_filled_after_it(
    cached: tuple[TestClient, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, app = cached
    watcher = app.state.consilium.read_cache_watcher
    held = threading.Event()
    apply = watcher._apply

    def late(change: dict[str, Any]) -> None:  # the event arrives after the next read
        held.wait(10)
        apply(change)

    monkeypatch.setattr(watcher, "_apply", late)
    p = create(c)
    cache = app.state.consilium.read_cache
    assert c.get(f"/fhir/Patient/{p['id']}").json() == p  # filled before the event came
    held.set()
    own_event_seen(app, "Patient", p["id"], 1)
    hits = cache.hits
    assert c.get(f"/fhir/Patient/{p['id']}").json() == p
    assert cache.hits == hits + 1


def test_an_event_of_another_version_than_ones_own_still_invalidates(
    cached: tuple[TestClient, FastAPI],
) -> None:
    c, app = cached
    p = create(c)
    watcher = app.state.consilium.read_cache_watcher
    own_event_seen(app, "Patient", p["id"], 1)
    assert c.get(f"/fhir/Patient/{p['id']}").status_code == 200  # filled
    watcher.expect_own("Patient", p["id"], 5)  # as if this process had written version 5
    # ... but another process wrote version 2: the watcher must drop the cached version 1
    other = {**p, "meta": {**p["meta"], "versionId": "2"}, "gender": "male"}
    store = app.state.consilium.store
    doc = store.resources("Patient").find_one({"_id": p["id"]})
    store.resources("Patient").replace_one({"_id": p["id"]}, {**doc, "vid": 2, "resource": other})
    own_event_seen(app, "Patient", p["id"], 2)
    assert c.get(f"/fhir/Patient/{p['id']}").json()["gender"] == "male"


@pytest.mark.parametrize("how", ["put", "patch", "delete", "conditional-put", "transaction"])
def test_every_write_invalidates_before_its_response(
    cached: tuple[TestClient, FastAPI], how: str
) -> None:
    c, _ = cached
    p = create(c)
    url = f"/fhir/Patient/{p['id']}"
    assert c.get(url).status_code == 200
    assert c.get(url).status_code == 200  # cached now
    changed = {**p, "gender": "male"}
    changed.pop("meta")
    if how == "put":
        r = c.put(url, json=changed, headers=FHIR_JSON)
    elif how == "patch":
        ops = [{"op": "replace", "path": "/gender", "value": "male"}]
        r = c.patch(url, json=ops, headers={"Content-Type": "application/json-patch+json"})
    elif how == "delete":
        r = c.delete(url)
    elif how == "conditional-put":
        r = c.put(f"{url}", json=changed, headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    else:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": changed, "request": {"method": "PUT", "url": url[6:]}}],
        }
        r = c.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code in (200, 204), r.text
    after = c.get(url)
    if how == "delete":
        assert after.status_code == 410
    else:
        assert after.json()["gender"] == "male"
        assert after.headers["etag"] == 'W/"2"'


def test_vread_is_served_from_the_cache_and_stays_right(
    cached: tuple[TestClient, FastAPI],
) -> None:
    c, app = cached
    p = create(c)
    url = f"/fhir/Patient/{p['id']}/_history/1"
    first = c.get(url).json()
    hits = app.state.consilium.read_cache.hits
    assert c.get(url).json() == first
    assert app.state.consilium.read_cache.hits == hits + 1
    assert c.get(f"/fhir/Patient/{p['id']}/_history/7").status_code == 404


def test_unknown_ids_are_not_cached_as_absent(cached: tuple[TestClient, FastAPI]) -> None:
    c, _ = cached
    assert c.get("/fhir/Patient/not-yet").status_code == 404
    r = c.put("/fhir/Patient/not-yet", json={**PATIENT, "id": "not-yet"}, headers=FHIR_JSON)
    assert r.status_code == 201
    assert c.get("/fhir/Patient/not-yet").status_code == 200


def test_cache_off_leaves_no_cache(app_factory: Any) -> None:
    app = app_factory(read_cache=0)
    with TestClient(app) as c:
        p = create(c)
        assert c.get(f"/fhir/Patient/{p['id']}").status_code == 200
    assert app.state.consilium.read_cache is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"read_cache": -1},
        {"read_cache_bytes": 10},
        {"read_cache_lease_seconds": 0.01},
        {"read_cache_lease_seconds": 600},
    ],
)
def test_bad_cache_settings_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", "-2", "65", "two"])
def test_serve_refuses_a_bad_worker_count(value: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", value])


def test_serve_takes_a_worker_count() -> None:
    assert build_parser().parse_args(["serve", "--workers", "4"]).workers == 4
    assert build_parser().parse_args(["serve"]).workers == 1


def test_a_cached_resource_is_still_hidden_from_a_party_that_may_not_see_it(
    app_factory: Any,
) -> None:
    from tests.smart_helpers import ADMIN, backend_token, bearer, load_parties

    app = app_factory(auth="on", admin_token=ADMIN, read_cache=100, read_cache_lease_seconds=0.5)
    with TestClient(app, base_url="http://testserver") as c:
        ready(app)
        load_parties(c)
        for _ in range(2):  # the admin's reads fill the cache
            assert c.get("/fhir/Condition/cond-b", headers=bearer(ADMIN)).status_code == 200
        clinic_a = backend_token(c, "system/*.rs", org="clinic-a", role="clinic")
        hits = app.state.consilium.read_cache.hits
        assert c.get("/fhir/Condition/cond-b", headers=bearer(clinic_a)).status_code == 404
        assert c.get("/fhir/Condition/cond-a", headers=bearer(clinic_a)).status_code == 200
        assert app.state.consilium.read_cache.hits > hits  # the refusal came from a cache hit
