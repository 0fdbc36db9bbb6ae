"""SMART discovery and the CapabilityStatement security block (public, no token), and the
verifier's remembered tokens: still refused once revoked or their key retired."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import server.smart as smart_module
from tests.smart_helpers import (
    ADMIN,
    ASSERTION_TYPE,
    KeyPair,
    backend_client,
    bearer,
    token_request,
)


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


# ------------------------------------ tokens in use: remembered verifications stay revocable
def backend(smart: TestClient) -> tuple[str, str, KeyPair]:
    """(access token, client id, key) of a backend client, the token used once (remembered)."""
    cid, key = backend_client(smart, "system/Patient.rs")
    token = str(token_request(smart, cid, key).json()["access_token"])
    assert smart.get("/fhir/Patient", headers=bearer(token)).status_code == 200
    return token, cid, key


def test_a_token_in_use_is_refused_once_its_client_revokes_it(smart: TestClient) -> None:
    token, cid, key = backend(smart)
    form = {
        "token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": key.assertion(cid),
    }
    assert smart.post("/oauth/revoke", data=form).status_code == 200
    assert smart.get("/fhir/Patient", headers=bearer(token)).status_code == 401


def test_a_token_in_use_is_refused_once_another_worker_revokes_it_and_the_window_passes(
    smart: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.app import create_app

    token, cid, key = backend(smart)
    form = {
        "token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": key.assertion(cid),
    }
    other = create_app(smart.app.state.consilium.settings)  # type: ignore[attr-defined]
    try:
        with TestClient(other) as worker:
            assert worker.post("/oauth/revoke", data=form).status_code == 200
    finally:
        other.state.consilium.store.close()
    monkeypatch.setattr(smart_module, "REVOCATION_REFRESH_SECONDS", 0.0)  # the window passed
    assert smart.get("/fhir/Patient", headers=bearer(token)).status_code == 401


def test_a_token_in_use_is_refused_once_its_signing_key_is_retired(smart: TestClient) -> None:
    token, _, _ = backend(smart)
    keys = smart.app.state.consilium.auth.keys  # type: ignore[attr-defined]
    old = keys.current.kid
    keys.rotate()
    keys.retire(old)
    assert smart.get("/fhir/Patient", headers=bearer(token)).status_code == 401
