"""Deny by default: token checks (401) and scope checks (403) on every FHIR interaction."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from jose import jwt

from auth.tokens import issue_access_token
from tests.smart_helpers import ADMIN, backend_token, bearer, load_parties


@pytest.fixture
def c(app_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on", admin_token=ADMIN)) as client:
        load_parties(client)
        yield client


def _runtime(c: TestClient):  # type: ignore[no-untyped-def]
    return c.app.state.consilium.auth  # type: ignore[attr-defined]


def _assert_401(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/fhir/Patient/pat-a"),
        ("GET", "/fhir/Patient"),
        ("GET", "/fhir/Patient/pat-a/_history"),
        ("GET", "/fhir/_history"),
        ("POST", "/fhir/Patient"),
        ("DELETE", "/fhir/Patient/pat-a"),
        ("POST", "/fhir"),
    ],
)
def test_missing_token_is_401_everywhere(c: TestClient, method: str, path: str) -> None:
    _assert_401(c.request(method, path, json={"resourceType": "Patient"}))


def test_garbage_token_is_401(c: TestClient) -> None:
    _assert_401(c.get("/fhir/Patient/pat-a", headers=bearer("garbage")))


def test_expired_token_is_401(c: TestClient) -> None:
    rt = _runtime(c)
    token, _ = issue_access_token(
        rt.keys,
        issuer="http://testserver/fhir",
        client_id="x",
        scopes=["system/*.rs"],
        lifetime=-600,
    )
    _assert_401(c.get("/fhir/Patient/pat-a", headers=bearer(token)))


def test_tampered_token_is_401(c: TestClient) -> None:
    token = backend_token(c, "system/Observation.rs")
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["scope"] = "system/*.cruds"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    _assert_401(c.get("/fhir/Patient/pat-a", headers=bearer(f"{head}.{forged}.{sig}")))


def test_hs256_token_signed_with_the_public_key_is_401(c: TestClient) -> None:
    rt = _runtime(c)
    now = int(time.time())
    claims = {
        "iss": "http://testserver/fhir",
        "client_id": "x",
        "scope": "system/*.cruds",
        "exp": now + 60,
        "jti": "j",
    }
    forged = jwt.encode(
        claims,
        json.dumps(rt.keys.current.public_jwk),
        algorithm="HS256",
        headers={"kid": rt.keys.current.kid, "typ": "at+jwt"},
    )
    _assert_401(c.get("/fhir/Patient/pat-a", headers=bearer(forged)))


def test_token_from_another_server_key_is_401(c: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from auth.keys import KeyStore

    other = KeyStore(tmp_path / "other")
    token, _ = issue_access_token(
        other, issuer="http://testserver/fhir", client_id="x", scopes=["system/*.rs"], lifetime=60
    )
    _assert_401(c.get("/fhir/Patient/pat-a", headers=bearer(token)))


def test_token_for_another_issuer_is_401(c: TestClient) -> None:
    token, _ = issue_access_token(
        _runtime(c).keys,
        issuer="https://elsewhere.example/fhir",
        client_id="x",
        scopes=["system/*.rs"],
        lifetime=60,
    )
    _assert_401(c.get("/fhir/Patient/pat-a", headers=bearer(token)))


def test_basic_auth_is_401(c: TestClient) -> None:
    r = c.get("/fhir/Patient/pat-a", headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    _assert_401(r)


@pytest.mark.parametrize(
    ("scope", "method", "path", "status"),
    [
        ("system/Observation.rs", "GET", "/fhir/Patient/pat-a", 403),
        ("system/Patient.r", "GET", "/fhir/Patient", 403),  # search needs s
        ("system/Patient.s", "GET", "/fhir/Patient/pat-a", 403),  # read needs r
        ("system/Patient.s", "GET", "/fhir/Patient", 200),
        ("system/Patient.r", "GET", "/fhir/Patient/pat-a", 200),
        ("system/Patient.r", "GET", "/fhir/Patient/pat-a/_history/1", 200),
        ("system/Patient.rs", "DELETE", "/fhir/Patient/pat-a", 403),
        ("system/Patient.read", "GET", "/fhir/Patient/pat-a", 200),  # v1
        ("system/*.write", "GET", "/fhir/Patient/pat-a", 403),  # v1 write has no read
        ("system/Observation.rs", "GET", "/fhir/Patient/pat-a/Condition", 403),
        ("system/AuditEvent.rs system/Patient.rs", "GET", "/fhir/Patient/pat-a", 200),
    ],
)
def test_scope_table(c: TestClient, scope: str, method: str, path: str, status: int) -> None:
    r = c.request(method, path, headers=bearer(backend_token(c, scope)))
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["resourceType"] == "OperationOutcome"
        assert r.json()["issue"][0]["code"] == "forbidden"
        if method == "GET" and "/Condition" not in path:
            assert "insufficient_scope" in r.headers["www-authenticate"]


def test_scope_query_restriction_on_read(c: TestClient) -> None:
    tok = backend_token(c, "system/Observation.rs?category=laboratory")
    assert c.get("/fhir/Observation/obs-a", headers=bearer(tok)).status_code == 200
    assert c.get("/fhir/Observation/vital-a", headers=bearer(tok)).status_code == 404


def test_scope_query_restriction_on_search(c: TestClient) -> None:
    tok = backend_token(c, "system/Observation.rs?category=laboratory")
    r = c.get("/fhir/Observation", headers=bearer(tok))
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {"obs-a", "obs-b"}


def test_scope_query_restriction_on_write(c: TestClient) -> None:
    tok = backend_token(c, "system/Observation.cruds?category=laboratory")
    vital = c.get("/fhir/Observation/vital-a", headers=bearer(ADMIN)).json()
    vital["status"] = "amended"
    assert c.put("/fhir/Observation/vital-a", json=vital, headers=bearer(tok)).status_code == 403


def test_admin_token_reads_everything(c: TestClient) -> None:
    assert c.get("/fhir/Condition/cond-b", headers=bearer(ADMIN)).status_code == 200


def test_auth_off_needs_no_token(app_factory) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="off")) as client:
        r = client.post("/fhir/Patient", json={"resourceType": "Patient"})
        assert r.status_code == 201
        assert client.get(f"/fhir/Patient/{r.json()['id']}").status_code == 200


def test_discovery_stays_public_with_auth_on(c: TestClient) -> None:
    assert c.get("/fhir/metadata").status_code == 200
    assert c.get("/fhir/.well-known/smart-configuration").status_code == 200
