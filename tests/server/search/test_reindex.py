"""``reindex_all`` rebuilds ``idx`` for stored resources (after a registry change)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.search import params, query
from server.search.index import extract_index, is_indexed
from server.search.reindex import reindex_all
from tests.server.search.conftest import ids


def test_reindex_restores_search(
    client: TestClient, app: FastAPI, patient_body: dict[str, object]
) -> None:
    rid = client.post("/fhir/Patient", json=patient_body).json()["id"]
    store = app.state.consilium.store
    store.resources("Patient").update_many({}, {"$set": {"idx": {}}})
    assert ids(client.get("/fhir/Patient?family=okafor").json()) == []
    counts = reindex_all(store, ["Patient", "Observation"])
    assert counts == {"Patient": 1}
    assert ids(client.get("/fhir/Patient?family=okafor").json()) == [f"Patient/{rid}"]


def test_reindex_skips_deleted(
    client: TestClient, app: FastAPI, patient_body: dict[str, object]
) -> None:
    rid = client.post("/fhir/Patient", json=patient_body).json()["id"]
    client.delete(f"/fhir/Patient/{rid}")
    assert reindex_all(app.state.consilium.store) == {"Patient": 0}
    assert ids(client.get("/fhir/Patient?family=okafor").json()) == []


def test_reindex_drops_indexes_of_removed_parameters(
    client: TestClient, app: FastAPI, patient_body: dict[str, object]
) -> None:
    client.post("/fhir/Patient", json=patient_body)
    coll = app.state.consilium.store.resources("Patient")
    coll.create_index("idx.retired-param", name="idx.retired-param")
    reindex_all(app.state.consilium.store, ["Patient"])
    names = set(coll.index_information())
    assert "idx.retired-param" not in names and "ks_1" in names


def test_custom_search_parameters_from_profiles() -> None:
    """The Consilium IG's own SearchParameters are extracted and queryable like R4's."""
    sr = {
        "resourceType": "ServiceRequest",
        "reasonCode": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0336", "code": "S"}]}
        ],
        "insurance": [{"reference": "Coverage/c1"}],
        "reasonReference": [{"reference": "Condition/k"}],
    }
    idx = extract_index("ServiceRequest", sr)
    assert "http://terminology.hl7.org/CodeSystem/v2-0336|S" in idx["reason-code"]
    assert idx["insurance"] == ["Coverage/c1"] and idx["reason-reference"] == ["Condition/k"]
    req = params.parse("ServiceRequest", [("insurance", "c1"), ("reason-code", "S")], strict=True)
    plan = query.build("ServiceRequest", req.clauses, lambda *a: [], lambda *a: [])
    assert {plan.filter and next(iter(plan.filter))} <= {"idx.insurance", "idx.reason-code"}
    assert is_indexed("ServiceRequest", "reason-code") and is_indexed("ServiceRequest", "insurance")
