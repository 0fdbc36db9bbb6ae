"""The tracker's public client gets SMART ``online_access`` refresh tokens (docs/tracker.md
"Token refresh"): the code flow with PKCE over HTTP, then refresh rotation, as the browser does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from server.tracker import CLIENT_ID
from tests.server.rest.test_oauth_authcode import pkce_pair

REDIRECT = "http://127.0.0.1:8080/app/callback.html"


@pytest.fixture
def c(app_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app_factory(auth="on"), follow_redirects=False) as client:
        store = client.app.state.consilium.auth.store  # type: ignore[attr-defined]
        store.add_user(
            "dr.t", "pw-tracker", "PractitionerRole/role-t", organization="clinic-t", role="clinic"
        )
        yield client


def sign_in(c: TestClient, scope: str) -> Any:
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": scope, "state": "st", "aud": "http://testserver/fhir",
        "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    r = c.post(
        "/oauth/authorize",
        data={**params, "username": "dr.t", "password": "pw-tracker", "decision": "allow"},
    )
    assert r.status_code == 302, r.text
    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
    return c.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
              "code_verifier": verifier, "client_id": CLIENT_ID},
    )  # fmt: skip


def refresh(c: TestClient, token: str) -> Any:
    return c.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": CLIENT_ID},
    )


def test_the_tracker_scope_gives_a_refresh_token_that_rotates(c: TestClient) -> None:
    first = sign_in(c, "openid fhirUser online_access user/*.cruds")
    assert first.status_code == 200, first.text
    assert "refresh_token" in first.json()
    second = refresh(c, first.json()["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["access_token"] != first.json()["access_token"]
    assert body["refresh_token"] != first.json()["refresh_token"]
    assert "online_access" in body["scope"].split()


def test_a_spent_refresh_token_is_refused(c: TestClient) -> None:
    token = sign_in(c, "openid fhirUser online_access user/*.cruds").json()["refresh_token"]
    assert refresh(c, token).status_code == 200
    again = refresh(c, token)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_without_online_access_there_is_no_refresh_token(c: TestClient) -> None:
    r = sign_in(c, "openid fhirUser user/*.cruds")
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()


def test_offline_access_is_not_granted_to_the_tracker(c: TestClient) -> None:
    """A browser tab keeps its session in sessionStorage; a 30-day token has no place there."""
    _, challenge = pkce_pair()
    params = {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": "openid fhirUser offline_access user/*.cruds", "state": "st",
        "aud": "http://testserver/fhir", "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    r = c.post(
        "/oauth/authorize",
        data={**params, "username": "dr.t", "password": "pw-tracker", "decision": "allow"},
    )
    assert r.status_code == 302
    assert parse_qs(urlparse(r.headers["location"]).query)["error"] == ["invalid_scope"]
