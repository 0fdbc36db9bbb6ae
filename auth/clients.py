"""Registered OAuth clients (RFC 7591 client metadata + SMART + Consilium binding).

SMART App Launch 2.x "Client types" (public with PKCE; confidential asymmetric with
``private_key_jwt``) and SMART Backend Services "Registering a client". The Consilium extension
binds a client to an Organization and a party role (clinic | specialist | insurer |
coordinator, ``auth.principal.ROLES``); a client
without an organization is a trusted integration limited only by its scopes.

Documents are declared abstract and bound to a connection alias by ``auth.store.AuthStore``, so
several apps (tests) with different databases can live in one process.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from mongoengine import DateTimeField, DictField, Document, ListField, StringField

from auth.errors import OAuthError
from auth.principal import ROLES
from auth.scopes import ScopeError, parse_scope, split_scopes

AUTH_METHODS = ("none", "private_key_jwt")
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
ASSERTION_ALGS = ("RS384", "ES384")


class ClientBase(Document):  # type: ignore[misc]
    meta: dict[str, Any] = {"abstract": True}

    client_id = StringField(primary_key=True)
    client_name = StringField(default="")
    token_endpoint_auth_method = StringField(choices=AUTH_METHODS, required=True)
    grant_types = ListField(StringField(choices=GRANT_TYPES))
    redirect_uris = ListField(StringField())
    scope = StringField(default="")
    jwks = DictField()
    organization = StringField(null=True)
    role = StringField(null=True, choices=(*ROLES, None))
    practitioner_role = StringField(null=True)
    created_at = DateTimeField()

    def allowed_scopes(self) -> list[str]:
        return split_scopes(self.scope)

    def binding(self) -> dict[str, Any]:
        return {"org": self.organization, "role": self.role, "prole": self.practitioner_role}

    def to_metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "client_name": self.client_name,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "grant_types": list(self.grant_types),
            "redirect_uris": list(self.redirect_uris),
            "scope": self.scope,
            "client_id_issued_at": int(self.created_at.timestamp()) if self.created_at else None,
        }
        if self.jwks:
            out["jwks"] = self.jwks
        if self.organization or self.role:
            out["consilium"] = {
                "organization": self.organization,
                "role": self.role,
                "practitioner_role": self.practitioner_role,
            }
        return out


def _bad(description: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", description)


def _check_jwks(jwks: Any) -> dict[str, Any]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise _bad("jwks must be an object with a non-empty keys array")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise _bad("jwks keys must be RSA or EC public keys")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise _bad("every jwks key needs a kid")
        if "d" in key:
            raise _bad("jwks must hold public keys only")
        if key.get("alg") is not None and key["alg"] not in ASSERTION_ALGS:
            raise _bad(f"key alg must be one of {', '.join(ASSERTION_ALGS)}")
    return jwks


def _check_redirect(uri: Any) -> str:
    if not isinstance(uri, str) or not re.match(
        r"^(https://|http://(localhost|127\.0\.0\.1)[:/])", uri
    ):
        raise OAuthError(
            "invalid_redirect_uri", "redirect_uris must be https (or http on localhost)"
        )
    if "#" in uri:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must not contain a fragment")
    return uri


def validate_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """RFC 7591 §2 request → clean field values (raises ``invalid_client_metadata``)."""
    if not isinstance(meta, dict):
        raise _bad("registration body must be a JSON object")
    method = meta.get("token_endpoint_auth_method", "none")
    if method not in AUTH_METHODS:
        raise _bad(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    default_grants = (
        ["client_credentials"] if method == "private_key_jwt" else ["authorization_code"]
    )
    grants = meta.get("grant_types", default_grants)
    if not isinstance(grants, list) or not grants or any(g not in GRANT_TYPES for g in grants):
        raise _bad(f"grant_types must be a non-empty subset of {', '.join(GRANT_TYPES)}")
    if "client_credentials" in grants and method != "private_key_jwt":
        raise _bad("client_credentials needs token_endpoint_auth_method private_key_jwt")
    redirects = meta.get("redirect_uris", [])
    if not isinstance(redirects, list):
        raise _bad("redirect_uris must be an array")
    redirects = [_check_redirect(u) for u in redirects]
    if "authorization_code" in grants and not redirects:
        raise OAuthError("invalid_redirect_uri", "authorization_code clients need redirect_uris")
    jwks = meta.get("jwks")
    if method == "private_key_jwt":
        if "jwks_uri" in meta and jwks is None:
            raise _bad("only inline jwks are supported; jwks_uri is not fetched")
        jwks = _check_jwks(jwks)
    elif jwks is not None:
        raise _bad("public clients carry no jwks")
    scope = meta.get("scope", "")
    if not isinstance(scope, str):
        raise _bad("scope must be a space-delimited string")
    for s in split_scopes(scope):
        try:
            parse_scope(s)
        except ScopeError as exc:
            raise OAuthError("invalid_client_metadata", str(exc)) from exc
    ext = meta.get("consilium") or {}
    if not isinstance(ext, dict):
        raise _bad("consilium must be an object")
    org, role, prole = ext.get("organization"), ext.get("role"), ext.get("practitioner_role")
    for name, value in (("organization", org), ("practitioner_role", prole)):
        if value is not None and (not isinstance(value, str) or not _ID.match(value)):
            raise _bad(f"consilium.{name} must be a FHIR logical id")
    if role is not None and role not in ROLES:
        raise _bad(f"consilium.role must be one of {', '.join(ROLES)}")
    if (org is None) != (role is None):
        raise _bad("consilium.organization and consilium.role go together")
    name = meta.get("client_name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise _bad("client_name must be a string of at most 200 characters")
    return {
        "client_name": name,
        "token_endpoint_auth_method": method,
        "grant_types": grants,
        "redirect_uris": redirects,
        "scope": " ".join(split_scopes(scope)),
        "jwks": jwks or {},
        "organization": org,
        "role": role,
        "practitioner_role": prole,
    }


def new_client_id() -> str:
    return secrets.token_urlsafe(18).replace("_", "-")
