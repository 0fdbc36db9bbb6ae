"""Response headers every FHIR answer carries (server/middleware.py): no browser storage."""

from __future__ import annotations

from fastapi.testclient import TestClient

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PATIENT = {"resourceType": "Patient", "name": [{"family": "Stored"}]}


def test_a_read_is_never_stored_by_a_browser(client: TestClient) -> None:
    rid = client.post("/fhir/Patient", json=PATIENT, headers=FHIR_JSON).json()["id"]
    r = client.get(f"/fhir/Patient/{rid}")
    assert r.status_code == 200 and "last-modified" in r.headers
    assert r.headers["cache-control"] == "no-store"


def test_a_search_and_a_write_are_never_stored(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=PATIENT, headers=FHIR_JSON)
    assert created.headers["cache-control"] == "no-store"
    assert client.get("/fhir/Patient?family=Stored").headers["cache-control"] == "no-store"


def test_an_error_is_never_stored(client: TestClient) -> None:
    r = client.get("/fhir/Patient/missing")
    assert r.status_code == 404
    assert r.headers["cache-control"] == "no-store"


def test_a_not_modified_answer_is_never_stored(client: TestClient) -> None:
    rid = client.post("/fhir/Patient", json=PATIENT, headers=FHIR_JSON).json()["id"]
    r = client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 304
    assert r.headers["cache-control"] == "no-store"


def test_a_too_large_body_refused_before_the_app_is_never_stored(client: TestClient) -> None:
    r = client.post("/fhir/Patient", content=b"x" * (20 * 1024 * 1024), headers={**FHIR_JSON})
    assert r.status_code == 413
    assert r.headers["cache-control"] == "no-store"


def test_one_cache_control_header_only_where_a_route_sets_its_own(client: TestClient) -> None:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    assert len(r.headers.get_list("cache-control")) == 1


def test_the_trackers_static_files_stay_cacheable(client: TestClient) -> None:
    r = client.get("/app/app.js")
    assert r.status_code == 200
    assert "no-store" not in r.headers.get("cache-control", "")
