"""Conditional create/update/delete/patch over HTTP, including the concurrent-create race.

Matching is the search engine's; until ``server.search.execute.match`` exists these tests skip.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.bundles.helpers import HEADERS, bundle, entry, observation, patient, urn


def _search_ready() -> bool:
    try:
        return hasattr(importlib.import_module("server.search.execute"), "match")
    except ImportError:
        return False


pytestmark = pytest.mark.skipif(not _search_ready(), reason="needs server.search.execute.match")

CRITERIA = "identifier=urn:oid:1.2.3|123"


def count(client: TestClient, rtype: str = "Patient") -> int:
    history = client.get(f"/fhir/{rtype}/_history?_count=1000").json()
    return len({e["fullUrl"] for e in history.get("entry", []) if "resource" in e})


def create(client: TestClient, body: dict[str, Any], criteria: str = CRITERIA) -> Any:
    return client.post(
        f"/fhir/{body['resourceType']}", json=body, headers={**HEADERS, "If-None-Exist": criteria}
    )


# ------------------------------------------------------------------------- conditional create
def test_if_none_exist_creates_then_returns_the_existing(client: TestClient) -> None:
    first = create(client, patient())
    assert first.status_code == 201, first.text
    second = create(client, patient())
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert count(client) == 1


def test_if_none_exist_accepts_the_type_prefixed_form(client: TestClient) -> None:
    first = create(client, patient())
    again = create(client, patient(), f"Patient?{CRITERIA}")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def test_if_none_exist_with_several_matches_is_412(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient(), headers=HEADERS)
    client.post("/fhir/Patient", json=patient(), headers=HEADERS)
    assert create(client, patient()).status_code == 412
    assert count(client) == 2


def test_if_none_exist_with_unknown_parameter_is_400(client: TestClient) -> None:
    assert create(client, patient(), "no-such-param=1").status_code == 400
    assert count(client) == 0


def test_concurrent_conditional_creates_yield_one_resource(client: TestClient) -> None:
    # Warm-up write first: SecantusDB 0.7.0b3 builds an index without the writes of transactions
    # still open at that moment, and the store creates indexes lazily on first use (reported).
    client.post("/fhir/Patient", json=patient("warm-up"), headers=HEADERS)
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        r = create(client, patient())
        with lock:
            results.append((r.status_code, r.json().get("id", r.text)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses.count(201) == 1, results
    assert set(statuses) <= {200, 201}, results
    assert len({rid for _, rid in results}) == 1, results
    assert count(client) == 2  # the warm-up patient and the one winner


def test_stale_claim_does_not_block_a_new_create(client: TestClient) -> None:
    first = create(client, patient())
    client.put(
        f"/fhir/Patient/{first.json()['id']}",
        json={**patient("other"), "id": first.json()["id"]},
        headers=HEADERS,
    )
    again = create(client, patient())
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]


# ------------------------------------------------------------------------- conditional update
def test_conditional_update_creates_when_nothing_matches(client: TestClient) -> None:
    r = client.put(f"/fhir/Patient?{CRITERIA}", json=patient(), headers=HEADERS)
    assert r.status_code == 201, r.text
    assert count(client) == 1


def test_conditional_update_updates_the_single_match(client: TestClient) -> None:
    rid = create(client, patient()).json()["id"]
    r = client.put(f"/fhir/Patient?{CRITERIA}", json=patient(family="Updated"), headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == rid and r.json()["meta"]["versionId"] == "2"


def test_conditional_update_with_several_matches_is_412(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient(), headers=HEADERS)
    client.post("/fhir/Patient", json=patient(), headers=HEADERS)
    assert (
        client.put(f"/fhir/Patient?{CRITERIA}", json=patient(), headers=HEADERS).status_code == 412
    )


def test_conditional_update_with_a_different_body_id_is_400(client: TestClient) -> None:
    create(client, patient())
    r = client.put(f"/fhir/Patient?{CRITERIA}", json={**patient(), "id": "other"}, headers=HEADERS)
    assert r.status_code == 400


def test_conditional_update_honours_if_match(client: TestClient) -> None:
    create(client, patient())
    r = client.put(
        f"/fhir/Patient?{CRITERIA}",
        json=patient(family="X"),
        headers={**HEADERS, "If-Match": 'W/"5"'},
    )
    assert r.status_code == 412


def test_conditional_write_without_criteria_is_400(client: TestClient) -> None:
    assert (
        client.put("/fhir/Patient?_format=json", json=patient(), headers=HEADERS).status_code == 400
    )
    assert client.delete("/fhir/Patient").status_code == 400


# ------------------------------------------------------------------------- conditional delete
def test_conditional_delete_single(client: TestClient) -> None:
    rid = create(client, patient()).json()["id"]
    assert client.delete(f"/fhir/Patient?{CRITERIA}").status_code == 204
    assert client.get(f"/fhir/Patient/{rid}").status_code == 410


def test_conditional_delete_without_match_is_fine(client: TestClient) -> None:
    assert client.delete(f"/fhir/Patient?{CRITERIA}").status_code == 200


def test_conditional_delete_multiple_is_412_by_default(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient(), headers=HEADERS)
    client.post("/fhir/Patient", json=patient(), headers=HEADERS)
    assert client.delete(f"/fhir/Patient?{CRITERIA}").status_code == 412


def test_conditional_delete_multiple_when_allowed(app_factory: Any) -> None:
    with TestClient(app_factory(allow_multiple_conditional_delete=True)) as c:
        ids = [
            c.post("/fhir/Patient", json=patient(), headers=HEADERS).json()["id"] for _ in range(3)
        ]
        assert c.delete(f"/fhir/Patient?{CRITERIA}").status_code == 204
        assert all(c.get(f"/fhir/Patient/{i}").status_code == 410 for i in ids)


# -------------------------------------------------------------------------- conditional patch
def test_conditional_patch(client: TestClient) -> None:
    create(client, patient())
    ops = [{"op": "add", "path": "/gender", "value": "male"}]
    r = client.patch(
        f"/fhir/Patient?{CRITERIA}",
        json=ops,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "male"


def test_conditional_patch_without_match_is_404(client: TestClient) -> None:
    ops = [{"op": "add", "path": "/gender", "value": "male"}]
    r = client.patch(
        f"/fhir/Patient?{CRITERIA}",
        json=ops,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 404


# --------------------------------------------------------------------- inside Bundles
def patient_file() -> dict[str, Any]:
    p = urn()
    return bundle(
        "transaction",
        entry("POST", "Patient", patient(), p, ifNoneExist=CRITERIA),
        entry(
            "POST",
            "Observation",
            {**observation(p), "identifier": [{"system": "urn:obs", "value": "o1"}]},
            urn(),
            ifNoneExist="identifier=urn:obs|o1",
        ),
        entry(
            "POST",
            "Observation",
            {**observation(p, "29463-7"), "identifier": [{"system": "urn:obs", "value": "o2"}]},
            urn(),
            ifNoneExist="identifier=urn:obs|o2",
        ),
    )


def test_resending_a_bundle_with_conditional_creates_creates_nothing_new(
    client: TestClient,
) -> None:
    first = client.post("/fhir", json=patient_file(), headers=HEADERS)
    assert first.status_code == 200, first.text
    assert [e["response"]["status"] for e in first.json()["entry"]] == ["201 Created"] * 3
    history_before = client.get("/fhir/_history?_count=100").json()["entry"]
    again = client.post("/fhir", json=patient_file(), headers=HEADERS)
    assert again.status_code == 200, again.text
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 3
    assert [e["fullUrl"] for e in again.json()["entry"]] == [
        e["fullUrl"] for e in first.json()["entry"]
    ]
    assert client.get("/fhir/_history?_count=100").json()["entry"] == history_before


def test_conditional_reference_is_resolved(client: TestClient) -> None:
    rid = create(client, patient()).json()["id"]
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction", entry("POST", "Observation", observation(f"Patient?{CRITERIA}"))
        ),
        headers=HEADERS,
    )
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{rid}"


def test_conditional_reference_without_match_fails_the_transaction(client: TestClient) -> None:
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction", entry("POST", "Observation", observation(f"Patient?{CRITERIA}"))
        ),
        headers=HEADERS,
    )
    assert r.status_code == 404
    assert count(client, "Observation") == 0


def test_conditional_reference_with_several_matches_is_412(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient(), headers=HEADERS)
    client.post("/fhir/Patient", json=patient(), headers=HEADERS)
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction", entry("POST", "Observation", observation(f"Patient?{CRITERIA}"))
        ),
        headers=HEADERS,
    )
    assert r.status_code == 412


def test_conditional_update_in_a_transaction(client: TestClient) -> None:
    rid = create(client, patient()).json()["id"]
    r = client.post(
        "/fhir",
        json=bundle("transaction", entry("PUT", f"Patient?{CRITERIA}", patient(family="Changed"))),
        headers=HEADERS,
    )
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["resource"]["id"] == rid


def test_duplicate_if_none_exist_within_one_bundle_creates_one(client: TestClient) -> None:
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction",
            entry("POST", "Patient", patient(), ifNoneExist=CRITERIA),
            entry("POST", "Patient", patient(), ifNoneExist=CRITERIA),
        ),
        headers=HEADERS,
    )
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created", "200 OK"]
    assert count(client) == 1


def test_conditional_delete_in_a_batch(client: TestClient) -> None:
    create(client, patient())
    r = client.post(
        "/fhir", json=bundle("batch", entry("DELETE", f"Patient?{CRITERIA}")), headers=HEADERS
    )
    assert r.json()["entry"][0]["response"]["status"] == "204 No Content"


def test_concurrent_resends_of_one_bundle_land_once(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient("warm-up"), headers=HEADERS)  # see the race test
    client.post(
        "/fhir/Observation",
        json={**observation("Patient/none"), "subject": {"display": "x"}},
        headers=HEADERS,
    )
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def worker() -> None:
        barrier.wait()
        statuses.append(client.post("/fhir", json=patient_file(), headers=HEADERS).status_code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    assert count(client) == 2  # warm-up + the bundle's patient
    assert count(client, "Observation") == 3  # warm-up + the bundle's two
