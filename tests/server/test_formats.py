"""Content negotiation: _format, Accept, _pretty."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.test_crud import create


def test_default_is_fhir_json(client: TestClient, patient_body: dict) -> None:
    p = create(client, patient_body)
    r = client.get(f"/fhir/Patient/{p['id']}")
    assert r.headers["content-type"] == "application/fhir+json; charset=utf-8"


def test_accept_application_json(client: TestClient, patient_body: dict) -> None:
    p = create(client, patient_body)
    r = client.get(f"/fhir/Patient/{p['id']}", headers={"Accept": "application/json"})
    assert r.headers["content-type"].startswith("application/json")


def test_accept_xml_only_is_406(client: TestClient, patient_body: dict) -> None:
    p = create(client, patient_body)
    r = client.get(f"/fhir/Patient/{p['id']}", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 406
    assert r.json()["resourceType"] == "OperationOutcome"


def test_accept_with_quality_picks_json(client: TestClient, patient_body: dict) -> None:
    p = create(client, patient_body)
    r = client.get(
        f"/fhir/Patient/{p['id']}",
        headers={"Accept": "application/fhir+xml;q=1.0, application/fhir+json;q=0.5"},
    )
    assert r.status_code == 200


def test_format_param_overrides_accept(client: TestClient, patient_body: dict) -> None:
    p = create(client, patient_body)
    r = client.get(f"/fhir/Patient/{p['id']}?_format=json", headers={"Accept": "application/xml"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")


def test_format_xml_is_406(client: TestClient, patient_body: dict) -> None:
    p = create(client, patient_body)
    assert client.get(f"/fhir/Patient/{p['id']}?_format=xml").status_code == 406


def test_pretty_indents(client: TestClient, patient_body: dict) -> None:
    p = create(client, patient_body)
    compact = client.get(f"/fhir/Patient/{p['id']}").text
    pretty = client.get(f"/fhir/Patient/{p['id']}?_pretty=true").text
    assert "\n" not in compact
    assert "\n  " in pretty


def test_json_content_type_accepted_for_writes(client: TestClient, patient_body: dict) -> None:
    r = client.post(
        "/fhir/Patient", json=patient_body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201


def test_content_type_with_charset_accepted(client: TestClient, patient_body: dict) -> None:
    r = client.post(
        "/fhir/Patient",
        json=patient_body,
        headers={"Content-Type": "application/fhir+json; charset=utf-8"},
    )
    assert r.status_code == 201
