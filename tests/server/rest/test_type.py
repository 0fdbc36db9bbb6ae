"""``POST [type]?criteria`` is a conditional create, exactly like ``If-None-Exist``.

0 matches → 201 and a new resource, 1 → 200 with the existing one, several → 412 and nothing
written. The URL's criteria and If-None-Exist together must be the same criteria (400 otherwise).
Conditional criteria are always parsed strictly: an unknown parameter would otherwise drop out
and the create would match (or refuse) on less than the client asked for.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

FHIR = {"Content-Type": "application/fhir+json"}
SYSTEM = "urn:oid:1.2.3"


def patient(value: str, family: str = "Okafor") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": value}],
        "name": [{"family": family}],
    }


def post(client: TestClient, query: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"/fhir/Patient{query}", json=body, headers={**FHIR, **headers})


def ids_with(client: TestClient, value: str) -> list[str]:
    bundle = client.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|{value}"}).json()
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


def all_patient_ids(client: TestClient) -> list[str]:
    bundle = client.get("/fhir/Patient", params={"_count": "1000"}).json()
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


def test_no_match_creates(client: TestClient) -> None:
    r = post(client, f"?identifier={SYSTEM}|new-1", patient("new-1"))
    assert r.status_code == 201, r.text
    assert r.headers["location"].startswith(f"http://testserver/fhir/Patient/{r.json()['id']}/")
    assert ids_with(client, "new-1") == [r.json()["id"]]


def test_one_match_returns_it_with_200(client: TestClient) -> None:
    first = post(client, f"?identifier={SYSTEM}|once", patient("once")).json()
    r = post(client, f"?identifier={SYSTEM}|once", patient("once", family="Changed"))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == first["id"]
    assert r.json()["name"][0]["family"] == "Okafor"  # the stored one, not the new body
    assert r.json()["meta"]["versionId"] == "1"
    assert ids_with(client, "once") == [first["id"]]


def test_several_matches_are_412_and_write_nothing(client: TestClient) -> None:
    a = client.post("/fhir/Patient", json=patient("twice"), headers=FHIR).json()["id"]
    b = client.post("/fhir/Patient", json=patient("twice"), headers=FHIR).json()["id"]
    r = post(client, f"?identifier={SYSTEM}|twice", patient("twice"))
    assert r.status_code == 412, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert ids_with(client, "twice") == sorted([a, b])


def test_url_encoded_criteria_match(client: TestClient) -> None:
    first = post(client, "?identifier=urn%3Aoid%3A1.2.3%7Cenc", patient("enc")).json()
    r = post(client, f"?identifier={SYSTEM}|enc", patient("enc"))
    assert (r.status_code, r.json()["id"]) == (200, first["id"])


def test_several_parameters_all_count(client: TestClient) -> None:
    """``identifier`` and ``family`` together: a patient with the identifier but another family
    does not match, so a new one is created."""
    post(client, f"?identifier={SYSTEM}|both", patient("both", family="One"))
    r = post(client, f"?identifier={SYSTEM}|both&family=Two", patient("both", family="Two"))
    assert r.status_code == 201
    assert len(ids_with(client, "both")) == 2


def test_format_parameters_are_not_criteria(client: TestClient) -> None:
    """``?_format=json`` alone is a plain create: two posts, two resources."""
    post(client, "?_format=json", patient("fmt"))
    post(client, "?_format=json&_pretty=true", patient("fmt"))
    assert len(ids_with(client, "fmt")) == 2


def test_same_criteria_in_url_and_if_none_exist_are_one_condition(client: TestClient) -> None:
    first = post(client, f"?identifier={SYSTEM}|hdr", patient("hdr")).json()
    r = post(
        client,
        f"?identifier={SYSTEM}|hdr&family=Okafor",
        patient("hdr"),
        **{"If-None-Exist": f"family=Okafor&identifier={SYSTEM}|hdr"},
    )
    assert (r.status_code, r.json()["id"]) == (200, first["id"])


def test_different_criteria_in_url_and_if_none_exist_are_400(client: TestClient) -> None:
    before = all_patient_ids(client)
    r = post(
        client,
        f"?identifier={SYSTEM}|url",
        patient("url"),
        **{"If-None-Exist": f"identifier={SYSTEM}|header"},
    )
    assert r.status_code == 400
    assert "If-None-Exist" in r.json()["issue"][0]["diagnostics"]
    assert all_patient_ids(client) == before


def test_if_none_exist_alone_still_works(client: TestClient) -> None:
    first = post(client, "", patient("alone"), **{"If-None-Exist": f"identifier={SYSTEM}|alone"})
    assert first.status_code == 201
    r = post(client, "", patient("alone"), **{"If-None-Exist": f"identifier={SYSTEM}|alone"})
    assert (r.status_code, r.json()["id"]) == (200, first.json()["id"])


@pytest.mark.parametrize("handling", ["strict", "lenient"])
@pytest.mark.parametrize(
    "query",
    [
        "?not-a-param=1",
        "?identifier[$ne]=x",
        "?_count=1",
        "?_sort=family",
        "?_include=Patient:organization",
        "?identifier:nonsense=x",
        "?family[$regex]=.*",
    ],
)
def test_hostile_criteria_are_400_and_create_nothing(
    client: TestClient, query: str, handling: str
) -> None:
    before = all_patient_ids(client)
    r = post(client, query, patient("hostile"), Prefer=f"handling={handling}")
    assert r.status_code == 400, (query, r.text)
    assert r.json()["resourceType"] == "OperationOutcome"
    assert all_patient_ids(client) == before


@pytest.mark.parametrize("query", ['?identifier={"$ne":null}', '?_id={"$gt":""}'])
def test_operators_in_values_are_data(client: TestClient, query: str) -> None:
    """An operator as a value matches nothing; interpreted, it would match both existing
    patients and answer 412 (or 200 with one of them)."""
    client.post("/fhir/Patient", json=patient("op-1"), headers=FHIR)
    client.post("/fhir/Patient", json=patient("op-2"), headers=FHIR)
    r = post(client, query, patient("op-new"))
    assert r.status_code == 201, r.text
    assert ids_with(client, "op-new") == [r.json()["id"]]
