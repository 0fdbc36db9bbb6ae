"""Referential integrity over HTTP: dangling references, deleting referenced resources, cascade."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.server.bundles.helpers import HEADERS, bundle, entry, observation, patient, urn


def put_patient(client: TestClient, rid: str = "p1") -> None:
    assert (
        client.put(
            f"/fhir/Patient/{rid}", json={**patient(), "id": rid}, headers=HEADERS
        ).status_code
        == 201
    )


def test_reference_to_a_missing_resource_is_rejected(client: TestClient) -> None:
    r = client.post("/fhir/Observation", json=observation("Patient/ghost"), headers=HEADERS)
    assert r.status_code == 422
    assert "Patient/ghost" in r.json()["issue"][0]["diagnostics"]
    assert "entry" not in client.get("/fhir/Observation/_history").json()


def test_reference_to_a_deleted_resource_is_rejected(client: TestClient) -> None:
    put_patient(client)
    client.delete("/fhir/Patient/p1")
    r = client.post("/fhir/Observation", json=observation("Patient/p1"), headers=HEADERS)
    assert r.status_code == 422


def test_reference_to_an_existing_resource_is_accepted(client: TestClient) -> None:
    put_patient(client)
    r = client.post("/fhir/Observation", json=observation("Patient/p1/_history/1"), headers=HEADERS)
    assert r.status_code == 201


def test_external_contained_and_logical_references_are_not_checked(client: TestClient) -> None:
    obs = observation("http://elsewhere.example/fhir/Patient/1")
    obs["performer"] = [{"reference": "#p"}, {"identifier": {"value": "x"}}]
    obs["contained"] = [{"resourceType": "Practitioner", "id": "p"}]
    assert client.post("/fhir/Observation", json=obs, headers=HEADERS).status_code == 201


def test_reference_hidden_in_an_extension_is_checked(client: TestClient) -> None:
    put_patient(client)
    obs = observation("Patient/p1")
    obs["extension"] = [
        {"url": "http://example.org/x", "valueReference": {"reference": "Practitioner/ghost"}}
    ]
    assert client.post("/fhir/Observation", json=obs, headers=HEADERS).status_code == 422


def test_absolute_reference_on_our_base_is_local(app_factory: Any) -> None:
    with TestClient(app_factory(base_url="https://fhir.example.org")) as c:
        r = c.post(
            "/fhir/Observation",
            json=observation("https://fhir.example.org/fhir/Patient/ghost"),
            headers=HEADERS,
        )
        assert r.status_code == 422


def test_integrity_can_be_switched_off(app_factory: Any) -> None:
    with TestClient(app_factory(enforce_referential_integrity=False)) as c:
        assert (
            c.post(
                "/fhir/Observation", json=observation("Patient/ghost"), headers=HEADERS
            ).status_code
            == 201
        )
        c.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
        c.post("/fhir/Observation", json=observation("Patient/p1"), headers=HEADERS)
        assert c.delete("/fhir/Patient/p1").status_code == 204


def test_deleting_a_referenced_resource_is_409(client: TestClient) -> None:
    put_patient(client)
    obs_id = client.post(
        "/fhir/Observation", json=observation("Patient/p1"), headers=HEADERS
    ).json()["id"]
    r = client.delete("/fhir/Patient/p1")
    assert r.status_code == 409
    assert f"Observation/{obs_id}" in r.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient/p1").status_code == 200


def test_delete_is_allowed_once_the_referrer_is_gone(client: TestClient) -> None:
    put_patient(client)
    obs_id = client.post(
        "/fhir/Observation", json=observation("Patient/p1"), headers=HEADERS
    ).json()["id"]
    assert client.delete(f"/fhir/Observation/{obs_id}").status_code == 204
    assert client.delete("/fhir/Patient/p1").status_code == 204


def test_delete_is_allowed_once_the_referrer_no_longer_points_here(client: TestClient) -> None:
    put_patient(client)
    put_patient(client, "p2")
    obs = client.post("/fhir/Observation", json=observation("Patient/p1"), headers=HEADERS).json()
    obs["subject"] = {"reference": "Patient/p2"}
    assert (
        client.put(f"/fhir/Observation/{obs['id']}", json=obs, headers=HEADERS).status_code == 200
    )
    assert client.delete("/fhir/Patient/p1").status_code == 204


def test_cascade_delete_removes_the_referrers(client: TestClient) -> None:
    put_patient(client)
    obs_id = client.post(
        "/fhir/Observation", json=observation("Patient/p1"), headers=HEADERS
    ).json()["id"]
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "x"},
        "result": [{"reference": f"Observation/{obs_id}"}],
    }
    rep_id = client.post("/fhir/DiagnosticReport", json=report, headers=HEADERS).json()["id"]
    r = client.delete("/fhir/Patient/p1?_cascade=delete")
    assert r.status_code == 204, r.text
    for path in ("Patient/p1", f"Observation/{obs_id}", f"DiagnosticReport/{rep_id}"):
        assert client.get(f"/fhir/{path}").status_code == 410, path


def test_unknown_cascade_mode_is_400(client: TestClient) -> None:
    put_patient(client)
    assert client.delete("/fhir/Patient/p1?_cascade=everything").status_code == 400
    assert client.get("/fhir/Patient/p1").status_code == 200


def test_transaction_entries_may_reference_each_other_in_any_order(client: TestClient) -> None:
    a, b = urn(), urn()
    first = {"resourceType": "RelatedPerson", "patient": {"reference": b}}
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction",
            entry("POST", "RelatedPerson", first, a),
            entry("POST", "Patient", patient(), b),
        ),
        headers=HEADERS,
    )
    assert r.status_code == 200, r.text


def test_transaction_may_delete_a_resource_with_its_referrer(client: TestClient) -> None:
    put_patient(client)
    obs_id = client.post(
        "/fhir/Observation", json=observation("Patient/p1"), headers=HEADERS
    ).json()["id"]
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction", entry("DELETE", "Patient/p1"), entry("DELETE", f"Observation/{obs_id}")
        ),
        headers=HEADERS,
    )
    assert r.status_code == 200, r.text


def test_transaction_deleting_a_still_referenced_resource_rolls_back(client: TestClient) -> None:
    put_patient(client)
    client.post("/fhir/Observation", json=observation("Patient/p1"), headers=HEADERS)
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction", entry("DELETE", "Patient/p1"), entry("POST", "Patient", patient("new"))
        ),
        headers=HEADERS,
    )
    assert r.status_code == 409
    assert client.get("/fhir/Patient/p1").status_code == 200
    assert len(client.get("/fhir/Patient/_history").json()["entry"]) == 1


def test_transaction_with_a_dangling_reference_rolls_back(client: TestClient) -> None:
    r = client.post(
        "/fhir",
        json=bundle(
            "transaction",
            entry("POST", "Patient", patient()),
            entry("POST", "Observation", observation("Patient/ghost")),
        ),
        headers=HEADERS,
    )
    assert r.status_code == 422
    assert "entry" not in client.get("/fhir/_history").json()
