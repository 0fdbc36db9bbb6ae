"""Keyset paging (docs/paging.md): order equals the one-page order, writes between pages neither
skip nor repeat, the paging state is small and bound to the caller and the query."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.search.execute import SNAPSHOTS, encode_page
from tests.server.search.conftest import ids, load


def patient(i: int, **extra: Any) -> dict[str, Any]:
    """Ten patients with repeated families, several names (multikey), some without birthDate."""
    names = [{"family": f"Fam{i % 3}", "given": [f"G{(7 * i) % 10}"]}]
    if i % 4 == 0:
        names.append({"family": f"Alt{9 - i}"})
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"pt{i:03d}",
        "name": names,
        "gender": ["female", "male", "other"][i % 3],
        **extra,
    }
    if i % 5:
        body["birthDate"] = f"19{60 + (i * 7) % 30}-0{1 + i % 9}-1{i % 10}"
    return body


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {
        link["relation"]: str(link["url"]).removeprefix("http://testserver")
        for link in bundle["link"]
    }


def walk(client: TestClient, url: str, between: Any = None) -> list[str]:
    seen: list[str] = []
    page_no = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url)
        assert r.status_code == 200, r.text
        seen += ids(r.json())
        next_url = links(r.json()).get("next")
        if between is not None and next_url:
            between(page_no)
        page_no += 1
    return seen


@pytest.fixture
def ten(client: TestClient) -> TestClient:
    load(client, [patient(i) for i in range(10)])
    return client


SORTS = [
    "_id",
    "-_id",
    "family",  # string, multikey (Alt names), ties broken by _id
    "-family",
    "gender,-birthdate",  # token + date, several keys, missing dates
    "birthdate",  # nulls first
    "-birthdate",  # nulls last
    "given,-_id",
    "-_lastUpdated",
    "_lastUpdated",
]


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("count", [1, 3, 4])
def test_pages_concatenate_to_the_one_page_order(ten: TestClient, sort: str, count: int) -> None:
    whole = ids(ten.get(f"/fhir/Patient?_sort={sort}&_count=100").json())
    assert len(whole) == 10
    assert walk(ten, f"/fhir/Patient?_sort={sort}&_count={count}") == whole


@pytest.mark.parametrize("query", ["family=fam1,alt,fam2&_sort=-family", "gender=male,other"])
def test_union_of_ranges_pages_in_order(ten: TestClient, query: str) -> None:
    whole = ids(ten.get(f"/fhir/Patient?{query}&_count=100").json())
    assert len(whole) >= 6
    assert walk(ten, f"/fhir/Patient?{query}&_count=2") == whole


def test_system_search_pages_across_types(ten: TestClient) -> None:
    load(ten, [{"resourceType": "Organization", "id": f"org{i}", "name": "x"} for i in range(3)])
    q = "/fhir?_type=Patient,Organization&_sort=_id"
    whole = ids(ten.get(f"{q}&_count=100").json())
    assert len(whole) == 13
    assert walk(ten, f"{q}&_count=4") == whole


def test_first_page_stores_a_small_state_not_the_result(ten: TestClient, app: FastAPI) -> None:
    b = ten.get("/fhir/Patient?_count=2&_sort=family").json()
    state = app.state.consilium.store.db[SNAPSHOTS].find_one({})
    assert state["kind"] == "keyset" and "keys" not in state
    assert list(state["cursors"]) == ["2"]
    assert b["total"] == 10  # small result: counted exactly (bounded count)


def test_single_page_result_stores_nothing(ten: TestClient, app: FastAPI) -> None:
    b = ten.get("/fhir/Patient?_count=50").json()
    assert "next" not in links(b) and b["total"] == 10
    assert app.state.consilium.store.db[SNAPSHOTS].count_documents({}) == 0


# ------------------------------------------------------------------------- writes between pages
@pytest.mark.parametrize("sort", ["-_lastUpdated", "_lastUpdated", "family", "-birthdate"])
def test_updates_between_pages_neither_skip_nor_repeat(ten: TestClient, sort: str) -> None:
    whole = ids(ten.get(f"/fhir/Patient?_sort={sort}&_count=100").json())

    def write(page_no: int) -> None:
        # move every patient, seen or not, to the other end of the order
        for i in range(10):
            moved = patient(i, name=[{"family": f"Zz{page_no}"}], birthDate="2001-01-01")
            assert ten.put(f"/fhir/Patient/pt{i:03d}", json=moved).status_code == 200

    assert walk(ten, f"/fhir/Patient?_sort={sort}&_count=3", write) == whole


def test_created_resources_stay_out_and_deleted_ones_drop_out(ten: TestClient) -> None:
    def write(page_no: int) -> None:
        load(ten, [patient(100 + page_no) | {"id": f"aaa{page_no}"}])  # sorts first by _id
        load(ten, [patient(200 + page_no) | {"id": f"zzz{page_no}"}])  # sorts last
        if page_no == 0:
            assert ten.delete("/fhir/Patient/pt009").status_code in (200, 204)

    seen = walk(ten, "/fhir/Patient?_sort=_id&_count=3", write)
    assert seen == [f"Patient/pt{i:03d}" for i in range(9)]


def test_a_resource_that_stops_matching_drops_out(ten: TestClient) -> None:
    def write(page_no: int) -> None:
        if page_no == 0:
            load(ten, [patient(9, gender="unknown")])  # pt009 was male

    seen = walk(ten, "/fhir/Patient?gender=male&_sort=_id&_count=2", write)
    assert seen == ["Patient/pt001", "Patient/pt004", "Patient/pt007"]


def test_total_is_the_first_page_total_on_every_page(ten: TestClient) -> None:
    first = ten.get("/fhir/Patient?_count=4&_total=accurate").json()
    load(ten, [patient(50)])
    second = ten.get(links(first)["next"]).json()
    assert first["total"] == second["total"] == 10


def test_previous_link_only_for_a_page_served(ten: TestClient) -> None:
    first = ten.get("/fhir/Patient?_count=4&_sort=_id").json()
    assert "previous" not in links(first)
    second = ten.get(links(first)["next"]).json()
    third = ten.get(links(second)["next"]).json()
    assert ids(ten.get(links(third)["previous"]).json()) == ids(second)
    # the same next link served twice gives the same page (any worker, any number of times)
    assert ids(ten.get(links(first)["next"]).json()) == ids(second)


# ------------------------------------------------------------------------------ hostile tokens
def _token(raw: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(raw)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("garbage!", 400),
        ("x" * 300, 400),
        (_token(["0" * 32, -1]), 400),
        (_token(["0" * 32, True]), 400),
        (_token(["A" * 32, 1]), 400),
        (_token({"sid": 1}), 400),
        (encode_page("0" * 32, 2), 410),  # unknown (or expired and cleaned up) state
    ],
)
def test_malformed_or_unknown_tokens_are_operation_outcomes(
    ten: TestClient, token: str, status: int
) -> None:
    r = ten.get(f"/fhir/Patient?_count=2&_page={token}")
    assert r.status_code == status
    assert r.json()["resourceType"] == "OperationOutcome"


def _sid(bundle: dict[str, Any]) -> str:
    token = links(bundle)["next"].split("_page=")[1]
    sid: str = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))[0]
    return sid


def test_an_offset_that_names_no_page_is_400(ten: TestClient) -> None:
    b = ten.get("/fhir/Patient?_count=2").json()
    r = ten.get(f"/fhir/Patient?_count=2&_page={encode_page(_sid(b), 3)}")
    assert r.status_code == 400


def test_a_token_reused_with_another_query_is_400(ten: TestClient) -> None:
    b = ten.get("/fhir/Patient?_count=2&gender=male").json()
    r = ten.get(f"/fhir/Patient?_count=2&gender=female&_page={encode_page(_sid(b), 2)}")
    assert r.status_code == 400
    assert "another search" in r.text


def test_an_expired_state_is_410(ten: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import server.search.execute as execute

    b = ten.get("/fhir/Patient?_count=2").json()
    monkeypatch.setattr(execute, "SNAPSHOT_TTL", timedelta(seconds=-1))
    r = ten.get(links(b)["next"])
    assert r.status_code == 410
    assert r.json()["resourceType"] == "OperationOutcome"


def test_too_many_changes_since_the_first_page_is_410(
    ten: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import server.search.execute as execute

    monkeypatch.setattr(execute, "CHANGED_MAX", 2)
    b = ten.get("/fhir/Patient?_count=2").json()
    load(ten, [patient(i) | {"active": True} for i in range(3)])
    assert ten.get(links(b)["next"]).status_code == 410


# ------------------------------------------------------------------------ result-set fallback
def _obs(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "valueQuantity": {
            "value": (i * 7) % 5,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
    }


def test_a_quantity_sort_pages_by_a_stored_result_set(client: TestClient, app: FastAPI) -> None:
    load(client, [_obs(i) for i in range(5)])
    q = "/fhir/Observation?_sort=value-quantity"
    whole = ids(client.get(f"{q}&_count=100").json())
    assert walk(client, f"{q}&_count=2") == whole
    state = app.state.consilium.store.db[SNAPSHOTS].find_one({})
    assert state["kind"] == "keys" and len(state["keys"]) == 5


def test_a_compartment_token_used_in_another_compartment_is_400(ten: TestClient) -> None:
    load(ten, [_obs(i) | {"subject": {"reference": "Patient/pt001"}} for i in range(3)])
    b = ten.get("/fhir/Patient/pt001/Observation?_count=2").json()
    token = encode_page(_sid(b), 2)
    assert ten.get(f"/fhir/Patient/pt001/Observation?_count=2&_page={token}").status_code == 200
    assert ten.get(f"/fhir/Patient/pt002/Observation?_count=2&_page={token}").status_code == 400
