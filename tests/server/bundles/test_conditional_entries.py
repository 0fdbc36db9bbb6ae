"""Conditional entries in transactions and batches: ``POST Patient?criteria`` and ``ifMatch``.

A POST whose request.url carries criteria is a conditional create (as over REST). An ifMatch
that cannot match (a stale version, a tag naming no version, a resource that does not exist)
fails a transaction with 412 and nothing of the Bundle is written; in a batch only that entry
fails.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.bundles.helpers import HEADERS, bundle, entry, patient

SYSTEM = "urn:oid:1.2.3"  # the helpers' patient() identifier system


def post(client: TestClient, body: Any) -> Any:
    return client.post("/fhir", json=body, headers=HEADERS)


def ids_with(client: TestClient, value: str) -> list[str]:
    found = client.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|{value}"}).json()
    return sorted(e["resource"]["id"] for e in found.get("entry", []))


def statuses(r: Any) -> list[str]:
    return [e["response"]["status"] for e in r.json()["entry"]]


# ------------------------------------------------------------------ conditional create by URL
@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_post_with_criteria_creates_then_matches(client: TestClient, kind: str) -> None:
    def send() -> Any:
        return post(
            client, bundle(kind, entry("POST", f"Patient?identifier={SYSTEM}|c1", patient("c1")))
        )

    first = send()
    assert statuses(first) == ["201 Created"], first.text
    again = send()
    assert statuses(again) == ["200 OK"], again.text
    created_id = first.json()["entry"][0]["response"]["location"].split("/")[1]
    assert again.json()["entry"][0]["response"]["location"].split("/")[1] == created_id
    assert ids_with(client, "c1") == [created_id]


def test_post_with_criteria_matching_several_fails_the_transaction(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient("dup"), headers=HEADERS)
    client.post("/fhir/Patient", json=patient("dup"), headers=HEADERS)
    r = post(
        client,
        bundle(
            "transaction",
            entry("PUT", "Patient/tx-bystander", {**patient("by"), "id": "tx-bystander"}),
            entry("POST", f"Patient?identifier={SYSTEM}|dup", patient("dup")),
        ),
    )
    assert r.status_code == 412, r.text
    assert len(ids_with(client, "dup")) == 2
    assert client.get("/fhir/Patient/tx-bystander").status_code == 404


def test_post_with_criteria_matching_several_fails_only_its_batch_entry(
    client: TestClient,
) -> None:
    client.post("/fhir/Patient", json=patient("dup"), headers=HEADERS)
    client.post("/fhir/Patient", json=patient("dup"), headers=HEADERS)
    r = post(
        client,
        bundle(
            "batch",
            entry("POST", f"Patient?identifier={SYSTEM}|dup", patient("dup")),
            entry("POST", f"Patient?identifier={SYSTEM}|fresh", patient("fresh")),
        ),
    )
    assert statuses(r) == ["412 Precondition Failed", "201 Created"]
    assert len(ids_with(client, "dup")) == 2
    assert len(ids_with(client, "fresh")) == 1


def test_same_criteria_twice_in_a_transaction_is_one_resource(client: TestClient) -> None:
    url = f"Patient?identifier={SYSTEM}|twin"
    r = post(
        client,
        bundle(
            "transaction", entry("POST", url, patient("twin")), entry("POST", url, patient("twin"))
        ),
    )
    assert r.status_code == 200, r.text
    assert len(ids_with(client, "twin")) == 1


def test_url_criteria_equal_to_if_none_exist_is_accepted(client: TestClient) -> None:
    r = post(
        client,
        bundle(
            "transaction",
            entry(
                "POST",
                f"Patient?identifier={SYSTEM}|same",
                patient("same"),
                ifNoneExist=f"identifier={SYSTEM}|same",
            ),
        ),
    )
    assert statuses(r) == ["201 Created"], r.text


def _conflicting(kind: str) -> dict[str, Any]:
    return bundle(
        kind,
        entry(
            "POST",
            f"Patient?identifier={SYSTEM}|url",
            patient("url"),
            ifNoneExist=f"identifier={SYSTEM}|header",
        ),
    )


def test_url_criteria_conflicting_with_if_none_exist_fail_the_transaction(
    client: TestClient,
) -> None:
    r = post(client, _conflicting("transaction"))
    assert r.status_code == 400, r.text
    assert ids_with(client, "url") == [] and ids_with(client, "header") == []


def test_url_criteria_conflicting_with_if_none_exist_fail_their_batch_entry(
    client: TestClient,
) -> None:
    r = post(client, _conflicting("batch"))
    assert statuses(r) == ["400 Bad Request"]
    assert ids_with(client, "url") == [] and ids_with(client, "header") == []


@pytest.mark.parametrize("query", ["not-a-param=1", "_count=1", "identifier[$ne]=x"])
def test_hostile_criteria_in_an_entry_fail_it_with_400(client: TestClient, query: str) -> None:
    r = post(client, bundle("transaction", entry("POST", f"Patient?{query}", patient("h"))))
    assert r.status_code == 400, r.text
    assert ids_with(client, "h") == []


def test_operator_value_in_entry_criteria_is_data(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient("x1"), headers=HEADERS)
    client.post("/fhir/Patient", json=patient("x2"), headers=HEADERS)
    r = post(
        client,
        bundle("transaction", entry("POST", 'Patient?identifier={"$ne":null}', patient("o"))),
    )
    assert statuses(r) == ["201 Created"], r.text


# ----------------------------------------------------------------------------------- ifMatch
def _seed(client: TestClient) -> None:
    client.put("/fhir/Patient/im", json={**patient("im"), "id": "im"}, headers=HEADERS)
    client.put("/fhir/Patient/im", json={**patient("im", "Second"), "id": "im"}, headers=HEADERS)
    client.put("/fhir/Patient/doomed", json={**patient("d"), "id": "doomed"}, headers=HEADERS)


FAILING_IF_MATCH = [
    ("stale version", "PUT", "Patient/im", 'W/"1"'),
    ("no version at all", "PUT", "Patient/im", 'W/"does-not-match-999"'),
    ("strong non-numeric tag", "PUT", "Patient/im", '"abc"'),
    ("missing resource", "PUT", "Patient/never", 'W/"1"'),
    ("missing resource, no version", "PUT", "Patient/never", 'W/"does-not-match-999"'),
    ("patch, no version", "PATCH", "Patient/im", 'W/"does-not-match-999"'),
    ("delete, no version", "DELETE", "Patient/im", 'W/"does-not-match-999"'),
]


def _if_match_entry(method: str, url: str, tag: str) -> dict[str, Any]:
    rid = url.split("/")[1]
    if method == "PUT":
        return entry(method, url, {**patient("im", "Stale"), "id": rid}, ifMatch=tag)
    if method == "PATCH":
        ops = {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "operation",
                    "part": [
                        {"name": "type", "valueCode": "replace"},
                        {"name": "path", "valueString": "Patient.gender"},
                        {"name": "value", "valueCode": "male"},
                    ],
                }
            ],
        }
        return entry(method, url, ops, ifMatch=tag)
    return entry(method, url, ifMatch=tag)


@pytest.mark.parametrize(("name", "method", "url", "tag"), FAILING_IF_MATCH)
def test_failing_if_match_fails_the_transaction_with_412_and_writes_nothing(
    client: TestClient, name: str, method: str, url: str, tag: str
) -> None:
    _seed(client)
    r = post(
        client,
        bundle(
            "transaction",
            entry("DELETE", "Patient/doomed"),
            entry("POST", "Patient", patient("tx-new")),
            entry("PUT", "Patient/tx-put", {**patient("tx-put"), "id": "tx-put"}),
            _if_match_entry(method, url, tag),
        ),
    )
    assert r.status_code == 412, (name, r.text)
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[3]" in r.json()["issue"][0]["expression"]
    current = client.get("/fhir/Patient/im").json()
    assert (current["name"][0]["family"], current["meta"]["versionId"]) == ("Second", "2")
    assert client.get("/fhir/Patient/doomed").status_code == 200  # the DELETE was rolled back
    assert ids_with(client, "tx-new") == []
    assert client.get("/fhir/Patient/tx-put").status_code == 404
    assert client.get("/fhir/Patient/never").status_code == 404


@pytest.mark.parametrize(("name", "method", "url", "tag"), FAILING_IF_MATCH)
def test_failing_if_match_fails_only_its_batch_entry(
    client: TestClient, name: str, method: str, url: str, tag: str
) -> None:
    _seed(client)
    r = post(
        client,
        bundle(
            "batch",
            entry("POST", "Patient", patient("b-new")),
            _if_match_entry(method, url, tag),
            entry("PUT", "Patient/b-put", {**patient("b-put"), "id": "b-put"}),
        ),
    )
    assert r.status_code == 200, r.text
    assert statuses(r) == ["201 Created", "412 Precondition Failed", "201 Created"], name
    assert client.get("/fhir/Patient/im").json()["meta"]["versionId"] == "2"
    assert len(ids_with(client, "b-new")) == 1
    assert client.get("/fhir/Patient/b-put").status_code == 200


def test_broken_if_match_syntax_is_still_400(client: TestClient) -> None:
    _seed(client)
    r = post(
        client,
        bundle("transaction", _if_match_entry("PUT", "Patient/im", 'W/"unterminated')),
    )
    assert r.status_code == 400, r.text
