"""Paging, deletions, the conditional ``match`` API and the access-filter contract (HTTP + DB)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.errors import FhirError
from server.repository import Repository
from server.search.execute import match
from tests.server.search.conftest import ids, load


def patient(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"pt{i:03d}",
        "name": [{"family": f"Fam{i % 4}"}],
        "gender": "female" if i % 2 else "male",
        **extra,
    }


def next_url(bundle: dict[str, Any]) -> str | None:
    for link in bundle["link"]:
        if link["relation"] == "next":
            url: str = link["url"]
            return url.removeprefix("http://testserver")
    return None


def test_paging_through_whole_set_while_it_changes(client: TestClient) -> None:
    load(client, [patient(i) for i in range(23)])
    seen: list[str] = []
    url: str | None = "/fhir/Patient?_count=5&_sort=family"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert bundle["total"] == 23
        seen += ids(bundle)
        url = next_url(bundle)
        # writes between pages: new matches, and updates that move resources in sort order
        client.put(f"/fhir/Patient/new{pages}", json=patient(100 + pages) | {"id": f"new{pages}"})
        client.put("/fhir/Patient/pt000", json=patient(0, name=[{"family": "Aaa"}]))
        pages += 1
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == {f"Patient/pt{i:03d}" for i in range(23)}


def test_previous_link_walks_back(client: TestClient) -> None:
    load(client, [patient(i) for i in range(6)])
    first = client.get("/fhir/Patient?_count=4&_sort=_id").json()
    second = client.get(next_url(first) or "").json()
    prev = next(link["url"] for link in second["link"] if link["relation"] == "previous")
    back = client.get(prev.removeprefix("http://testserver")).json()
    assert ids(back) == ids(first)
    assert ids(second) == ["Patient/pt004", "Patient/pt005"]


def test_next_link_keeps_the_query(client: TestClient) -> None:
    load(client, [patient(i) for i in range(4)])
    b = client.get("/fhir/Patient?gender=male&_count=1").json()
    query = parse_qs(urlsplit(next_url(b) or "").query)
    assert query["gender"] == ["male"] and query["_count"] == ["1"] and "_page" in query


def test_deleted_resources_are_not_found(client: TestClient) -> None:
    load(client, [patient(i) for i in range(3)])
    assert client.delete("/fhir/Patient/pt001").status_code in (200, 204)
    b = client.get("/fhir/Patient?_sort=_id").json()
    assert ids(b) == ["Patient/pt000", "Patient/pt002"]
    assert client.get("/fhir/Patient?_id=pt001").json()["total"] == 0


def test_updated_resource_is_reindexed(client: TestClient) -> None:
    load(client, [patient(1)])
    load(client, [patient(1, name=[{"family": "Renamed"}])])
    assert ids(client.get("/fhir/Patient?name=renamed").json()) == ["Patient/pt001"]
    assert ids(client.get("/fhir/Patient?name=fam1").json()) == []


def test_page_size_is_capped_by_settings(app_factory: Any) -> None:
    app = app_factory(max_page_size=2, default_page_size=1)
    with TestClient(app) as c:
        load(c, [patient(i) for i in range(3)])
        assert len(ids(c.get("/fhir/Patient").json())) == 1
        assert len(ids(c.get("/fhir/Patient?_count=50").json())) == 2


# ---------------------------------------------------------------------------- match (conditional)
@pytest.fixture
def repo(data_client: TestClient) -> Repository:
    state = data_client.app.state.consilium  # type: ignore[attr-defined]
    return Repository(state.store, state.hooks)


def test_match_returns_ids(repo: Repository) -> None:
    assert match(repo, "Patient", "identifier=urn:x|1") == ["p1"]
    assert match(repo, "Patient", "identifier=urn:x|1&birthdate=1971") == ["p1"]
    assert match(repo, "Patient", "Patient?identifier=urn:x|1&birthdate=1970") == []


def test_match_respects_limit(repo: Repository) -> None:
    assert len(match(repo, "Patient", "gender=female,male", limit=2)) == 2
    assert len(match(repo, "Patient", "gender=female,male", limit=5)) == 3


def test_match_supports_chains(repo: Repository) -> None:
    assert match(repo, "Observation", "subject:Patient.identifier=urn:x|2&code=718-7") == ["o3"]


@pytest.mark.parametrize(
    "q", ["", "?", "nonsense=1", "identifier=urn:x|1&nonsense=2", "birthdate=soon", "_count=1"]
)
def test_match_is_strict(repo: Repository, q: str) -> None:
    with pytest.raises(FhirError) as err:
        match(repo, "Patient", q)
    assert err.value.status == 400


def test_match_excludes_deleted(client: TestClient, app: FastAPI) -> None:
    repo = Repository(app.state.consilium.store, app.state.consilium.hooks)
    load(client, [patient(7, identifier=[{"system": "urn:z", "value": "7"}])])
    assert match(repo, "Patient", "identifier=urn:z|7") == ["pt007"]
    assert client.delete("/fhir/Patient/pt007").status_code in (200, 204)
    assert match(repo, "Patient", "identifier=urn:z|7") == []


# ---------------------------------------------------------------------------- access contract
class NarrowPolicy:
    """Sees female patients and their observations only; can_read hides Observation/o2."""

    def access_filter(self, principal: Any, resource_type: str) -> dict[str, Any]:
        if resource_type == "Patient":
            return {"idx.gender": "female"}
        if resource_type == "Observation":
            return {"idx.subject": {"$in": ["Patient/p1", "Patient/p3"]}}
        return {}

    def can_read(
        self, principal: Any, rtype: str, resource: dict[str, Any], acl: Any = None
    ) -> bool:
        return not (rtype == "Observation" and resource.get("id") == "o2")


@pytest.fixture
def narrowed(data_client: TestClient) -> Iterator[TestClient]:
    state = data_client.app.state.consilium  # type: ignore[attr-defined]
    saved, state.policy = state.policy, NarrowPolicy()
    yield data_client
    state.policy = saved


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("Patient", ["Patient/p1", "Patient/p3"]),
        ("Patient?gender=male", []),
        ("Observation?code=2345-7", ["Observation/o1", "Observation/o4"]),
        ("Observation?subject.gender=male", []),
        ("Patient?_has:Observation:patient:code=718-7", []),
        ("Patient/p2/Observation", []),
        ("?_type=Patient,Observation&_id=p2,o3,p1", ["Patient/p1"]),
    ],
)
def test_access_filter_applies_to_every_query(
    narrowed: TestClient, url: str, expected: list[str]
) -> None:
    r = narrowed.get(f"/fhir/{url}")
    assert r.status_code == 200, r.text
    assert sorted(ids(r.json())) == expected


def test_access_filter_applies_to_includes(narrowed: TestClient) -> None:
    b = narrowed.get("/fhir/Observation?code=2345-7&_include=Observation:subject").json()
    assert sorted(ids(b, "include")) == ["Patient/p1", "Patient/p3"]
    b = narrowed.get("/fhir/Patient?_revinclude=Observation:subject").json()
    assert sorted(ids(b, "include")) == ["Observation/o1", "Observation/o4"]


def test_paging_token_is_bound_to_the_access_filter(client: TestClient, app: FastAPI) -> None:
    load(client, [patient(i) for i in range(4)])
    b = client.get("/fhir/Patient?_count=1").json()
    app.state.consilium.policy = NarrowPolicy()
    r = client.get(next_url(b) or "")
    assert r.status_code == 400


def test_total_beyond_the_bounded_count_is_omitted_but_paging_reaches_everything(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import server.search.execute as execute

    monkeypatch.setattr(execute, "TOTAL_SCAN", 3)
    load(client, [patient(i) for i in range(5)])
    b = client.get("/fhir/Patient?_count=2").json()
    assert "total" not in b
    assert client.get("/fhir/Patient?_count=2&_total=accurate").json()["total"] == 5
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 5
    seen = ids(b)
    url = next_url(b)
    while url:
        page = client.get(url).json()
        seen += ids(page)
        url = next_url(page)
    assert seen == [f"Patient/pt{i:03d}" for i in range(5)]


def test_too_broad_chain_is_400(data_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import server.search.execute as execute

    monkeypatch.setattr(execute, "CHAIN_MAX", 1)
    r = data_client.get("/fhir/Observation?subject:Patient.gender=female")
    assert r.status_code == 400
    assert r.json()["issue"][0]["code"] == "too-costly"
