"""Discovery documents: SMART App Launch 2.x "Conformance" (``.well-known/smart-configuration``)
and OpenID Connect Discovery 1.0 §3 (``.well-known/openid-configuration``).

Pure: the ``Site`` the caller sees in, the JSON document out. What is listed here is what
``auth/grants.py`` and ``auth/authorize.py`` implement, and nothing more.
"""

from __future__ import annotations

from typing import Any

from auth.grants import Site

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-standalone-patient",
    "context-banner",
    "sso-openid-connect",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "authorize-post",
]
SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.cruds",
    "user/*.cruds",
    "system/*.cruds",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
    "patient/*.write",
    "user/*.write",
    "system/*.write",
]


def smart_configuration(site: Site) -> dict[str, Any]:
    return {
        "issuer": site.issuer,
        "jwks_uri": site.endpoint("jwks"),
        "authorization_endpoint": site.endpoint("authorize"),
        "token_endpoint": site.endpoint("token"),
        "registration_endpoint": site.endpoint("register"),
        "introspection_endpoint": site.endpoint("introspect"),
        "revocation_endpoint": site.endpoint("revoke"),
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS384"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(site: Site) -> dict[str, Any]:
    conf = smart_configuration(site)
    return {
        **{k: conf[k] for k in ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint")},
        "registration_endpoint": conf["registration_endpoint"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS384"],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "fhirUser", "nonce"],
    }
