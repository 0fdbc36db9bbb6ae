"""The CapabilityStatement is generated from the registry and needs no token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from resources.registry import resource_types


def test_metadata_lists_every_r4_type(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    types = [r["type"] for r in cs["rest"][0]["resource"]]
    assert types == list(resource_types())
    assert len(types) == 146


def test_metadata_declares_interactions_and_search_params(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    patient = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert {"read", "vread", "update", "delete", "create", "history-instance"} <= codes
    params = {p["name"]: p["type"] for p in patient["searchParam"]}
    assert params["identifier"] == "token"
    assert params["birthdate"] == "date"
    assert params["_id"] == "token"
    assert patient["versioning"] == "versioned-update"


def test_metadata_is_public_even_with_auth_on(app_factory) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on")) as client:
        assert client.get("/fhir/metadata").status_code == 200
        r = client.get("/fhir/Patient/1")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
