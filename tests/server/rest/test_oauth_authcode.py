"""Authorization code + PKCE: standalone and EHR launch, login/consent page, id_token,
refresh rotation, introspection, revocation, and the patient-context compartment."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from fastapi.testclient import TestClient
from jose import jwt

from tests.smart_helpers import ADMIN, backend_client, bearer, load_parties, register

REDIRECT = "https://app.example/cb"
AUD = "http://testserver/fhir"
SCOPES = "openid fhirUser launch launch/patient patient/*.rs user/*.rs offline_access"


@pytest.fixture
def c(app_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on", admin_token=ADMIN), follow_redirects=False) as client:
        load_parties(client)
        store = client.app.state.consilium.auth.store  # type: ignore[attr-defined]
        store.add_user(
            "dr.a",
            "correct horse",
            "PractitionerRole/role-a",
            organization="clinic-a",
            role="clinic",
        )
        yield client


@pytest.fixture
def app_id(c: TestClient) -> str:
    meta = {
        "client_name": "<b>Viewer</b>",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [REDIRECT],
        "scope": SCOPES,
    }
    return str(register(c, meta)["client_id"])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def auth_params(client_id: str, challenge: str, **over: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid fhirUser launch/patient patient/*.rs offline_access",
        "state": "st-123",
        "aud": AUD,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **over,
    }


def login(c: TestClient, params: dict[str, str], **form: str) -> Any:
    body = {**params, "username": "dr.a", "password": "correct horse", "decision": "allow", **form}
    return c.post("/oauth/authorize", data=body)


def code_from(r: Any) -> str:
    assert r.status_code == 302, r.text
    q = parse_qs(urlparse(r.headers["location"]).query)
    assert q["state"] == ["st-123"]
    return q["code"][0]


def exchange(c: TestClient, client_id: str, code: str, verifier: str, **over: str) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client_id,
        **over,
    }
    return c.post("/oauth/token", data=form)


def full_flow(c: TestClient, app_id: str, patient: str = "pat-a", **over: str) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    code = code_from(login(c, auth_params(app_id, challenge, **over), patient=patient))
    r = exchange(c, app_id, code, verifier)
    assert r.status_code == 200, r.text
    return dict(r.json())


# ------------------------------------------------------------------------------ happy paths
def test_login_page_escapes_client_text(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    r = c.get(f"/oauth/authorize?{urlencode(auth_params(app_id, challenge))}")
    assert r.status_code == 200
    assert "&lt;b&gt;Viewer&lt;/b&gt;" in r.text and "<b>Viewer</b>" not in r.text
    assert 'name="patient"' in r.text  # launch/patient asks for a patient


def test_standalone_launch_gives_patient_context_and_id_token(c: TestClient, app_id: str) -> None:
    body = full_flow(c, app_id)
    assert body["patient"] == "pat-a"
    claims = jwt.get_unverified_claims(body["id_token"])
    assert claims["fhirUser"] == "PractitionerRole/role-a" and claims["aud"] == app_id
    assert body["refresh_token"]


def test_patient_context_token_sees_only_that_compartment(c: TestClient, app_id: str) -> None:
    tok = full_flow(c, app_id)["access_token"]
    assert c.get("/fhir/Observation/obs-a", headers=bearer(tok)).status_code == 200
    assert c.get("/fhir/Patient/pat-a", headers=bearer(tok)).status_code == 200
    r = c.get("/fhir/Observation", headers=bearer(tok))
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {"obs-a", "vital-a"}


def test_patient_context_token_cannot_read_another_patient(c: TestClient, app_id: str) -> None:
    tok = full_flow(c, app_id)["access_token"]
    # pat-b belongs to another clinic too, but even a trusted user would be refused here
    assert c.get("/fhir/Observation/obs-b", headers=bearer(tok)).status_code in (403, 404)
    assert c.get("/fhir/Patient/pat-b", headers=bearer(tok)).status_code in (403, 404)


def test_user_cannot_pick_a_patient_of_another_clinic(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    r = login(c, auth_params(app_id, challenge), patient="pat-b")
    assert r.status_code == 401
    assert "not available" in r.text


def test_ehr_launch_binds_the_launch_patient(c: TestClient, app_id: str) -> None:
    r = c.post("/oauth/launch", json={"patient": "pat-a"}, headers=bearer(ADMIN))
    assert r.status_code == 201
    launch = r.json()["launch"]
    body = full_flow(
        c, app_id, patient="", launch=launch, scope="launch openid fhirUser patient/*.rs"
    )
    assert body["patient"] == "pat-a"


def test_refresh_rotates_and_old_refresh_token_dies(c: TestClient, app_id: str) -> None:
    first = full_flow(c, app_id)["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first, "client_id": app_id}
    r = c.post("/oauth/token", data=form)
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert second != first and r.json()["patient"] == "pat-a"
    again = c.post("/oauth/token", data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_introspection_and_revocation(c: TestClient, app_id: str) -> None:
    tok = full_flow(c, app_id)["access_token"]
    intro = c.post("/oauth/introspect", data={"token": tok}, headers=bearer(ADMIN)).json()
    assert intro["active"] is True and intro["patient"] == "pat-a"
    assert c.post("/oauth/revoke", data={"token": tok, "client_id": app_id}).status_code == 200
    intro = c.post("/oauth/introspect", data={"token": tok}, headers=bearer(ADMIN)).json()
    assert intro == {"active": False}
    assert c.get("/fhir/Patient/pat-a", headers=bearer(tok)).status_code == 401


def test_revoked_refresh_token_cannot_be_used(c: TestClient, app_id: str) -> None:
    refresh = full_flow(c, app_id)["refresh_token"]
    c.post("/oauth/revoke", data={"token": refresh, "client_id": app_id})
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": app_id}
    assert c.post("/oauth/token", data=form).json()["error"] == "invalid_grant"


def test_introspection_needs_authorization(c: TestClient) -> None:
    r = c.post("/oauth/introspect", data={"token": "x", "client_id": "nobody"})
    assert r.status_code == 401


def test_introspection_of_garbage_is_inactive(c: TestClient) -> None:
    r = c.post("/oauth/introspect", data={"token": "x"}, headers=bearer(ADMIN))
    assert r.json() == {"active": False}


def test_backend_client_may_introspect_with_its_assertion(c: TestClient) -> None:
    cid, key = backend_client(c, "system/*.rs")
    form = {
        "token": "x",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": key.assertion(cid),
    }
    assert c.post("/oauth/introspect", data=form).json() == {"active": False}


# ------------------------------------------------------------------------------- negatives
def test_reused_code_is_invalid_grant(c: TestClient, app_id: str) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(login(c, auth_params(app_id, challenge), patient="pat-a"))
    assert exchange(c, app_id, code, verifier).status_code == 200
    r = exchange(c, app_id, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_pkce_mismatch_is_invalid_grant(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    code = code_from(login(c, auth_params(app_id, challenge), patient="pat-a"))
    other, _ = pkce_pair()
    r = exchange(c, app_id, code, other)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_wrong_redirect_uri_at_token_is_invalid_grant(c: TestClient, app_id: str) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(login(c, auth_params(app_id, challenge), patient="pat-a"))
    r = exchange(c, app_id, code, verifier, redirect_uri="https://app.example/cb2")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "uri",
    ["https://app.example/cb/extra", "https://app.example/cb?x=1", "https://evil.example/cb", ""],
)
def test_unregistered_redirect_uri_never_redirects(c: TestClient, app_id: str, uri: str) -> None:
    _, challenge = pkce_pair()
    r = c.get(f"/oauth/authorize?{urlencode(auth_params(app_id, challenge, redirect_uri=uri))}")
    assert r.status_code == 400 and "location" not in r.headers


def test_plain_pkce_is_refused_with_a_redirect(c: TestClient, app_id: str) -> None:
    params = auth_params(app_id, "x" * 43, code_challenge_method="plain")
    r = c.get(f"/oauth/authorize?{urlencode(params)}")
    q = parse_qs(urlparse(r.headers["location"]).query)
    assert q["error"] == ["invalid_request"] and q["state"] == ["st-123"]


def test_wrong_aud_is_refused(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    params = auth_params(app_id, challenge, aud="https://other.example/fhir")
    r = c.get(f"/oauth/authorize?{urlencode(params)}")
    assert parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_request"]


def test_scope_not_registered_is_invalid_scope(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    params = auth_params(app_id, challenge, scope="user/*.cruds")
    r = c.get(f"/oauth/authorize?{urlencode(params)}")
    assert parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_scope"]


def test_wrong_password_shows_the_page_again(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    r = login(c, auth_params(app_id, challenge), password="nope", patient="pat-a")
    assert r.status_code == 401 and "wrong password" in r.text


def test_denied_consent_redirects_with_access_denied(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    r = login(c, auth_params(app_id, challenge), decision="deny")
    q = parse_qs(urlparse(r.headers["location"]).query)
    assert q["error"] == ["access_denied"] and q["state"] == ["st-123"]


def test_code_of_another_client_is_invalid_grant(c: TestClient, app_id: str) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(login(c, auth_params(app_id, challenge), patient="pat-a"))
    other = register(
        c,
        {
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT],
            "scope": SCOPES,
        },
    )["client_id"]
    r = exchange(c, other, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_unknown_launch_is_refused(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    params = auth_params(app_id, challenge, launch="nope", scope="launch patient/*.rs")
    r = c.get(f"/oauth/authorize?{urlencode(params)}")
    assert parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_request"]


def test_authorization_request_may_be_posted(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    r = c.post("/oauth/authorize", data=auth_params(app_id, challenge))
    assert r.status_code == 200 and 'name="password"' in r.text


# ------------------------------------------------------------------- standalone patient picker
def picker(c: TestClient, params: dict[str, str]) -> Any:
    """Sign in without a patient id: the picker page of the patients this user may see."""
    r = login(c, params, patient="")
    assert r.status_code == 200, r.text
    return r


def ticket_of(page: Any) -> str:
    marker = 'name="ticket" value="'
    start = page.text.index(marker) + len(marker)
    return str(page.text[start : page.text.index('"', start)])


def choose(c: TestClient, params: dict[str, str], ticket: str, patient: str) -> Any:
    form = {**params, "ticket": ticket, "patient": patient, "decision": "allow"}
    return c.post("/oauth/authorize", data=form)


def test_picker_lists_only_the_users_patients(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    page = picker(c, auth_params(app_id, challenge))
    assert '<option value="pat-a">' in page.text and "FamilyA" in page.text
    assert "pat-b" not in page.text and "FamilyB" not in page.text
    assert 'name="password"' not in page.text  # the ticket stands in for the password
    assert page.headers["x-frame-options"] == "DENY"


def test_patient_chosen_in_the_picker_becomes_the_launch_context(
    c: TestClient, app_id: str
) -> None:
    verifier, challenge = pkce_pair()
    params = auth_params(app_id, challenge)
    code = code_from(choose(c, params, ticket_of(picker(c, params)), "pat-a"))
    r = exchange(c, app_id, code, verifier)
    assert r.status_code == 200 and r.json()["patient"] == "pat-a"


def test_picker_ticket_is_single_use(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    params = auth_params(app_id, challenge)
    ticket = ticket_of(picker(c, params))
    assert choose(c, params, ticket, "pat-a").status_code == 302
    again = choose(c, params, ticket, "pat-a")
    assert again.status_code == 401 and "sign in again" in again.text


def test_picker_ticket_does_not_unlock_an_unlisted_patient(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    params = auth_params(app_id, challenge)
    r = choose(c, params, ticket_of(picker(c, params)), "pat-b")
    assert r.status_code == 401 and "not available" in r.text


def test_picker_ticket_is_bound_to_its_authorization_request(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    ticket = ticket_of(picker(c, auth_params(app_id, challenge)))
    _, other_challenge = pkce_pair()
    r = choose(c, auth_params(app_id, other_challenge), ticket, "pat-a")
    assert r.status_code == 401 and "location" not in r.headers


def test_picker_is_never_shown_without_a_valid_password(c: TestClient, app_id: str) -> None:
    _, challenge = pkce_pair()
    r = login(c, auth_params(app_id, challenge), password="nope", patient="")
    assert r.status_code == 401
    assert "FamilyA" not in r.text and "pat-a" not in r.text


def test_user_without_patients_gets_no_picker(c: TestClient, app_id: str) -> None:
    store = c.app.state.consilium.auth.store  # type: ignore[attr-defined]
    store.add_user(
        "dr.z", "pw z", "PractitionerRole/role-z", organization="clinic-z", role="clinic"
    )
    _, challenge = pkce_pair()
    r = login(c, auth_params(app_id, challenge), username="dr.z", password="pw z", patient="")
    assert r.status_code == 401 and "no patient is available" in r.text
