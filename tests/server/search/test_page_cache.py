"""First search pages reused while nothing they searched was written (server/search/page_cache.py):
hits, every kind of write making them a miss, chains, parties, paging and Bundle entries."""

from __future__ import annotations

import time
from typing import Any

from bson.codec_options import DEFAULT_CODEC_OPTIONS
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.read_cache import ReadCache
from server.search.page_cache import FirstPage, PageCache
from tests.server.conftest import ready
from tests.smart_helpers import ADMIN, backend_token, bearer, load_parties

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def pages(app: FastAPI) -> PageCache:
    cache = app.state.consilium.page_cache
    assert cache is not None
    return cache  # type: ignore[no-any-return]


def create(c: TestClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = c.post(f"/fhir/{body['resourceType']}", json=body, headers={**FHIR_JSON, **headers})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def patient(family: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family}], **more}


def ids(c: TestClient, query: str, **headers: str) -> list[str]:
    r = c.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [
        e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"
    ]


def served_from_the_cache(c: TestClient, app: FastAPI, query: str) -> dict[str, Any]:
    """The search's bundle once a repeat of it was a cache hit. This process's change-stream
    watcher also invalidates for the test's own writes, a moment after they were acknowledged,
    and a page filled before that is (rightly) dropped: so repeat until the watcher caught up."""
    deadline = time.monotonic() + 15
    while True:
        assert c.get(f"/fhir/{query}").status_code == 200
        hits = pages(app).hits
        r = c.get(f"/fhir/{query}")
        assert r.status_code == 200, r.text
        if pages(app).hits == hits + 1:
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"{query} was never served from the cache"
        time.sleep(0.1)


def first(rows: int = 1) -> FirstPage:
    return FirstPage(
        tuple((0, [f"id{i}"], f"id{i}") for i in range(rows)), rows, None, time.monotonic()
    )


# ------------------------------------------------------------------------------------ pure
def test_an_entry_is_served_until_a_resource_of_its_type_is_invalidated() -> None:
    source = ReadCache(10, 10**6)
    cache = PageCache(source, 10)
    stamp = cache.begin(["Patient"])
    assert stamp is not None
    cache.put(b"k", ["Patient"], first(), stamp)
    assert cache.get(b"k") is not None
    source.invalidate("Patient", "anyone")
    assert cache.get(b"k") is None


def test_a_write_of_another_type_keeps_the_entry() -> None:
    source = ReadCache(10, 10**6)
    cache = PageCache(source, 10)
    stamp = cache.begin(["Patient"])
    assert stamp is not None
    cache.put(b"k", ["Patient"], first(), stamp)
    source.invalidate("Observation", "o1")
    assert cache.get(b"k") is not None


def test_a_fill_that_raced_a_write_is_dropped() -> None:
    source = ReadCache(10, 10**6)
    cache = PageCache(source, 10)
    stamp = cache.begin(["Patient"])  # the search starts reading ...
    assert stamp is not None
    source.invalidate("Patient", "p1")  # ... a write commits ...
    cache.put(b"k", ["Patient"], first(), stamp)  # ... the result read before it arrives
    assert cache.get(b"k") is None


def test_a_clear_drops_every_entry() -> None:
    source = ReadCache(10, 10**6)
    cache = PageCache(source, 10)
    stamp = cache.begin(["Patient"])
    assert stamp is not None
    cache.put(b"k", ["Patient"], first(), stamp)
    source.clear()  # the watcher reopened its stream: it may have missed events
    assert cache.get(b"k") is None


def test_an_entry_expires_after_its_age() -> None:
    source = ReadCache(10, 10**6)
    cache = PageCache(source, 10, max_age=0.05)
    stamp = cache.begin(["Patient"])
    assert stamp is not None
    cache.put(b"k", ["Patient"], first(), stamp)
    time.sleep(0.1)
    assert cache.get(b"k") is None


def test_nothing_is_served_or_filled_while_the_watcher_is_unhealthy() -> None:
    source = ReadCache(10, 10**6)
    cache = PageCache(source, 10)
    stamp = cache.begin(["Patient"])
    assert stamp is not None
    cache.put(b"k", ["Patient"], first(), stamp)
    source.usable = lambda: False
    assert cache.get(b"k") is None
    assert cache.begin(["Patient"]) is None


def test_the_least_recently_used_entry_goes_first() -> None:
    source = ReadCache(10, 10**6)
    cache = PageCache(source, 2)
    for k in (b"a", b"b"):
        stamp = cache.begin(["Patient"])
        assert stamp is not None
        cache.put(k, ["Patient"], first(), stamp)
    assert cache.get(b"a") is not None
    stamp = cache.begin(["Patient"])
    assert stamp is not None
    cache.put(b"c", ["Patient"], first(), stamp)
    assert cache.get(b"b") is None and cache.get(b"a") is not None and len(cache) == 2


def test_keys_are_typed_so_a_string_never_stands_for_a_number() -> None:
    assert PageCache.key([{"a": "1"}], DEFAULT_CODEC_OPTIONS) != PageCache.key(
        [{"a": 1}], DEFAULT_CODEC_OPTIONS
    )


# ------------------------------------------------------------------------------- over HTTP
def test_a_repeated_search_is_served_from_the_cache(cached: tuple[TestClient, FastAPI]) -> None:
    c, app = cached
    made = [create(c, patient("Repeat"))["id"] for _ in range(3)]
    bundle = served_from_the_cache(c, app, "Patient?family=Repeat")
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == sorted(made)


def test_a_new_match_shows_at_once(cached: tuple[TestClient, FastAPI]) -> None:
    c, _ = cached
    create(c, patient("Fresh"))
    assert len(ids(c, "Patient?family=Fresh")) == 1
    assert len(ids(c, "Patient?family=Fresh")) == 1  # now cached
    newer = create(c, patient("Fresh"))["id"]
    assert newer in ids(c, "Patient?family=Fresh")


def test_an_update_that_no_longer_matches_drops_out_at_once(
    cached: tuple[TestClient, FastAPI],
) -> None:
    c, _ = cached
    p = create(c, patient("Before"))
    for _ in range(2):
        assert ids(c, "Patient?family=Before") == [p["id"]]
    p["name"] = [{"family": "After"}]
    p.pop("meta")
    assert c.put(f"/fhir/Patient/{p['id']}", json=p, headers=FHIR_JSON).status_code == 200
    assert ids(c, "Patient?family=Before") == []


def test_a_deleted_match_drops_out_at_once(cached: tuple[TestClient, FastAPI]) -> None:
    c, _ = cached
    rid = create(c, patient("Gone"))["id"]
    for _ in range(2):
        assert ids(c, "Patient?family=Gone") == [rid]
    assert c.delete(f"/fhir/Patient/{rid}").status_code == 204
    assert ids(c, "Patient?family=Gone") == []


def test_a_write_through_a_transaction_drops_the_entry(
    cached: tuple[TestClient, FastAPI],
) -> None:
    c, _ = cached
    create(c, patient("Batch"))
    for _ in range(2):
        assert len(ids(c, "Patient?family=Batch")) == 1
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient("Batch"), "request": {"method": "POST", "url": "Patient"}}],
    }
    assert c.post("/fhir", json=bundle, headers=FHIR_JSON).status_code == 200
    assert len(ids(c, "Patient?family=Batch")) == 2


def test_a_chained_search_follows_a_write_on_the_chained_type(
    cached: tuple[TestClient, FastAPI],
) -> None:
    c, _ = cached
    p = create(c, patient("Chained"))
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{p['id']}"},
    }
    oid = create(c, obs)["id"]
    for _ in range(2):
        assert ids(c, "Observation?subject:Patient.family=Chained") == [oid]
    p["name"] = [{"family": "Renamed"}]
    p.pop("meta")
    assert c.put(f"/fhir/Patient/{p['id']}", json=p, headers=FHIR_JSON).status_code == 200
    assert ids(c, "Observation?subject:Patient.family=Chained") == []
    assert ids(c, "Observation?subject:Patient.family=Renamed") == [oid]


def test_the_total_follows_writes(cached: tuple[TestClient, FastAPI]) -> None:
    c, _ = cached
    create(c, patient("Counted"))
    url = "/fhir/Patient?family=Counted&_total=accurate"
    for _ in range(2):
        assert c.get(url).json()["total"] == 1
    create(c, patient("Counted"))
    assert c.get(url).json()["total"] == 2


def test_the_next_link_of_a_cached_first_page_serves_the_rest(
    cached: tuple[TestClient, FastAPI],
) -> None:
    c, app = cached
    made = {create(c, patient("Paged"))["id"] for _ in range(5)}
    bundle = served_from_the_cache(c, app, "Patient?family=Paged&_count=2")
    seen = [e["resource"]["id"] for e in bundle["entry"]]
    while nxt := next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None):
        bundle = c.get(nxt.replace("http://testserver", "")).json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
    assert sorted(seen) == sorted(made)


def test_searches_differing_only_in_result_parameters_each_page_on(
    cached: tuple[TestClient, FastAPI],
) -> None:
    c, _ = cached
    for _ in range(3):
        create(c, patient("Shaped", gender="female"))
    for query in ("family=Shaped&_count=1", "family=Shaped&_count=1&_elements=gender"):
        for _ in range(2):  # the second is a hit where the resolved search is the same
            bundle = c.get(f"/fhir/Patient?{query}").json()
            nxt = next(x["url"] for x in bundle["link"] if x["relation"] == "next")
            page2 = c.get(nxt.replace("http://testserver", ""))
            assert page2.status_code == 200, page2.text
            assert len(page2.json()["entry"]) == 1


def test_search_entries_of_a_transaction_bypass_the_cache(
    cached: tuple[TestClient, FastAPI],
) -> None:
    c, app = cached
    create(c, patient("InBundle"))
    for _ in range(2):
        ids(c, "Patient?family=InBundle")
    entries = pages(app).hits + pages(app).misses
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Patient?family=InBundle"}}],
    }
    r = c.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["resource"]["total"] == 1
    assert pages(app).hits + pages(app).misses == entries


def test_one_party_never_gets_the_rows_another_party_filled(app_factory: Any) -> None:
    app = app_factory(auth="on", admin_token=ADMIN, read_cache=100, read_cache_lease_seconds=0.5)
    with TestClient(app, base_url="http://testserver") as c:
        ready(app)
        load_parties(c)
        clinic_a = backend_token(c, "system/*.rs", org="clinic-a", role="clinic")
        clinic_b = backend_token(c, "system/*.rs", org="clinic-b", role="clinic")
        for _ in range(2):
            assert ids(c, "Condition", **bearer(clinic_a)) == ["cond-a"]
        assert ids(c, "Condition", **bearer(clinic_b)) == ["cond-b"]
        assert sorted(ids(c, "Condition", **bearer(ADMIN))) == ["cond-a", "cond-b"]


def test_without_the_read_cache_there_is_no_page_cache(app_factory: Any) -> None:
    app = app_factory(read_cache=0)
    with TestClient(app, base_url="http://testserver") as c:
        create(c, patient("Plain"))
        assert len(ids(c, "Patient?family=Plain")) == 1
    assert app.state.consilium.page_cache is None


def test_search_cache_0_turns_it_off_with_the_read_cache_on(app_factory: Any) -> None:
    app = app_factory(read_cache=100, search_cache=0)
    with TestClient(app, base_url="http://testserver"):
        assert app.state.consilium.read_cache is not None
    assert app.state.consilium.page_cache is None
