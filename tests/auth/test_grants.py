"""The token-side OAuth core without the web layer: every refused request → its RFC 6749 §5.2
error code and status, what the core attributes to the audit event, and the admin endpoints.

Runs against a real auth store on the embedded database; no HTTP involved.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from auth import grants, pkce
from auth.audit import AuthEvent
from auth.errors import OAuthError
from auth.grants import AuthServer
from auth.store import AuthStore
from auth.tokens import decode_access_token, principal_from_claims
from tests.auth.conftest import ADMIN, REDIRECT, SITE
from tests.smart_helpers import ASSERTION_TYPE, KeyPair

VERIFIER = "v" * 64


@pytest.fixture(scope="module")
def clients(store: AuthStore) -> dict[str, Any]:
    """A public app, a backend service with its key, and a key client not allowed to use
    client_credentials."""
    key = KeyPair()
    public = store.register_client(
        {
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT],
            "scope": "openid fhirUser launch launch/patient patient/*.rs offline_access",
        }
    )
    backend = store.register_client(
        {
            "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": ["client_credentials"],
            "jwks": key.jwks(),
            "scope": "system/Patient.rs user/Patient.rs",
        }
    )
    keyed_app = store.register_client(
        {
            "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT],
            "jwks": key.jwks(),
            "scope": "system/Patient.rs",
        }
    )
    store.add_user("dr.u", "pw", "PractitionerRole/role-u", organization="org-u", role="clinic")
    return {"public": public, "backend": backend, "keyed_app": keyed_app, "key": key}


def assertion(clients: dict[str, Any], name: str = "backend") -> str:
    key: KeyPair = clients["key"]
    return key.assertion(clients[name].client_id, aud=SITE.endpoint("token"))


def fill(form: dict[str, str], clients: dict[str, Any]) -> dict[str, str]:
    """``{public}``/``{backend}`` → client ids, ``{assertion}``/``{keyed_assertion}`` → fresh
    signed assertions."""
    out = {}
    for k, v in form.items():
        if v == "{assertion}":
            v = assertion(clients)
        elif v == "{keyed_assertion}":
            v = assertion(clients, "keyed_app")
        elif v in ("{public}", "{backend}"):
            v = clients[v.strip("{}")].client_id
        out[k] = v
    return out


CC = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
CODE = {"grant_type": "authorization_code", "client_id": "{public}"}
REFRESH = {"grant_type": "refresh_token", "client_id": "{public}"}


@pytest.mark.parametrize(
    ("form", "authorization", "error", "status"),
    [
        ({}, "", "invalid_request", 400),
        ({"grant_type": "password"}, "", "unsupported_grant_type", 400),
        ({"grant_type": "client_credentials", "client_id": "{backend}"}, "", "invalid_client", 401),
        ({**CC, "client_assertion_type": "urn:x", "client_assertion": "{assertion}"}, "",
         "invalid_client", 401),
        ({**CC, "client_assertion": "not-a-jwt"}, "", "invalid_client", 401),
        ({**CC, "client_assertion": "{assertion}", "client_id": "someone-else"}, "",
         "invalid_client", 401),
        ({**CC, "client_assertion": "{assertion}", "scope": "system/Condition.rs"}, "",
         "invalid_scope", 400),
        ({**CC, "client_assertion": "{assertion}", "scope": "user/Patient.rs"}, "",
         "invalid_scope", 400),
        ({**CC, "client_assertion": "{assertion}", "scope": "system/Patient.zz"}, "",
         "invalid_scope", 400),
        ({**CC, "client_assertion": "{keyed_assertion}"}, "", "unauthorized_client", 400),
        ({**CODE, "code": "c", "redirect_uri": REDIRECT, "code_verifier": VERIFIER},
         "Basic eDp5", "invalid_client", 401),
        ({**CODE, "client_id": "nobody", "code": "c"}, "", "invalid_client", 401),
        ({**CODE, "client_id": "{backend}", "code": "c"}, "", "invalid_client", 401),
        ({**CODE, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}, "", "invalid_request", 400),
        ({**CODE, "code": "unknown", "redirect_uri": REDIRECT, "code_verifier": VERIFIER}, "",
         "invalid_grant", 400),
        (REFRESH, "", "invalid_request", 400),
        ({**REFRESH, "refresh_token": "unknown"}, "", "invalid_grant", 400),
    ],
)  # fmt: skip
def test_refused_token_request_has_its_rfc_error(
    server: AuthServer,
    clients: dict[str, Any],
    form: dict[str, str],
    authorization: str,
    error: str,
    status: int,
) -> None:
    with pytest.raises(OAuthError) as caught:
        grants.token_request(
            server, SITE, fill(form, clients), AuthEvent("oauth-token"), authorization=authorization
        )
    assert (caught.value.error, caught.value.status) == (error, status)


def test_refusal_after_client_authentication_is_attributed_to_the_client(
    server: AuthServer, clients: dict[str, Any]
) -> None:
    event = AuthEvent("oauth-token")
    form = {**CC, "client_assertion": assertion(clients), "scope": "system/Condition.rs"}
    with pytest.raises(OAuthError):
        grants.token_request(server, SITE, form, event)
    assert (event.client_id, event.user) == (clients["backend"].client_id, None)


def test_refusal_before_client_authentication_names_nobody(
    server: AuthServer, clients: dict[str, Any]
) -> None:
    event = AuthEvent("oauth-token")
    with pytest.raises(OAuthError):
        grants.token_request(server, SITE, {**CC, "client_assertion": "x.y.z"}, event)
    assert (event.client_id, event.user) == (None, None)


def test_client_credentials_grant_names_the_client(
    server: AuthServer, clients: dict[str, Any]
) -> None:
    event = AuthEvent("oauth-token")
    form = {**CC, "client_assertion": assertion(clients), "scope": "system/Patient.rs"}
    body = grants.token_request(server, SITE, form, event)
    assert body["token_type"] == "Bearer" and body["scope"] == "system/Patient.rs"
    assert event.client_id == clients["backend"].client_id


def _code(store: AuthStore, clients: dict[str, Any]) -> str:
    return store.create_code(
        60,
        client_id=clients["public"].client_id,
        redirect_uri=REDIRECT,
        scope="openid fhirUser patient/*.rs offline_access",
        code_challenge=pkce.s256(VERIFIER),
        username="dr.u",
        context={"patient": "p1"},
    )


def test_authorization_code_grant_names_the_user_and_carries_the_patient(
    server: AuthServer, store: AuthStore, clients: dict[str, Any]
) -> None:
    event = AuthEvent("oauth-token")
    form = {
        "grant_type": "authorization_code",
        "client_id": clients["public"].client_id,
        "code": _code(store, clients),
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    body = grants.token_request(server, SITE, form, event)
    assert body["patient"] == "p1" and body["id_token"] and body["refresh_token"]
    assert event.user == "PractitionerRole/role-u"


def test_refresh_narrows_but_never_widens(
    server: AuthServer, store: AuthStore, clients: dict[str, Any]
) -> None:
    refresh = store.create_refresh(
        60, client_id=clients["public"].client_id, scope="patient/*.rs", username="dr.u"
    )
    form = {
        "grant_type": "refresh_token",
        "client_id": clients["public"].client_id,
        "refresh_token": refresh,
        "scope": "patient/*.cruds",
    }
    with pytest.raises(OAuthError) as caught:
        grants.token_request(server, SITE, form, AuthEvent("oauth-token"))
    assert caught.value.error == "invalid_scope"


# ---------------------------------------------------------------- introspection, revocation
def test_introspection_needs_an_authenticated_caller(
    server: AuthServer, clients: dict[str, Any]
) -> None:
    form = {"token": "x", "client_id": clients["public"].client_id}
    with pytest.raises(OAuthError) as caught:
        grants.introspect(server, SITE, form)
    assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


def test_introspection_of_garbage_by_the_admin_is_inactive(server: AuthServer) -> None:
    body = grants.introspect(server, SITE, {"token": "x"}, bearer=ADMIN)
    assert body == {"active": False}


def test_introspection_without_a_token_is_invalid_request(
    server: AuthServer, clients: dict[str, Any]
) -> None:
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion(clients)}
    with pytest.raises(OAuthError) as caught:
        grants.introspect(server, SITE, form)
    assert caught.value.error == "invalid_request"


def test_revocation_without_a_token_is_invalid_request(
    server: AuthServer, clients: dict[str, Any]
) -> None:
    event = AuthEvent("oauth-revoke")
    with pytest.raises(OAuthError) as caught:
        grants.revoke(server, SITE, {"client_id": clients["public"].client_id}, event)
    assert caught.value.error == "invalid_request"
    assert event.client_id == clients["public"].client_id


def test_revoking_another_clients_refresh_token_does_nothing(
    server: AuthServer, store: AuthStore, clients: dict[str, Any]
) -> None:
    refresh = store.create_refresh(
        60, client_id=clients["backend"].client_id, scope="x", username="dr.u"
    )
    grants.revoke(
        server,
        SITE,
        {"token": refresh, "client_id": clients["public"].client_id},
        AuthEvent("oauth-revoke"),
    )
    assert store.find_refresh(refresh).revoked is False


# ---------------------------------------------------------------------- register, launch
@pytest.mark.parametrize(
    ("admin_token", "bearer", "error", "status"),
    [
        (None, ADMIN, "access_denied", 403),
        (ADMIN, None, "invalid_token", 401),
        (ADMIN, "wrong", "invalid_token", 401),
    ],
)
def test_admin_endpoints_refuse_without_the_admin_token(
    server: AuthServer, admin_token: str | None, bearer: str | None, error: str, status: int
) -> None:
    closed = AuthServer(
        store=server.store, keys=server.keys, access_token_lifetime=300, admin_token=admin_token
    )
    with pytest.raises(OAuthError) as caught:
        grants.register(closed, bearer, "application/json", b"{}", AuthEvent("oauth-register"))
    assert (caught.value.error, caught.value.status) == (error, status)


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("application/x-www-form-urlencoded", b"client_name=x", "invalid_request"),
        ("application/json", b"{not json", "invalid_client_metadata"),
        ("application/json", b"[]", "invalid_client_metadata"),
        ("application/json", b'{"token_endpoint_auth_method": "client_secret_basic"}',
         "invalid_client_metadata"),
    ],
)  # fmt: skip
def test_bad_registration_is_refused(
    server: AuthServer, content_type: str, body: bytes, error: str
) -> None:
    event = AuthEvent("oauth-register")
    with pytest.raises(OAuthError) as caught:
        grants.register(server, ADMIN, content_type, body, event)
    assert caught.value.error == error
    assert event.client_id == "admin"  # the admin was identified before the refusal


def test_registration_returns_the_client_metadata(server: AuthServer) -> None:
    body = b'{"client_name": "viewer", "redirect_uris": ["https://v.example/cb"]}'
    meta = grants.register(
        server, ADMIN, "application/json; charset=utf-8", body, AuthEvent("oauth-register")
    )
    assert meta["client_id"] and meta["grant_types"] == ["authorization_code"]


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b"{}", b'{"patient": {"$ne": 1}}', b'{"patient": "a/b"}']
)
def test_launch_needs_a_patient_id(server: AuthServer, body: bytes) -> None:
    with pytest.raises(OAuthError) as caught:
        grants.create_launch(server, ADMIN, body)
    assert caught.value.error == "invalid_request"


def test_launch_binds_the_patient(server: AuthServer, store: AuthStore) -> None:
    launch = grants.create_launch(server, ADMIN, b'{"patient": "p1"}')
    assert store.get_launch(launch).patient == "p1"


# ------------------------------------------------------------------------ party bindings
@pytest.mark.parametrize("role", ["clinic", "specialist", "insurer", "coordinator"])
def test_registration_accepts_every_party_role(server: AuthServer, role: str) -> None:
    body = orjson.dumps(
        {
            "redirect_uris": ["https://v.example/cb"],
            "consilium": {"organization": "net-consilium-experts", "role": role},
        }
    )
    meta = grants.register(server, ADMIN, "application/json", body, AuthEvent("oauth-register"))
    assert meta["consilium"]["role"] == role


def test_registration_refuses_an_unknown_role(server: AuthServer) -> None:
    body = orjson.dumps(
        {
            "redirect_uris": ["https://v.example/cb"],
            "consilium": {"organization": "o", "role": "auditor"},
        }
    )
    with pytest.raises(OAuthError) as caught:
        grants.register(server, ADMIN, "application/json", body, AuthEvent("oauth-register"))
    assert caught.value.error == "invalid_client_metadata"


def test_a_coordinator_without_fhir_user_gets_its_binding_in_the_token(
    server: AuthServer, store: AuthStore, clients: dict[str, Any]
) -> None:
    store.add_user("coord.u", "pw", None, organization="net-x", role="coordinator")
    code = store.create_code(
        60,
        client_id=clients["public"].client_id,
        redirect_uri=REDIRECT,
        scope="openid fhirUser patient/*.rs",
        code_challenge=pkce.s256(VERIFIER),
        username="coord.u",
        context={"patient": "p1"},
    )
    form = {
        "grant_type": "authorization_code",
        "client_id": clients["public"].client_id,
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    body = grants.token_request(server, SITE, form, AuthEvent("oauth-token"))
    claims = decode_access_token(server.keys(), body["access_token"], issuer=SITE.issuer)
    assert (claims["org"], claims["role"], claims["sub"]) == ("net-x", "coordinator", "coord.u")
    assert "fhirUser" not in claims
    principal = principal_from_claims(claims)
    assert (principal.role, principal.organization, principal.user) == (
        "coordinator",
        "net-x",
        None,
    )
