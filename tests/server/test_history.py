"""History at instance, type and system level."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from fastapi.testclient import TestClient

from tests.server.test_crud import FHIR_JSON, create


def test_instance_history_newest_first_with_request_and_response(
    client: TestClient, patient_body: dict
) -> None:
    p = create(client, patient_body)
    client.put(f"/fhir/Patient/{p['id']}", json={**p, "gender": "male"}, headers=FHIR_JSON)
    client.delete(f"/fhir/Patient/{p['id']}")
    bundle = client.get(f"/fhir/Patient/{p['id']}/_history").json()
    assert bundle["type"] == "history"
    methods = [e["request"]["method"] for e in bundle["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in bundle["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in bundle["entry"][0]
    assert bundle["entry"][2]["response"]["status"].startswith("201")


def test_instance_history_of_unknown_is_404(client: TestClient) -> None:
    assert client.get("/fhir/Patient/nobody/_history").status_code == 404


def test_type_history_only_that_type(client: TestClient, patient_body: dict) -> None:
    create(client, patient_body)
    create(client, {"resourceType": "Organization", "name": "Northgate Clinic"})
    bundle = client.get("/fhir/Organization/_history").json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Organization"}


def test_system_history_spans_types(client: TestClient, patient_body: dict) -> None:
    create(client, patient_body)
    create(client, {"resourceType": "Organization", "name": "Northgate Clinic"})
    bundle = client.get("/fhir/_history").json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Patient", "Organization"}


def test_since_filters_older_versions(client: TestClient, patient_body: dict) -> None:
    first = create(client, patient_body)
    second = create(client, patient_body)
    since = second["meta"]["lastUpdated"]
    ids = [
        e["resource"]["id"]
        for e in client.get(f"/fhir/Patient/_history?_since={since}").json()["entry"]
    ]
    assert second["id"] in ids
    assert first["id"] not in ids or first["meta"]["lastUpdated"] == since


def test_paging_visits_every_version_once_even_with_concurrent_writes(
    client: TestClient, patient_body: dict
) -> None:
    created = {create(client, patient_body)["id"] for _ in range(7)}
    seen: list[str] = []
    url = "/fhir/Patient/_history?_count=3"
    pages = 0
    while url:
        bundle = client.get(url).json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        if pages == 0:
            create(client, patient_body)  # a write during paging must not shift later pages
        pages += 1
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else ""
    assert len(seen) == len(set(seen))
    assert created <= set(seen)
    assert pages == 3


def test_next_link_keeps_count(client: TestClient, patient_body: dict) -> None:
    for _ in range(3):
        create(client, patient_body)
    bundle = client.get("/fhir/Patient/_history?_count=2").json()
    nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert parse_qs(urlparse(nxt).query)["_count"] == ["2"]


def test_count_caps_page_size(client: TestClient, patient_body: dict) -> None:
    for _ in range(3):
        create(client, patient_body)
    assert len(client.get("/fhir/_history?_count=1").json()["entry"]) == 1
