"""If-Match / If-None-Match / If-Modified-Since and Prefer handling."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.test_crud import FHIR_JSON, create


def test_if_match_current_version_succeeds(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    r = client.put(
        f"/fhir/Patient/{created['id']}",
        json={**created, "gender": "male"},
        headers={**FHIR_JSON, "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200


def test_if_match_stale_version_is_412(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    client.put(
        f"/fhir/Patient/{created['id']}", json={**created, "gender": "male"}, headers=FHIR_JSON
    )
    r = client.put(
        f"/fhir/Patient/{created['id']}",
        json={**created, "gender": "other"},
        headers={**FHIR_JSON, "If-Match": 'W/"1"'},
    )
    assert r.status_code == 412
    assert client.get(f"/fhir/Patient/{created['id']}").json()["gender"] == "male"


def test_if_match_garbage_is_400(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    r = client.put(
        f"/fhir/Patient/{created['id']}",
        json=created,
        headers={**FHIR_JSON, "If-Match": "nonsense"},
    )
    assert r.status_code == 400


def test_if_match_on_delete_stale_is_412(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    r = client.delete(f"/fhir/Patient/{created['id']}", headers={"If-Match": 'W/"5"'})
    assert r.status_code == 412
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 200


def test_if_none_match_current_is_304(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    r = client.get(f"/fhir/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 304
    assert r.content == b""


def test_if_none_match_old_version_returns_body(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    client.put(
        f"/fhir/Patient/{created['id']}", json={**created, "gender": "male"}, headers=FHIR_JSON
    )
    r = client.get(f"/fhir/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 200
    assert r.json()["gender"] == "male"


def test_if_modified_since_future_is_304(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    r = client.get(
        f"/fhir/Patient/{created['id']}",
        headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    )
    assert r.status_code == 304


def test_if_modified_since_past_returns_body(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    r = client.get(
        f"/fhir/Patient/{created['id']}",
        headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
    )
    assert r.status_code == 200


def test_prefer_return_minimal_has_no_body(client: TestClient, patient_body: dict) -> None:
    r = client.post(
        "/fhir/Patient", json=patient_body, headers={**FHIR_JSON, "Prefer": "return=minimal"}
    )
    assert r.status_code == 201
    assert r.content == b""
    assert "/fhir/Patient/" in r.headers["location"]


def test_prefer_return_operation_outcome(client: TestClient, patient_body: dict) -> None:
    r = client.post(
        "/fhir/Patient",
        json=patient_body,
        headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"},
    )
    assert r.status_code == 201
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["severity"] == "information"


# A well-formed entity-tag this server never issued (W/"does-not-match-999") names no version:
# it can never match, so If-Match fails with 412 (as a stale version does) and nothing changes.
# Only a syntactically broken header ("nonsense", unquoted) is a 400.
NOT_A_VERSION = ['W/"does-not-match-999"', '"abc"', 'W/""']


def test_if_match_naming_no_version_on_put_is_412(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    for tag in NOT_A_VERSION:
        r = client.put(
            f"/fhir/Patient/{created['id']}",
            json={**created, "gender": "male"},
            headers={**FHIR_JSON, "If-Match": tag},
        )
        assert r.status_code == 412, (tag, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    current = client.get(f"/fhir/Patient/{created['id']}").json()
    assert current["gender"] == patient_body["gender"]
    assert current["meta"]["versionId"] == "1"


def test_if_match_naming_no_version_on_put_creating_is_412(client: TestClient) -> None:
    r = client.put(
        "/fhir/Patient/never-created",
        json={"resourceType": "Patient", "id": "never-created"},
        headers={**FHIR_JSON, "If-Match": 'W/"does-not-match-999"'},
    )
    assert r.status_code == 412
    assert client.get("/fhir/Patient/never-created").status_code == 404


def test_if_match_naming_no_version_on_patch_is_412(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    r = client.patch(
        f"/fhir/Patient/{created['id']}",
        json=[{"op": "replace", "path": "/gender", "value": "male"}],
        headers={
            "Content-Type": "application/json-patch+json",
            "If-Match": 'W/"does-not-match-999"',
        },
    )
    assert r.status_code == 412, r.text
    assert client.get(f"/fhir/Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_if_match_naming_no_version_on_delete_is_412(
    client: TestClient, patient_body: dict
) -> None:
    created = create(client, patient_body)
    r = client.delete(
        f"/fhir/Patient/{created['id']}", headers={"If-Match": 'W/"does-not-match-999"'}
    )
    assert r.status_code == 412
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 200


def test_if_match_naming_no_version_on_conditional_update_is_412(
    client: TestClient, patient_body: dict
) -> None:
    created = create(client, patient_body)
    r = client.put(
        "/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.4.1|123-45-6789",
        json={**patient_body, "gender": "male"},
        headers={**FHIR_JSON, "If-Match": 'W/"does-not-match-999"'},
    )
    assert r.status_code == 412
    current = client.get(f"/fhir/Patient/{created['id']}").json()
    assert (current["gender"], current["meta"]["versionId"]) == (patient_body["gender"], "1")


def test_if_match_unterminated_quote_is_400(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    r = client.put(
        f"/fhir/Patient/{created['id']}",
        json=created,
        headers={**FHIR_JSON, "If-Match": 'W/"abc'},
    )
    assert r.status_code == 400


def test_if_none_match_naming_no_version_returns_the_body(
    client: TestClient, patient_body: dict
) -> None:
    """The mirror image: a tag that matches nothing satisfies If-None-Match (200, not 400)."""
    created = create(client, patient_body)
    r = client.get(
        f"/fhir/Patient/{created['id']}", headers={"If-None-Match": 'W/"does-not-match-999"'}
    )
    assert r.status_code == 200
    assert r.json()["id"] == created["id"]
