"""``Patient/[id]/$everything``: the compartment (and what it references), paged."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.server.operations.conftest import FHIR_JSON, keys, parameters

WHITFIELD_COMPARTMENT = {
    "Patient/pat-whitfield",
    "Coverage/cov-whitfield",
    "Condition/cond-whitfield",
    "DiagnosticReport/dr-inv-whitfield",
    "DocumentReference/docref-whitfield",
    "ServiceRequest/sr-whitfield",
    "Task/task-whitfield",
    "Communication/comm-whitfield-more-info",
}


def everything(client: TestClient, query: str = "") -> dict[str, Any]:
    r = client.get(f"/fhir/Patient/pat-whitfield/$everything{query}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def next_url(bundle: dict[str, Any]) -> str | None:
    for link in bundle["link"]:
        if link["relation"] == "next":
            return str(link["url"])
    return None


def test_matches_are_the_patient_compartment(demo: TestClient) -> None:
    bundle = everything(demo, "?_count=100")
    assert set(keys(bundle, "match")) == WHITFIELD_COMPARTMENT
    assert bundle["total"] == len(WHITFIELD_COMPARTMENT)


def test_no_other_patients_data(demo: TestClient) -> None:
    found = keys(everything(demo, "?_count=100"))
    assert not [k for k in found if k.startswith("Patient/") and k != "Patient/pat-whitfield"]
    assert not [k for k in found if "okafor" in k or "tremblay" in k]


def test_referenced_directory_resources_are_included(demo: TestClient) -> None:
    included = keys(everything(demo, "?_count=100"), "include")
    assert "Organization/ins-albion-health" in included
    assert "PractitionerRole/exp-neurology" in included


def test_count_pages_with_a_next_link(demo: TestClient) -> None:
    bundle = everything(demo, "?_count=3")
    assert len(keys(bundle, "match")) == 3
    assert next_url(bundle) is not None


def test_following_next_links_returns_every_match_once(demo: TestClient) -> None:
    seen: list[str] = []
    url: str | None = "/fhir/Patient/pat-whitfield/$everything?_count=3"
    while url:
        r = demo.get(url)
        assert r.status_code == 200, r.text
        seen += keys(r.json(), "match")
        url = next_url(r.json())
    assert sorted(seen) == sorted(WHITFIELD_COMPARTMENT)


def test_type_restricts_the_types(demo: TestClient) -> None:
    bundle = everything(demo, "?_type=Condition,Coverage")
    assert set(keys(bundle, "match")) == {"Condition/cond-whitfield", "Coverage/cov-whitfield"}


def test_since_in_the_future_matches_nothing(demo: TestClient) -> None:
    bundle = everything(demo, "?_since=2999-01-01T00:00:00Z")
    assert keys(bundle, "match") == []


def test_post_with_parameters(demo: TestClient) -> None:
    r = demo.post(
        "/fhir/Patient/pat-whitfield/$everything",
        json=parameters({"name": "_type", "valueCode": "Task"}),
        headers=FHIR_JSON,
    )
    assert r.status_code == 200, r.text
    assert keys(r.json(), "match") == ["Task/task-whitfield"]


def test_type_outside_the_compartment_is_400(demo: TestClient) -> None:
    assert demo.get("/fhir/Patient/pat-whitfield/$everything?_type=Organization").status_code == 400


def test_zero_count_is_400(demo: TestClient) -> None:
    assert demo.get("/fhir/Patient/pat-whitfield/$everything?_count=0").status_code == 400


def test_unknown_patient_is_404(demo: TestClient) -> None:
    assert demo.get("/fhir/Patient/nobody/$everything").status_code == 404


def test_not_captured_by_compartment_search(demo: TestClient) -> None:
    bundle = everything(demo)
    assert bundle["link"][0]["url"].endswith("/Patient/pat-whitfield/$everything?_count=20")
