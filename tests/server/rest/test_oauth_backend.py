"""SMART Backend Services: client_credentials with a JWT assertion, and every refusal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from jose import jwt

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


@pytest.fixture
def registered(smart: TestClient) -> tuple[str, KeyPair]:
    return backend_client(smart, "system/Patient.rs system/Observation.cruds")


def test_token_is_issued_with_the_requested_scopes(
    smart: TestClient, registered: tuple[str, KeyPair]
) -> None:
    cid, key = registered
    r = token_request(smart, cid, key, scope="system/Patient.rs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["scope"] == "system/Patient.rs"
    assert r.headers["cache-control"] == "no-store"
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["client_id"] == cid and claims["exp"] - claims["iat"] == 300


def test_es384_client_gets_a_token(smart: TestClient) -> None:
    cid, key = backend_client(smart, "system/*.rs", key=KeyPair("EC"))
    assert token_request(smart, cid, key).status_code == 200


def test_default_scope_is_everything_registered(
    smart: TestClient, registered: tuple[str, KeyPair]
) -> None:
    cid, key = registered
    body = token_request(smart, cid, key).json()
    assert body["scope"] == "system/Patient.rs system/Observation.cruds"


def test_token_reads_fhir(smart: TestClient, registered: tuple[str, KeyPair]) -> None:
    cid, key = registered
    tok = token_request(smart, cid, key).json()["access_token"]
    r = smart.post(
        "/fhir/Observation",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        headers=bearer(tok),
    )
    assert r.status_code == 201


def _err(r, status: int, error: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert "error_description" in r.json()


def test_replayed_jti_is_invalid_client(smart: TestClient, registered: tuple[str, KeyPair]) -> None:
    cid, key = registered
    assert token_request(smart, cid, key, jti="once").status_code == 200
    _err(token_request(smart, cid, key, jti="once"), 401, "invalid_client")


def test_replayed_jti_is_still_refused_by_another_app_worker(
    app_factory, smart: TestClient, registered: tuple[str, KeyPair]
) -> None:  # type: ignore[no-untyped-def]
    cid, key = registered
    assertion = key.assertion(cid, jti="shared")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    assert smart.post("/oauth/token", data=form).status_code == 200
    # a second worker on the same database sees the recorded jti
    settings = smart.app.state.consilium.settings  # type: ignore[attr-defined]
    from server.app import create_app

    other = create_app(settings)
    try:
        with TestClient(other) as c2:
            assert c2.post("/oauth/token", data=form).status_code == 401
    finally:
        other.state.consilium.store.close()


def test_expired_assertion(smart: TestClient, registered: tuple[str, KeyPair]) -> None:
    cid, key = registered
    _err(token_request(smart, cid, key, exp_in=-600), 401, "invalid_client")


def test_far_future_exp(smart: TestClient, registered: tuple[str, KeyPair]) -> None:
    cid, key = registered
    _err(token_request(smart, cid, key, exp_in=3600), 401, "invalid_client")


def test_wrong_aud(smart: TestClient, registered: tuple[str, KeyPair]) -> None:
    cid, key = registered
    _err(token_request(smart, cid, key, aud="http://testserver/fhir"), 401, "invalid_client")


def test_unknown_kid(smart: TestClient, registered: tuple[str, KeyPair]) -> None:
    cid, key = registered
    _err(token_request(smart, cid, key, kid="unknown"), 401, "invalid_client")


def test_alg_none(smart: TestClient, registered: tuple[str, KeyPair]) -> None:
    cid, key = registered
    real = key.assertion(cid)
    head = jwt.get_unverified_header(real)
    import base64
    import json

    def b64(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    forged = f"{b64({**head, 'alg': 'none'})}.{real.split('.')[1]}."
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": forged,
    }
    _err(smart.post("/oauth/token", data=form), 401, "invalid_client")


def test_hs256_forgery(smart: TestClient, registered: tuple[str, KeyPair]) -> None:
    cid, key = registered
    import json

    claims = jwt.get_unverified_claims(key.assertion(cid))
    forged = jwt.encode(
        claims, json.dumps(key.public_jwk), algorithm="HS256", headers={"kid": key.kid}
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": forged,
    }
    _err(smart.post("/oauth/token", data=form), 401, "invalid_client")


def test_scope_beyond_registration_is_invalid_scope(
    smart: TestClient, registered: tuple[str, KeyPair]
) -> None:
    cid, key = registered
    _err(token_request(smart, cid, key, scope="system/Condition.rs"), 400, "invalid_scope")


def test_user_scope_for_backend_is_invalid_scope(smart: TestClient) -> None:
    cid, key = backend_client(smart, "user/*.rs system/*.rs")
    _err(token_request(smart, cid, key, scope="user/Patient.rs"), 400, "invalid_scope")


def test_malformed_scope_is_invalid_scope(
    smart: TestClient, registered: tuple[str, KeyPair]
) -> None:
    cid, key = registered
    _err(token_request(smart, cid, key, scope="system/Patient.zz"), 400, "invalid_scope")


def test_missing_grant_type_is_invalid_request(smart: TestClient) -> None:
    _err(smart.post("/oauth/token", data={"scope": "x"}), 400, "invalid_request")


def test_unknown_grant_type(smart: TestClient) -> None:
    _err(smart.post("/oauth/token", data={"grant_type": "password"}), 400, "unsupported_grant_type")


def test_wrong_assertion_type_is_invalid_client(
    smart: TestClient, registered: tuple[str, KeyPair]
) -> None:
    cid, key = registered
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:x",
        "client_assertion": key.assertion(cid),
    }
    _err(smart.post("/oauth/token", data=form), 401, "invalid_client")


def test_json_body_is_invalid_request(smart: TestClient) -> None:
    _err(
        smart.post("/oauth/token", json={"grant_type": "client_credentials"}),
        400,
        "invalid_request",
    )


def test_repeated_parameter_is_invalid_request(
    smart: TestClient, registered: tuple[str, KeyPair]
) -> None:
    cid, key = registered
    body = (
        f"grant_type=client_credentials&grant_type=client_credentials"
        f"&client_assertion_type={ASSERTION_TYPE}&client_assertion={key.assertion(cid)}"
    )
    r = smart.post(
        "/oauth/token",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _err(r, 400, "invalid_request")


def test_client_credentials_without_assertion(smart: TestClient) -> None:
    _err(
        smart.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "x"}),
        401,
        "invalid_client",
    )
