"""Batch Bundles over HTTP: entries succeed or fail on their own, each with its own outcome."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.server.bundles.helpers import HEADERS, bundle, entry, observation, patient, urn


def post(client: TestClient, body: Any) -> Any:
    return client.post("/fhir", json=body, headers=HEADERS)


def test_failed_entries_do_not_stop_the_others(client: TestClient) -> None:
    r = post(
        client,
        bundle(
            "batch",
            entry("POST", "Patient", patient("1")),
            entry("POST", "Observation", {"resourceType": "Observation", "status": "bogus"}),
            entry("GET", "Patient/missing"),
            entry("PUT", "Patient/b1", {**patient("2"), "id": "b1"}),
        ),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "400 Bad Request", "404 Not Found", "201 Created"]
    assert body["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient/b1").status_code == 200
    assert len(client.get("/fhir/Patient/_history").json()["entry"]) == 2


def test_batch_entries_may_not_reference_each_other(client: TestClient) -> None:
    p = urn()
    r = post(
        client,
        bundle(
            "batch",
            entry("POST", "Patient", patient(), p),
            entry("POST", "Observation", observation(p)),
        ),
    )
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["201 Created", "400 Bad Request"]


def test_if_match_failure_affects_only_its_entry(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
    r = post(
        client,
        bundle(
            "batch",
            entry("PUT", "Patient/p1", {**patient(family="A"), "id": "p1"}, ifMatch='W/"7"'),
            entry("POST", "Patient", patient("other")),
        ),
    )
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["412 Precondition Failed", "201 Created"]


def test_batch_delete_and_read_back(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
    r = post(client, bundle("batch", entry("GET", "Patient/p1"), entry("DELETE", "Patient/p1")))
    # DELETE runs before GET, as in a transaction
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["410 Gone", "204 No Content"]


def test_search_entry_returns_a_searchset(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient("s1"), headers=HEADERS)
    client.post("/fhir/Patient", json=patient("s2"), headers=HEADERS)
    r = post(client, bundle("batch", entry("GET", "Patient?identifier=urn:oid:1.2.3|s2")))
    e = r.json()["entry"][0]
    assert e["response"]["status"] == "200 OK"
    assert e["resource"]["type"] == "searchset"
    assert [x["resource"]["identifier"][0]["value"] for x in e["resource"]["entry"]] == ["s2"]


def test_unparseable_entry_fails_alone(client: TestClient) -> None:
    r = post(
        client,
        bundle("batch", entry("GET", "Nonsense/1"), entry("POST", "Patient", patient())),
    )
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses[0].startswith("400") and statuses[1] == "201 Created"


def test_capability_statement_declares_the_interactions(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    rest = cs["rest"][0]
    assert {"transaction", "batch"} <= {i["code"] for i in rest["interaction"]}
    patient_rest = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert "patch" in {i["code"] for i in patient_rest["interaction"]}
    assert patient_rest["conditionalCreate"] is True
    assert patient_rest["conditionalUpdate"] is True
    assert patient_rest["conditionalDelete"] == "single"
    assert "application/json-patch+json" in cs["patchFormat"]
