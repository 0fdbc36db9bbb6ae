"""The CapabilityStatement is generated from the registry and needs no token."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from profiles.conformance import (
    IMPLEMENTATION_GUIDE,
    PROFILE_COVERAGE,
    PROFILE_EXPERT,
    PROFILE_REPORT,
    PROFILE_REQUEST,
    PROFILE_TASK,
)
from resources.registry import resource_types
from server.operations import registry
from tests.demo_copy import seed_demo


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


# ------------------------------------------------------------------ the guide in the statement
def test_metadata_names_the_implementation_guide(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    assert cs["implementationGuide"] == [IMPLEMENTATION_GUIDE]


def test_the_implementation_guide_is_seeded_and_readable(client: TestClient, app: Any) -> None:
    seed_demo(app.state.consilium, demo=False)
    ig = client.get("/fhir/ImplementationGuide/consilium").json()
    assert ig["url"] == IMPLEMENTATION_GUIDE
    assert ig["fhirVersion"] == ["4.0.1"]


@pytest.mark.parametrize(
    ("rtype", "profile"),
    [
        ("ServiceRequest", PROFILE_REQUEST),
        ("Task", PROFILE_TASK),
        ("DiagnosticReport", PROFILE_REPORT),
        ("Coverage", PROFILE_COVERAGE),
        ("PractitionerRole", PROFILE_EXPERT),
    ],
)
def test_metadata_lists_the_guide_profiles_per_type(
    client: TestClient, rtype: str, profile: str
) -> None:
    resources = {r["type"]: r for r in client.get("/fhir/metadata").json()["rest"][0]["resource"]}
    assert profile in resources[rtype]["supportedProfile"]


def test_metadata_lists_every_operation_where_it_is_served(client: TestClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    listed = {
        (r["type"], o["name"], o["definition"])
        for r in rest["resource"]
        for o in r.get("operation", [])
    }
    system = {(o["name"], o["definition"]) for o in rest.get("operation", [])}
    for op in registry().values():
        if op.at("system"):
            assert (op.name, op.url) in system, op.name
        if op.at("type") or op.at("instance"):
            for rtype in op.resource_types or resource_types():
                assert (rtype, op.name, op.url) in listed, (rtype, op.name)


@pytest.mark.parametrize(
    ("rtype", "name", "url"),
    [
        ("ValueSet", "expand", "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"),
        (
            "ValueSet",
            "validate-code",
            "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
        ),
        ("CodeSystem", "lookup", "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"),
        ("ConceptMap", "translate", "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate"),
        ("Patient", "validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"),
        ("Basic", "validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"),
    ],
)
def test_metadata_lists_the_terminology_and_validation_operations(
    client: TestClient, rtype: str, name: str, url: str
) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    ops = next(r for r in rest["resource"] if r["type"] == rtype).get("operation", [])
    assert {"name": name, "definition": url} in ops
