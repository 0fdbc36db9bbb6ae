"""SMART discovery and the CapabilityStatement security block: public, no token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.smart_helpers import ADMIN


@pytest.fixture
def smart(app_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on", admin_token=ADMIN)) as c:
        yield c


def test_smart_configuration_needs_no_token(smart: TestClient) -> None:
    r = smart.get("/fhir/.well-known/smart-configuration")
    assert r.status_code == 200
    conf = r.json()
    for key in (
        "issuer",
        "jwks_uri",
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
        "response_types_supported",
    ):
        assert key in conf
    assert conf["code_challenge_methods_supported"] == ["S256"]
    assert set(conf["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert {
        "launch-ehr",
        "launch-standalone",
        "client-public",
        "client-confidential-asymmetric",
        "context-ehr-patient",
        "context-standalone-patient",
        "sso-openid-connect",
        "permission-offline",
        "permission-patient",
        "permission-user",
        "permission-v1",
        "permission-v2",
    } <= set(conf["capabilities"])
    assert "client_credentials" in conf["grant_types_supported"]


def test_metadata_needs_no_token_and_declares_smart(smart: TestClient) -> None:
    r = smart.get("/fhir/metadata")
    assert r.status_code == 200
    security = r.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    ext = security["extension"][0]
    assert ext["url"].endswith("/oauth-uris")
    urls = {e["url"]: e["valueUri"] for e in ext["extension"]}
    assert urls["token"] == "http://testserver/oauth/token"
    assert urls["authorize"] == "http://testserver/oauth/authorize"


def test_jwks_publishes_public_keys_only(smart: TestClient) -> None:
    keys = smart.get("/oauth/jwks").json()["keys"]
    assert keys and all("d" not in k and k["alg"] == "RS384" and k["kid"] for k in keys)


def test_keys_are_written_to_the_data_dir(smart: TestClient) -> None:
    keys_dir = smart.app.state.consilium.settings.keys_dir  # type: ignore[attr-defined]
    assert list(keys_dir.glob("*.pem"))
