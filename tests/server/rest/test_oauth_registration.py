"""Dynamic client registration (RFC 7591) behind the admin token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.smart_helpers import ADMIN, KeyPair, bearer


@pytest.fixture
def smart(app_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on", admin_token=ADMIN)) as c:
        yield c


def confidential(**over: Any) -> dict[str, Any]:
    return {
        "client_name": "lab integration",
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "jwks": KeyPair().jwks(),
        "scope": "system/Patient.rs",
        **over,
    }


def test_confidential_client_registers(smart: TestClient) -> None:
    r = smart.post("/oauth/register", json=confidential(), headers=bearer(ADMIN))
    assert r.status_code == 201
    body = r.json()
    assert body["client_id"] and body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["scope"] == "system/Patient.rs"


def test_public_client_registers_with_redirects(smart: TestClient) -> None:
    meta = {
        "client_name": "viewer",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example/cb"],
        "scope": "openid fhirUser launch/patient patient/*.rs offline_access",
        "consilium": {"organization": "clinic-a", "role": "clinic"},
    }
    r = smart.post("/oauth/register", json=meta, headers=bearer(ADMIN))
    assert r.status_code == 201, r.text
    assert r.json()["consilium"]["role"] == "clinic"


def test_registration_without_token_is_401(smart: TestClient) -> None:
    r = smart.post("/oauth/register", json=confidential())
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_registration_with_wrong_token_is_401(smart: TestClient) -> None:
    r = smart.post("/oauth/register", json=confidential(), headers=bearer("nope"))
    assert r.status_code == 401


def test_registration_is_closed_without_admin_token(app_factory) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on")) as c:
        r = c.post("/oauth/register", json=confidential(), headers=bearer("anything"))
    assert r.status_code == 403
    assert r.json()["error"] == "access_denied"


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"scope": "system/Patient.xyz"}, "invalid_client_metadata"),
        ({"jwks": {"keys": []}}, "invalid_client_metadata"),
        ({"jwks": None, "jwks_uri": "https://x.example/jwks"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata"),
        ({"consilium": {"organization": "o1", "role": "pharmacy"}}, "invalid_client_metadata"),
        ({"consilium": {"organization": "o1"}}, "invalid_client_metadata"),
        ({"consilium": {"organization": {"$ne": 1}, "role": "clinic"}}, "invalid_client_metadata"),
        (
            {"grant_types": ["authorization_code"], "redirect_uris": ["http://evil.example/cb"]},
            "invalid_redirect_uri",
        ),
    ],
)
def test_bad_metadata_is_refused(smart: TestClient, over: dict[str, Any], error: str) -> None:
    r = smart.post("/oauth/register", json=confidential(**over), headers=bearer(ADMIN))
    assert r.status_code == 400
    assert r.json()["error"] == error


def test_private_keys_in_jwks_are_refused(smart: TestClient) -> None:
    key = KeyPair()
    from jose import jwk

    private = {**jwk.construct(key.pem, "RS384").to_dict(), "kid": "k"}
    r = smart.post(
        "/oauth/register", json=confidential(jwks={"keys": [private]}), headers=bearer(ADMIN)
    )
    assert r.status_code == 400


def test_non_json_body_is_refused(smart: TestClient) -> None:
    r = smart.post(
        "/oauth/register",
        content=b"client_name=x",
        headers={**bearer(ADMIN), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
