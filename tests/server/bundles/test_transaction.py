"""Transaction Bundles over HTTP: atomicity, processing order, reference rewriting, limits."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.server.bundles.helpers import HEADERS, bundle, entry, observation, patient, urn


def post(client: TestClient, body: Any, **headers: str) -> Any:
    return client.post("/fhir", json=body, headers={**HEADERS, **headers})


def ids_of(response: Any) -> list[str]:
    return [e["response"]["location"].split("/")[1] for e in response.json()["entry"]]


def test_transaction_creates_every_entry(client: TestClient) -> None:
    p, o = urn(), urn()
    r = post(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), p),
            entry("POST", "Observation", observation(p), o),
        ),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    for e in body["entry"]:
        assert e["response"]["etag"] == 'W/"1"'
        assert e["response"]["lastModified"]
        assert e["response"]["location"].endswith("/_history/1")
        assert client.get(e["fullUrl"].removeprefix("http://testserver")).status_code == 200


def test_urn_uuid_references_are_rewritten_everywhere(client: TestClient) -> None:
    p = urn()
    obs = observation(p)
    obs["extension"] = [{"url": "http://example.org/ext", "valueReference": {"reference": p}}]
    obs["contained"] = [
        {
            "resourceType": "Provenance",
            "id": "prov",
            "recorded": "2024-01-01T00:00:00Z",
            "target": [{"reference": p}],
            "agent": [{"who": {"reference": p}}],
        }
    ]
    obs["text"] = {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><a href="{p}">patient</a></div>',
    }
    obs["focus"] = [{"reference": "#prov"}]
    r = post(
        client,
        bundle(
            "transaction",
            entry("POST", "Observation", obs, urn()),
            entry("POST", "Patient", patient(), p),
        ),
    )
    assert r.status_code == 200, r.text
    obs_id, pat_id = ids_of(r)
    stored = client.get(f"/fhir/Observation/{obs_id}").json()
    ref = f"Patient/{pat_id}"
    assert stored["subject"]["reference"] == ref
    assert stored["extension"][0]["valueReference"]["reference"] == ref
    assert stored["contained"][0]["target"][0]["reference"] == ref
    assert stored["contained"][0]["agent"][0]["who"]["reference"] == ref
    assert f'href="{ref}"' in stored["text"]["div"]
    assert stored["focus"][0]["reference"] == "#prov"
    assert "urn:uuid" not in r.text.replace(p, "")


def test_put_with_client_id_and_absolute_full_url(client: TestClient) -> None:
    full = "http://testserver/fhir/Patient/pat-1"
    r = post(
        client,
        bundle(
            "transaction",
            entry("PUT", "Patient/pat-1", {**patient(), "id": "pat-1"}, full),
            entry("POST", "Observation", observation(full), urn()),
        ),
    )
    assert r.status_code == 200, r.text
    obs_id = ids_of(r)[1]
    assert (
        client.get(f"/fhir/Observation/{obs_id}").json()["subject"]["reference"] == "Patient/pat-1"
    )


def test_rollback_when_the_last_entry_fails(client: TestClient) -> None:
    p = urn()
    bad = {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}}
    r = post(
        client,
        bundle(
            "transaction",
            entry("PUT", "Patient/keep-out", {**patient(), "id": "keep-out"}),
            entry("POST", "Patient", patient("999"), p),
            entry("POST", "Observation", observation(p), urn()),
            entry("POST", "Observation", bad, urn()),
        ),
    )
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[3]" in outcome["issue"][0]["expression"]
    assert client.get("/fhir/Patient/keep-out").status_code == 404
    assert client.get("/fhir/Patient/keep-out/_history").status_code == 404
    for path in ("/fhir/_history", "/fhir/Patient/_history", "/fhir/Observation/_history"):
        assert "entry" not in client.get(path).json(), path


def test_failing_entry_status_is_the_transaction_status(client: TestClient) -> None:
    r = post(
        client,
        bundle("transaction", entry("POST", "Patient", patient()), entry("DELETE", "Patient/nope")),
    )
    assert r.status_code == 404
    assert "Bundle.entry[1]" in r.json()["issue"][0]["expression"]
    assert "entry" not in client.get("/fhir/Patient/_history").json()


def test_if_match_conflict_rolls_the_transaction_back(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
    client.put("/fhir/Patient/p1", json={**patient(family="Second"), "id": "p1"}, headers=HEADERS)
    r = post(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient("new")),
            entry("PUT", "Patient/p1", {**patient(family="Stale"), "id": "p1"}, ifMatch='W/"1"'),
        ),
    )
    assert r.status_code == 412, r.text
    current = client.get("/fhir/Patient/p1").json()
    assert current["name"][0]["family"] == "Second"
    assert current["meta"]["versionId"] == "2"
    history = client.get("/fhir/Patient/_history").json()["entry"]
    assert len(history) == 2  # the POSTed patient was rolled back too


def test_if_match_in_transaction_succeeds_on_the_current_version(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
    r = post(
        client,
        bundle(
            "transaction",
            entry("PUT", "Patient/p1", {**patient(family="New"), "id": "p1"}, ifMatch='W/"1"'),
        ),
    )
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["etag"] == 'W/"2"'


def test_if_none_match_star_on_put_refuses_to_overwrite(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
    r = post(
        client,
        bundle(
            "transaction",
            entry("PUT", "Patient/p1", {**patient(family="X"), "id": "p1"}, ifNoneMatch="*"),
        ),
    )
    assert r.status_code == 412


def test_processing_order_delete_post_put_get(client: TestClient) -> None:
    client.put("/fhir/Patient/gone", json={**patient(), "id": "gone"}, headers=HEADERS)
    r = post(
        client,
        bundle(
            "transaction",
            entry("GET", "Patient/later"),
            entry("PUT", "Patient/later", {**patient(family="Later"), "id": "later"}),
            entry("DELETE", "Patient/gone"),
        ),
    )
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["200 OK", "201 Created", "204 No Content"]
    assert entries[0]["resource"]["name"][0]["family"] == "Later"
    assert client.get("/fhir/Patient/gone").status_code == 410


def test_get_entry_with_if_none_match_is_not_modified(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
    r = post(
        client,
        bundle(
            "batch",
            entry("GET", "Patient/p1", ifNoneMatch='W/"1"'),
            entry("GET", "Patient/p1/_history/1"),
        ),
    )
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["304 Not Modified", "200 OK"]


def test_get_entry_with_if_modified_since(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
    r = post(
        client,
        bundle(
            "batch",
            entry("GET", "Patient/p1", ifModifiedSince="2999-01-01T00:00:00Z"),
            entry("GET", "Patient/p1", ifModifiedSince="2000-01-01T00:00:00Z"),
        ),
    )
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["304 Not Modified", "200 OK"]


def test_patch_entries_in_a_transaction(client: TestClient) -> None:
    import base64

    import orjson

    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=HEADERS)
    json_patch = [{"op": "replace", "path": "/name/0/family", "value": "Patched"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(orjson.dumps(json_patch)).decode(),
    }
    fhirpath = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "Patient"},
                    {"name": "name", "valueString": "gender"},
                    {"name": "value", "valueCode": "female"},
                ],
            }
        ],
    }
    r = post(
        client,
        bundle(
            "transaction",
            entry("PATCH", "Patient/p1", binary),
            entry("PATCH", "Patient/p1", fhirpath),
        ),
    )
    assert r.status_code == 200, r.text
    current = client.get("/fhir/Patient/p1").json()
    assert (current["name"][0]["family"], current["gender"], current["meta"]["versionId"]) == (
        "Patched",
        "female",
        "3",
    )


def test_prefer_minimal_omits_resources(client: TestClient) -> None:
    r = post(
        client, bundle("transaction", entry("POST", "Patient", patient())), Prefer="return=minimal"
    )
    e = r.json()["entry"][0]
    assert "resource" not in e and e["response"]["status"] == "201 Created"


def test_prefer_operation_outcome_per_entry(client: TestClient) -> None:
    r = post(
        client,
        bundle("transaction", entry("POST", "Patient", patient())),
        Prefer="return=OperationOutcome",
    )
    e = r.json()["entry"][0]
    assert e["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_too_many_entries_is_413(app_factory: Any) -> None:
    with TestClient(app_factory(max_bundle_entries=2)) as c:
        r = post(
            c, bundle("transaction", *[entry("POST", "Patient", patient(str(i))) for i in range(3)])
        )
        assert r.status_code == 413
        assert r.json()["issue"][0]["code"] == "too-costly"
        assert "entry" not in c.get("/fhir/Patient/_history").json()


def test_too_many_bytes_is_413(app_factory: Any) -> None:
    with TestClient(app_factory(max_body_bytes=2048)) as c:
        r = post(
            c,
            bundle("transaction", *[entry("POST", "Patient", patient(str(i))) for i in range(40)]),
        )
        assert r.status_code == 413
        assert r.json()["resourceType"] == "OperationOutcome"


def test_unresolved_urn_reference_is_400(client: TestClient) -> None:
    r = post(client, bundle("transaction", entry("POST", "Observation", observation(urn()))))
    assert r.status_code == 400
    assert "fullUrl" in r.json()["issue"][0]["diagnostics"]


def test_duplicate_full_url_is_400(client: TestClient) -> None:
    p = urn()
    r = post(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient(), p),
            entry("POST", "Patient", patient(), p),
        ),
    )
    assert r.status_code == 400


def test_empty_transaction_is_fine(client: TestClient) -> None:
    r = post(client, {"resourceType": "Bundle", "type": "transaction"})
    assert r.status_code == 200
    assert r.json()["type"] == "transaction-response"


HOSTILE: list[tuple[str, Any]] = [
    ("not a bundle", patient()),
    ("searchset bundle", {"resourceType": "Bundle", "type": "searchset"}),
    (
        "entry without request",
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient()}]},
    ),
    ("unknown method", bundle("transaction", entry("FETCH", "Patient"))),
    ("POST to an id", bundle("transaction", entry("POST", "Patient/x", patient()))),
    ("unknown type", bundle("transaction", entry("POST", "Nonsense", patient()))),
    (
        "other server",
        bundle("transaction", entry("PUT", "http://elsewhere.org/fhir/Patient/x", patient())),
    ),
    ("PUT without id or criteria", bundle("transaction", entry("PUT", "Patient", patient()))),
    ("POST without resource", bundle("transaction", entry("POST", "Patient"))),
    ("operator in id", bundle("transaction", entry("GET", "Patient/$where"))),
    ("type mismatch", bundle("transaction", entry("POST", "Observation", patient()))),
    ("entry is a list", {"resourceType": "Bundle", "type": "batch", "entry": {"x": 1}}),
    (
        "ifMatch not an etag",
        bundle(
            "transaction", entry("PUT", "Patient/a", {**patient(), "id": "a"}, ifMatch="yesterday")
        ),
    ),
]


def test_hostile_bundles_are_400(client: TestClient) -> None:
    for name, body in HOSTILE:
        r = post(client, body)
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert r.json()["resourceType"] == "OperationOutcome", name
    assert "entry" not in client.get("/fhir/_history").json()


def test_resending_a_bundle_of_puts_changes_nothing(client: TestClient) -> None:
    def file() -> dict[str, Any]:
        return bundle(
            "transaction",
            entry("PUT", "Patient/same", {**patient(), "id": "same"}),
            entry("PUT", "Observation/same-obs", {**observation("Patient/same"), "id": "same-obs"}),
        )

    assert post(client, file()).status_code == 200
    history = client.get("/fhir/_history").json()["entry"]
    again = post(client, file())
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK", "200 OK"]
    assert [e["response"]["etag"] for e in again.json()["entry"]] == ['W/"1"', 'W/"1"']
    assert client.get("/fhir/_history").json()["entry"] == history


def test_bundle_reads_see_the_bundles_own_buffered_creates(client: TestClient) -> None:
    p = urn()
    r = post(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", patient("buffered"), p),
            entry("GET", "Patient?identifier=urn:oid:1.2.3|buffered"),
        ),
    )
    assert r.status_code == 200, r.text
    searchset = r.json()["entry"][1]["resource"]
    assert len(searchset["entry"]) == 1
