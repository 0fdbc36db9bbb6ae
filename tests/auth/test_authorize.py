"""The authorization-endpoint core without the web layer: which request errors stay on our page
(never redirect) and which go back to the app, table-driven; discovery from the Site."""

from __future__ import annotations

from typing import Any

import pytest

from auth import authorize as authz
from auth import discovery, pkce
from auth.grants import AuthServer
from auth.store import AuthStore
from tests.auth.conftest import REDIRECT, SITE

CHALLENGE = pkce.s256("v" * 64)


@pytest.fixture(scope="module")
def app_id(store: AuthStore) -> str:
    client = store.register_client(
        {
            "client_name": "viewer",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT],
            "scope": "openid fhirUser launch launch/patient patient/*.rs user/*.rs",
        }
    )
    return str(client.client_id)


def params(app_id: str, **over: str) -> dict[str, str]:
    base = {
        "response_type": "code",
        "client_id": app_id,
        "redirect_uri": REDIRECT,
        "scope": "launch/patient patient/*.rs",
        "state": "st",
        "aud": SITE.fhir_base,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    return {k: v for k, v in {**base, **over}.items() if v != "<drop>"}


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"client_id": "nobody"}, "invalid_client"),
        ({"redirect_uri": "https://app.example/cb/extra"}, "invalid_request"),
        ({"redirect_uri": "<drop>"}, "invalid_request"),
    ],
)
def test_untrusted_client_or_redirect_never_redirects(
    server: AuthServer, app_id: str, over: dict[str, str], error: str
) -> None:
    with pytest.raises(authz.NoRedirect) as caught:
        authz.check_authorize_request(server, SITE, params(app_id, **over))
    assert caught.value.error == error


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"state": "<drop>"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "<drop>"}, "invalid_request"),
        ({"aud": "https://other.example/fhir"}, "invalid_request"),
        ({"scope": "user/*.cruds"}, "invalid_scope"),
        ({"scope": "patient/Observation.zz"}, "invalid_scope"),
        ({"launch": "abc", "scope": "patient/*.rs"}, "invalid_scope"),
        ({"launch": "unknown", "scope": "launch patient/*.rs"}, "invalid_request"),
    ],
)
def test_request_errors_go_back_to_the_app(
    server: AuthServer, app_id: str, over: dict[str, str], error: str
) -> None:
    with pytest.raises(authz.RedirectError) as caught:
        authz.check_authorize_request(server, SITE, params(app_id, **over))
    assert (caught.value.error, caught.value.redirect_uri) == (error, REDIRECT)
    assert caught.value.state == (None if over.get("state") == "<drop>" else "st")


def test_standalone_launch_asks_for_a_patient(server: AuthServer, app_id: str) -> None:
    req = authz.check_authorize_request(server, SITE, params(app_id))
    assert req.needs_patient_choice and req.launch_patient is None


def test_ehr_launch_brings_its_patient(server: AuthServer, store: AuthStore, app_id: str) -> None:
    launch = store.create_launch("p1")
    req = authz.check_authorize_request(
        server, SITE, params(app_id, launch=launch, scope="launch launch/patient patient/*.rs")
    )
    assert req.launch_patient == "p1" and not req.needs_patient_choice


def test_hidden_fields_carry_only_the_authorization_request(
    server: AuthServer, app_id: str
) -> None:
    extra: dict[str, Any] = {"password": "secret", "ticket": "t"}
    req = authz.check_authorize_request(server, SITE, {**params(app_id), **extra})
    assert set(req.form_params()) == set(params(app_id))


def test_sign_in_ticket_binding_changes_with_the_challenge(server: AuthServer, app_id: str) -> None:
    one = authz.check_authorize_request(server, SITE, params(app_id))
    two = authz.check_authorize_request(
        server, SITE, params(app_id, code_challenge=pkce.s256("w" * 64))
    )
    assert one.binding() != two.binding()


def test_discovery_names_the_sites_endpoints() -> None:
    conf = discovery.smart_configuration(SITE)
    assert conf["issuer"] == SITE.issuer
    assert conf["token_endpoint"] == "https://consilium.example/oauth/token"
    assert conf["authorization_endpoint"] == "https://consilium.example/oauth/authorize"
    assert discovery.openid_configuration(SITE)["jwks_uri"] == conf["jwks_uri"]
