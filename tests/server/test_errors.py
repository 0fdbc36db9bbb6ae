"""Hostile and malformed input: always an OperationOutcome with the right status, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.server.test_crud import FHIR_JSON, create


def assert_outcome(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
    assert body["issue"][0]["diagnostics"]
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        ({"resourceType": "Patient", "birthDate": "1999-13-45"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "unknownElement": 1}, "Patient.unknownElement"),
        ({"resourceType": "Patient", "name": [{"given": "not-a-list"}]}, "Patient.name[0].given"),
        ({"resourceType": "Patient", "active": "yes"}, "Patient.active"),
        ({"resourceType": "Patient", "name": []}, "Patient.name"),
        ({"resourceType": "Patient", "gender": None}, "Patient.gender"),
        ({"resourceType": "Patient", "gender": ""}, "Patient.gender"),
        ({"resourceType": "Observation", "code": {"text": "x"}}, "Observation.status"),
        (
            {"resourceType": "Patient", "deceasedBoolean": True, "deceasedDateTime": "2020"},
            "Patient",
        ),
    ],
)
def test_invalid_resource_is_400_with_expression(
    client: TestClient, body: dict, expression: str
) -> None:
    r = client.post(f"/fhir/{body['resourceType']}", json=body, headers=FHIR_JSON)
    outcome = assert_outcome(r, 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert expression in expressions


def test_resource_type_mismatch_is_400(client: TestClient) -> None:
    r = client.post("/fhir/Observation", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert_outcome(r, 400)


def test_missing_resource_type_is_400(client: TestClient) -> None:
    assert_outcome(client.post("/fhir/Patient", json={"gender": "male"}, headers=FHIR_JSON), 400)


def test_body_not_an_object_is_400(client: TestClient) -> None:
    assert_outcome(client.post("/fhir/Patient", json=[1, 2], headers=FHIR_JSON), 400)


def test_malformed_json_is_400(client: TestClient) -> None:
    assert_outcome(
        client.post("/fhir/Patient", content=b'{"resourceType":', headers=FHIR_JSON), 400
    )


def test_empty_body_is_400(client: TestClient) -> None:
    assert_outcome(client.post("/fhir/Patient", content=b"", headers=FHIR_JSON), 400)


def test_xml_body_is_415(client: TestClient) -> None:
    r = client.post(
        "/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert_outcome(r, 415)


def test_missing_content_type_is_415(client: TestClient) -> None:
    assert_outcome(client.post("/fhir/Patient", content=b"{}"), 415)


def test_oversized_body_is_413(app_factory, patient_body: dict) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(max_body_bytes=2048)
    with TestClient(app) as client:
        big = {**patient_body, "name": [{"family": "x" * 5000}]}
        assert_outcome(client.post("/fhir/Patient", json=big, headers=FHIR_JSON), 413)
        assert client.get("/fhir/Patient/_history").json().get("entry") is None


def test_oversized_chunked_body_is_413(app_factory) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(max_body_bytes=2048)
    with TestClient(app) as client:

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b" " * 1024

        r = client.post("/fhir/Patient", content=chunks(), headers=FHIR_JSON)
        assert_outcome(r, 413)


def test_unknown_route_is_404_outcome(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/Patient/1/2/3/4"), 404)


def test_method_not_allowed_is_405_outcome(client: TestClient, patient_body: dict) -> None:
    created = create(client, patient_body)
    assert_outcome(
        client.post(f"/fhir/Patient/{created['id']}", json=created, headers=FHIR_JSON), 405
    )


def test_mongo_operator_in_body_is_stored_as_data(client: TestClient, patient_body: dict) -> None:
    """A "$where"-style key is not a FHIR element: rejected as unknown, never interpreted."""
    r = client.post("/fhir/Patient", json={**patient_body, "$where": "1"}, headers=FHIR_JSON)
    assert_outcome(r, 400)


def test_operator_like_id_in_url_is_400(client: TestClient) -> None:
    assert_outcome(client.get('/fhir/Patient/{"$gt":""}'), 400)


def test_unknown_dollar_segment_is_an_unknown_operation(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/Patient/$gt"), 404)


def test_history_bad_since_is_400(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/_history?_since=yesterday"), 400)


def test_history_bad_count_is_400(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/_history?_count=-1"), 400)


def test_history_bad_cursor_is_400(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/_history?_cursor=%%%"), 400)


def test_request_id_is_echoed(client: TestClient) -> None:
    r = client.get("/fhir/Patient/nope", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_hostile_request_id_is_replaced(client: TestClient) -> None:
    r = client.get("/fhir/Patient/nope", headers={"X-Request-Id": "a b\tc<script>"})
    assert r.headers["x-request-id"] != "a b\tc<script>"
    assert len(r.headers["x-request-id"]) == 32
