"""Far-future dates (the 9999 open-end sentinel) through HTTP: stored and searchable, never a
500 (server/search/text.py ``parse_date`` clamps a range ending after 9999-12-31)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Patient", "birthDate": "9999-12-31"},
        {"resourceType": "Patient", "deceasedDateTime": "9999-12-31T23:59:59-05:00"},
        {
            "resourceType": "Coverage",
            "status": "active",
            "period": {"end": "9999"},
            "beneficiary": {"reference": "Patient/far-future"},
            "payor": [{"display": "x"}],
        },
    ],
)
def test_far_future_dates_are_stored_not_a_500(client: TestClient, body: dict[str, Any]) -> None:
    if body["resourceType"] == "Coverage":
        client.put("/fhir/Patient/far-future", json={"resourceType": "Patient", "id": "far-future"})
    r = client.post(f"/fhir/{body['resourceType']}", json=body)
    assert r.status_code == 201, r.text


def test_an_open_end_9999_date_is_found(client: TestClient) -> None:
    rid = client.post(
        "/fhir/Patient", json={"resourceType": "Patient", "birthDate": "9999-12-31"}
    ).json()["id"]
    found = client.get("/fhir/Patient?birthdate=9999-12-31").json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [rid]
    assert client.get("/fhir/Patient?birthdate=gt9000").json().get("entry")
