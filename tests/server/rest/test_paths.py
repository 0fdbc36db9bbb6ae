"""Known path, unsupported method: 405 with an ``Allow`` naming every method the path serves.

Each case was checked against the routes: what is listed as allowed really is served there
(conditional update/delete/patch make ``PUT/DELETE/PATCH /fhir/Patient`` supported, so they are
in ``Allow``, not cases of 405). Unknown paths stay 404; malformed ids stay 400.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.smart_helpers import ADMIN

CASES = [
    # public endpoints
    ("DELETE", "/fhir/metadata", "GET"),
    ("PUT", "/fhir/metadata", "GET"),
    ("POST", "/fhir/metadata", "GET"),
    ("POST", "/healthz", "GET"),
    ("DELETE", "/fhir/.well-known/smart-configuration", "GET"),
    ("PUT", "/fhir/.well-known/openid-configuration", "GET"),
    ("GET", "/oauth/token", "POST"),
    ("DELETE", "/oauth/authorize", "GET, POST"),
    # FHIR endpoints
    ("PUT", "/fhir", "GET, POST"),
    ("DELETE", "/fhir/_history", "GET"),
    ("POST", "/fhir/_history", "GET"),
    ("OPTIONS", "/fhir/Patient", "GET, POST, PUT, PATCH, DELETE"),
    ("GET", "/fhir/Patient/_search", "POST"),
    ("POST", "/fhir/Patient/_history", "GET"),
    ("PUT", "/fhir/Patient/_history", "GET"),
    ("DELETE", "/fhir/Patient/_history", "GET"),
    ("POST", "/fhir/Patient/x", "GET, PUT, PATCH, DELETE"),
    ("POST", "/fhir/Patient/x/_history", "GET"),
    ("DELETE", "/fhir/Patient/x/_history", "GET"),
    ("DELETE", "/fhir/Patient/x/_history/1", "GET"),
    ("PUT", "/fhir/Patient/x/_history/1", "GET"),
    ("POST", "/fhir/Patient/x/Observation", "GET"),
]


@pytest.mark.parametrize(("method", "path", "allow"), CASES)
def test_unsupported_method_is_405_with_allow(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    r = client.request(method, path, json={"resourceType": "Patient"})
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-supported"
    assert method in body["issue"][0]["diagnostics"]


def test_allow_lists_only_methods_that_really_answer(client: TestClient) -> None:
    """Every method named in ``Allow`` on an instance path is routed (no 405 for any of them)."""
    allow = client.post("/fhir/Patient/x", json={}).headers["allow"]
    for method in allow.split(", "):
        assert client.request(method, "/fhir/Patient/x").status_code != 405, method


def test_405_needs_no_token_on_a_public_endpoint(app_factory) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on", admin_token=ADMIN)) as c:
        r = c.delete("/fhir/metadata")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"


def test_metadata_is_not_taken_for_a_resource_type(client: TestClient) -> None:
    """``DELETE /fhir/metadata`` is not a conditional delete on a type named "metadata"."""
    assert client.get("/fhir/metadata").status_code == 200
    assert client.delete("/fhir/metadata?name=x").status_code == 405


def test_unknown_path_stays_404(client: TestClient) -> None:
    r = client.delete("/fhir/not-a-type")
    assert r.status_code == 404
    assert "allow" not in r.headers


def test_unknown_resource_type_stays_404_with_its_name(client: TestClient) -> None:
    r = client.delete("/fhir/Foo?name=x")
    assert r.status_code == 404
    assert "Foo" in r.json()["issue"][0]["diagnostics"]


def test_malformed_id_stays_400(client: TestClient) -> None:
    assert client.put("/fhir/Patient/a!b", json={"resourceType": "Patient"}).status_code == 400
