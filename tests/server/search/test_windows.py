"""Windows (docs/indexing.md, "Windows"): a default-order search on one key or one string prefix
reads bucket ranges of the ``kw`` index instead of every match, pages exactly, and costs about
a page whatever the match count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient
from pymongo.collection import Collection

from server.app import create_app
from server.search import execute
from server.search.keys import BUCKETS, bucket_of
from tests.server.search.conftest import ids
from tests.server.search.test_paging_keyset import links, walk

MANNING = [f"p-{i}" for i in range(700)]  # ids of one shape, as an EHR assigns them
LONGER = [f"q-{i}" for i in range(30)]  # "Manningham": a longer value of the same prefix
BOTH = [f"r-{i}" for i in range(5)]  # both names: one match, not two
OTHER = [f"s-{i}" for i in range(20)]
OBSERVATIONS = [f"o-{i}" for i in range(250)]


def patient(rid: str, *families: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": rid, "name": [{"family": f} for f in families]}


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def post_all(client: TestClient, resources: list[dict[str, Any]]) -> None:
    for start in range(0, len(resources), 200):
        r = client.post("/fhir", json=transaction(resources[start : start + 200]))
        assert r.status_code == 200, r.text


def order(rids: list[str]) -> list[str]:
    """The default order of a windowed search: bucket, then id."""
    return sorted(rids, key=lambda rid: (bucket_of(rid), rid))


@pytest.fixture(scope="module")
def world(mongo_uri: str, module_settings: Any) -> Iterator[TestClient]:
    settings = module_settings("windows")
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as c:
        people = (
            [patient(rid, "Manning") for rid in MANNING]
            + [patient(rid, "Manningham") for rid in LONGER]
            + [patient(rid, "Manning", "Manningham") for rid in BOTH]
            + [patient(rid, "Other") for rid in OTHER]
        )
        observations = [
            {
                "resourceType": "Observation",
                "id": oid,
                "status": "final",
                "code": {"text": "weight"},
                "subject": {"reference": "Patient/p-1"},
            }
            for oid in OBSERVATIONS
        ]
        post_all(c, people + observations)
        yield c
    app.state.consilium.store.close()
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(settings.db_name)
    cleanup.close()


@pytest.fixture
def matched(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many documents the database matched for the searches' queries to Patient and
    Observation: what SecantusDB decodes whatever the limit (docs/indexing.md), and what
    MongoDB fetches to sort by ``_id``."""
    sent: list[tuple[Collection[Any], dict[str, Any]]] = []
    original = Collection.find

    def recording(self: Collection[Any], *args: Any, **kwargs: Any) -> Any:
        if self.name in ("Patient", "Observation") and args:
            sent.append((self, args[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "find", recording)
    execute._densities.clear()

    def total() -> int:
        found = [list(original(coll, flt, {"_id": 1})) for coll, flt in sent]
        sent.clear()
        return sum(len(f) for f in found)

    return total


def test_buckets_are_four_hex_digits_spread_over_every_id_shape() -> None:
    buckets = {bucket_of(f"p-{i}") for i in range(2000)}
    assert all(len(b) == 4 and int(b, 16) < BUCKETS for b in buckets)
    assert len(buckets) > 1900  # 2,000 ids of one shape land in nearly as many buckets


def test_a_prefix_search_pages_through_every_match_once_in_bucket_order(
    world: TestClient,
) -> None:
    seen = walk(world, "/fhir/Patient?family=manning&_count=50")
    assert seen == [f"Patient/{rid}" for rid in order(MANNING + LONGER + BOTH)]


def test_a_token_search_pages_through_every_match_once(world: TestClient) -> None:
    seen = walk(world, "/fhir/Observation?subject=Patient/p-1&_count=40")
    assert seen == [f"Observation/{oid}" for oid in order(OBSERVATIONS)]


def test_an_exact_string_search_leaves_longer_values_out(world: TestClient) -> None:
    seen = walk(world, "/fhir/Patient?family:exact=Manning&_count=100")
    assert seen == [f"Patient/{rid}" for rid in order(MANNING + BOTH)]


def test_a_first_page_reads_about_a_page_of_many_matches(
    world: TestClient, matched: Callable[[], int]
) -> None:
    bundle = world.get("/fhir/Patient?family:exact=Manning&_count=10&_total=none").json()
    assert len(ids(bundle)) == 10 and "next" in links(bundle)
    # 705 resources match; the windows read about 1.5 pages of them, then the page itself
    assert matched() < 80


def test_a_later_page_reads_from_its_cursor_not_from_the_start(
    world: TestClient, matched: Callable[[], int]
) -> None:
    first = world.get("/fhir/Patient?family:exact=Manning&_count=10&_total=none").json()
    matched()
    second = world.get(links(first)["next"]).json()
    assert len(ids(second)) == 10
    assert matched() < 80


def test_a_token_search_reads_about_a_page(world: TestClient, matched: Callable[[], int]) -> None:
    bundle = world.get("/fhir/Observation?subject=Patient/p-1&_count=10&_total=none").json()
    assert len(ids(bundle)) == 10
    assert matched() < 80


def test_a_few_matches_are_read_whole_and_counted(world: TestClient) -> None:
    bundle = world.get("/fhir/Patient?family=other&_count=5").json()
    assert bundle["total"] == len(OTHER)
    assert walk(world, "/fhir/Patient?family=other&_count=5") == [
        f"Patient/{rid}" for rid in order(OTHER)
    ]


def test_a_known_density_sizes_the_first_window(
    world: TestClient, matched: Callable[[], int]
) -> None:
    url = "/fhir/Observation?subject=Patient/p-1&_count=5&_total=none"
    first = world.get(url).json()
    assert ("Observation", "subject\x1ePatient/p-1") in execute._densities
    assert ids(world.get(url).json()) == ids(first)


def test_an_explicit_sort_keeps_its_order(world: TestClient) -> None:
    seen = walk(world, "/fhir/Patient?family=manning&_sort=_id&_count=100")
    assert seen == sorted(seen) and len(seen) == len(MANNING + LONGER + BOTH)


def test_a_second_condition_is_checked_on_the_windowed_matches(world: TestClient) -> None:
    seen = walk(world, "/fhir/Patient?family=manning&_id=p-7,q-3,s-1&_count=1")
    assert sorted(seen) == ["Patient/p-7", "Patient/q-3"]


def test_windows_use_the_window_index(world: TestClient) -> None:
    app_state = world.app.state.consilium  # type: ignore[attr-defined]
    coll = app_state.store.resources("Patient")
    plan = coll.find(
        {
            "deleted": False,
            "kw": {"$gte": "family\x1emanning\x1d0000", "$lt": "family\x1emanning\x1d0100"},
        }
    ).explain()["queryPlanner"]["winningPlan"]
    assert "kw_1" in str(plan) and "COLLSCAN" not in str(plan)


# ------------------------------------------------------------------------- writes between pages
def test_writes_between_pages_neither_skip_nor_repeat(client: TestClient) -> None:
    rids = [f"w-{i}" for i in range(120)]
    post_all(client, [patient(rid, "Window") for rid in rids])
    expected = order(rids)
    gone, moved = expected[90], expected[60]

    def write(page_no: int) -> None:
        if page_no != 0:
            return
        # a new match, a deletion, and an update of a row not yet served
        post_all(client, [patient("w-new", "Window")])
        assert client.delete(f"/fhir/Patient/{gone}").status_code in (200, 204)
        r = client.put(f"/fhir/Patient/{moved}", json=patient(moved, "Window", "Else"))
        assert r.status_code == 200

    seen = walk(client, "/fhir/Patient?family=window&_count=25", write)
    assert seen == [f"Patient/{rid}" for rid in expected if rid != gone]


def test_a_cursor_of_another_order_asks_to_repeat_the_search(client: TestClient) -> None:
    post_all(client, [patient(f"c-{i}", "Cursor") for i in range(6)])
    first = client.get("/fhir/Patient?family=cursor&_count=2").json()
    store = client.app.state.consilium.store  # type: ignore[attr-defined]
    store.db[execute.SNAPSHOTS].update_many({}, {"$set": {"cursors.2": [0, ["c-1"]]}})
    r = client.get(links(first)["next"])
    assert r.status_code == 410
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_second_string_condition_is_rechecked_and_the_search_still_windowed(
    world: TestClient,
) -> None:
    seen = walk(world, "/fhir/Patient?family=manning&name=manningham&_count=7")
    assert seen == [f"Patient/{rid}" for rid in order(LONGER + BOTH)]  # bucket order


@pytest.mark.parametrize(
    "query",
    [
        "Patient?family=manning&_count=60",
        "Patient?family:exact=Manningham&_count=9",
        "Observation?subject=Patient/p-1&_count=100",
        "Patient?family=man&_sort=-family&_count=200",
    ],
)
def test_the_mongodb_form_of_ranges_finds_the_same(world: TestClient, query: str) -> None:
    """MongoDB gets ranges on keys under $elemMatch (``keys.elem_match``): same results."""
    store = world.app.state.consilium.store  # type: ignore[attr-defined]
    plain = walk(world, f"/fhir/{query}")
    store.elem_match_ranges = True
    try:
        assert walk(world, f"/fhir/{query}") == plain
    finally:
        store.elem_match_ranges = False
    assert plain


def test_a_first_page_of_many_matches_reads_its_own_rows_and_gives_no_total(
    world: TestClient, matched: Callable[[], int]
) -> None:
    world.get("/fhir/Patient?family:exact=Manning&_count=10")  # the key's density, as in use
    matched()
    bundle = world.get("/fhir/Patient?family:exact=Manning&_count=10").json()
    assert len(ids(bundle)) == 10 and "next" in links(bundle)
    assert "total" not in bundle  # 705 matches: no count is due (docs/paging.md)
    assert matched() < 60  # not the 101 rows a total up to 100 would need


def test_a_result_of_up_to_a_hundred_keeps_its_total(client: TestClient) -> None:
    rids = [f"h-{i}" for i in range(100)]
    post_all(client, [patient(rid, "Hundred") for rid in rids])
    execute._densities.clear()
    bundle = client.get("/fhir/Patient?family:exact=Hundred&_count=10").json()
    assert bundle["total"] == 100
    assert len(ids(bundle)) == 10
