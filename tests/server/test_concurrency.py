"""Optimistic locking under real concurrency: racing writers never lose an update."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.server.test_crud import FHIR_JSON, create


def test_racing_if_match_updates_exactly_one_wins(client: TestClient, patient_body: dict) -> None:
    p = create(client, patient_body)
    barrier = threading.Barrier(8)

    def attempt(i: int) -> int:
        body = {**p, "name": [{"family": f"Writer{i}"}]}
        barrier.wait()
        r = client.put(
            f"/fhir/Patient/{p['id']}", json=body, headers={**FHIR_JSON, "If-Match": 'W/"1"'}
        )
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert statuses.count(200) == 1, statuses
    assert all(s in (409, 412) for s in statuses if s != 200), statuses
    current = client.get(f"/fhir/Patient/{p['id']}").json()
    assert current["meta"]["versionId"] == "2"
    history = client.get(f"/fhir/Patient/{p['id']}/_history").json()
    assert len(history["entry"]) == 2


def test_racing_unconditional_updates_all_land_as_versions(
    client: TestClient, patient_body: dict
) -> None:
    p = create(client, patient_body)
    barrier = threading.Barrier(6)

    def attempt(i: int) -> int:
        body = {**p, "name": [{"family": f"Writer{i}"}]}
        barrier.wait()
        return client.put(f"/fhir/Patient/{p['id']}", json=body, headers=FHIR_JSON).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(attempt, range(6)))
    ok = statuses.count(200)
    assert all(s in (200, 409) for s in statuses), statuses
    history = client.get(f"/fhir/Patient/{p['id']}/_history?_count=50").json()
    versions = sorted(int(e["response"]["etag"][3:-1]) for e in history["entry"])
    assert versions == list(range(1, ok + 2))  # no gaps, no duplicates, nothing lost
