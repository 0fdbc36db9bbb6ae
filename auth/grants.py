"""The OAuth 2.0 token-side grants, framework-free (Authlib's ``AuthorizationServer`` shape).

Implements RFC 6749 §4.1.3 (authorization_code, with RFC 7636 PKCE), §4.4 (client_credentials,
as SMART Backend Services: ``private_key_jwt`` client assertions per RFC 7523 §2.2/§3), §6
(refresh_token, rotated on every use as §10.4 recommends), §5 (token and error responses),
RFC 7662 (introspection), RFC 7009 (revocation), RFC 7591 (registration behind the admin token)
and the SMART App Launch 2.x "Token response" (``patient``, ``need_patient_banner``,
``id_token`` for ``openid fhirUser``) and "EHR launch" context creation.

Plain data in (form fields, the ``Authorization`` header value, the ``Site`` the caller sees),
plain data out (a JSON-ready dict) or an ``OAuthError`` carrying the RFC 6749 §5.2 error code
and HTTP status. Each audited endpoint (token, revocation, registration) takes the request's
``AuthEvent`` and fills in the client and user as soon as they are known, which is all the audit
needs; introspection is a lookup and is not audited. Nothing here knows the web
framework; ``server/rest/oauth.py`` parses requests and renders responses around it.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from auth import pkce
from auth.assertions import ASSERTION_TYPE, verify_client_assertion
from auth.audit import AuthEvent
from auth.errors import (
    OAuthError,
    TokenInvalid,
    invalid_client,
    invalid_grant,
    invalid_request,
    invalid_scope,
)
from auth.keys import KeyStore
from auth.scopes import is_valid_scope, parse_scope, scope_within, split_scopes
from auth.store import AuthStore
from auth.tokens import decode_access_token, issue_access_token, issue_id_token
from resources.validation import ID_PATTERN

OFFLINE_LIFETIME = 30 * 24 * 3600
ONLINE_LIFETIME = 3600
ID_TOKEN_LIFETIME = 300
INTROSPECTED_CLAIMS = (
    "scope",
    "client_id",
    "sub",
    "exp",
    "iat",
    "iss",
    "aud",
    "jti",
    "patient",
    "fhirUser",
)


@dataclass(frozen=True)
class Site:
    """Where this server is, as the caller sees it (the adapter derives it from the request).

    ``issuer`` is the token ``iss`` (our FHIR base, SMART App Launch "Discovery"); ``oauth_base``
    the root of the OAuth endpoints, so the token endpoint a client assertion must name as its
    ``aud`` (RFC 7523 §3) is ``endpoint("token")``.
    """

    issuer: str
    fhir_base: str
    oauth_base: str

    def endpoint(self, name: str) -> str:
        return f"{self.oauth_base.rstrip('/')}/{name}"


@dataclass(frozen=True)
class AuthServer:
    """The services the grants run against: the auth records store and the signing keys.

    ``keys`` is a callable so a request that never signs or verifies (an authorize page) never
    loads or generates keys. ``note_revoked`` tells the token verifier's local cache about a
    revocation at once, instead of after its next refresh.
    """

    store: AuthStore
    keys: Callable[[], KeyStore]
    access_token_lifetime: int
    admin_token: str | None = None
    note_revoked: Callable[[str], None] = lambda _jti: None

    def is_admin_token(self, token: str) -> bool:
        admin = self.admin_token
        return bool(admin) and hmac.compare_digest(token.encode(), str(admin).encode())


# --------------------------------------------------------------------------- client auth
def authenticate_client(
    server: AuthServer,
    site: Site,
    form: dict[str, str],
    *,
    authorization: str = "",
    allow_public: bool,
) -> Any:
    """RFC 6749 §2.3 / RFC 7523 §2.2: a ``private_key_jwt`` assertion, or a public client id.

    Client secrets (HTTP Basic) are refused outright: SMART 2.x asymmetric clients only.
    """
    if authorization.lower().startswith("basic "):
        raise invalid_client("client secrets are not supported; use private_key_jwt")
    if "client_assertion" in form or "client_assertion_type" in form:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
        client = verify_client_assertion(
            form.get("client_assertion", ""),
            token_endpoint=site.endpoint("token"),
            find_client=server.store.get_client,
            remember_jti=server.store.remember_jti,
        )
        if form.get("client_id") not in (None, client.client_id):
            raise invalid_client("client_id does not match the assertion")
        return client
    client = server.store.get_client(form.get("client_id", ""))
    if client is None:
        raise invalid_client("unknown client")
    if client.token_endpoint_auth_method != "none":  # noqa: S105
        raise invalid_client("this client must authenticate with a client_assertion")
    if not allow_public:
        raise invalid_client("client authentication required")
    return client


def negotiate_scopes(requested: str | None, allowed: list[str]) -> list[str]:
    """RFC 6749 §3.3: the requested scopes, each within what the client may have (or all of
    them when none are requested)."""
    wanted = split_scopes(requested)
    if not wanted:
        if not allowed:
            raise invalid_scope("no scope requested and the client has no default scopes")
        return allowed
    for s in wanted:
        if not is_valid_scope(s):
            raise invalid_scope(f"unknown scope {s!r}")
        if not scope_within(s, allowed):
            raise invalid_scope(f"scope {s!r} is not allowed for this client")
    return wanted


def token_response(
    server: AuthServer,
    site: Site,
    client: Any,
    scopes: list[str],
    *,
    user: Any = None,
    context: dict[str, Any] | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """RFC 6749 §5.1 + SMART "Token response": access token, launch context, id_token and a
    refresh token when ``offline_access``/``online_access`` was granted to a user."""
    binding = user.binding() if user is not None and user.organization else client.binding()
    ctx = dict(context or {})
    if user is not None:
        ctx["fhirUser"] = user.fhir_user
    lifetime = server.access_token_lifetime
    keys = server.keys()
    token, _ = issue_access_token(
        keys,
        issuer=site.issuer,
        client_id=client.client_id,
        scopes=scopes,
        lifetime=lifetime,
        subject=user.username if user is not None else client.client_id,
        context=ctx,
        binding=binding,
    )
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(scopes),
    }
    if ctx.get("patient"):
        body["patient"] = ctx["patient"]
        body["need_patient_banner"] = True
    if user is not None and "openid" in scopes and "fhirUser" in scopes:
        body["id_token"] = issue_id_token(
            keys,
            issuer=site.issuer,
            client_id=client.client_id,
            subject=user.username,
            fhir_user=user.fhir_user,
            nonce=nonce,
            lifetime=ID_TOKEN_LIFETIME,
        )
    if user is not None and ("offline_access" in scopes or "online_access" in scopes):
        body["refresh_token"] = server.store.create_refresh(
            OFFLINE_LIFETIME if "offline_access" in scopes else ONLINE_LIFETIME,
            client_id=client.client_id,
            scope=" ".join(scopes),
            username=user.username,
            context={k: v for k, v in (context or {}).items() if v is not None},
        )
    return body


# ---------------------------------------------------------------------------------- grants
def token_request(
    server: AuthServer,
    site: Site,
    form: dict[str, str],
    event: AuthEvent,
    *,
    authorization: str = "",
) -> dict[str, Any]:
    """The token endpoint (RFC 6749 §3.2): dispatch on ``grant_type``."""
    grant = form.get("grant_type")
    handler = GRANTS.get(grant or "")
    if handler is not None:
        return handler(server, site, form, event, authorization)
    if not grant:
        raise invalid_request("grant_type is required")
    raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")


def client_credentials(
    server: AuthServer, site: Site, form: dict[str, str], event: AuthEvent, authorization: str
) -> dict[str, Any]:
    """SMART Backend Services: system/ scopes for a client that proves its key."""
    if "client_assertion" not in form:
        raise invalid_client("client_credentials needs a client_assertion (private_key_jwt)")
    client = authenticate_client(
        server, site, form, authorization=authorization, allow_public=False
    )
    event.client_id = client.client_id
    if "client_credentials" not in client.grant_types:
        raise OAuthError("unauthorized_client", "client is not registered for client_credentials")
    scopes = negotiate_scopes(form.get("scope"), client.allowed_scopes())
    for s in scopes:
        perm = parse_scope(s)
        if perm is None or perm.context != "system":
            raise invalid_scope(f"backend services are granted system/ scopes only, not {s!r}")
    return token_response(server, site, client, scopes)


def authorization_code(
    server: AuthServer, site: Site, form: dict[str, str], event: AuthEvent, authorization: str
) -> dict[str, Any]:
    """RFC 6749 §4.1.3 with RFC 7636 §4.6: a single-use code, same client, same redirect_uri,
    and the verifier that hashes to the challenge."""
    client = authenticate_client(server, site, form, authorization=authorization, allow_public=True)
    event.client_id = client.client_id
    code, redirect_uri, verifier = (
        form.get("code"),
        form.get("redirect_uri"),
        form.get("code_verifier"),
    )
    if not code or not redirect_uri or not verifier:
        raise invalid_request("code, redirect_uri and code_verifier are required")
    rec = server.store.redeem_code(code)
    if rec is None:
        raise invalid_grant("authorization code is invalid, expired or already used")
    if rec.client_id != client.client_id:
        raise invalid_grant("authorization code was issued to another client")
    if rec.redirect_uri != redirect_uri:
        raise invalid_grant("redirect_uri does not match the authorization request")
    if not pkce.verify(verifier, rec.code_challenge):
        raise invalid_grant("PKCE verification failed")
    user = server.store.get_user(rec.username)
    if user is None:
        raise invalid_grant("the user no longer exists")
    event.user = user.fhir_user
    return token_response(
        server,
        site,
        client,
        split_scopes(rec.scope),
        user=user,
        context=dict(rec.context or {}),
        nonce=rec.nonce,
    )


def refresh_token(
    server: AuthServer, site: Site, form: dict[str, str], event: AuthEvent, authorization: str
) -> dict[str, Any]:
    """RFC 6749 §6: the presented refresh token is spent (rotation) and a new one issued; the
    scope may only narrow."""
    client = authenticate_client(server, site, form, authorization=authorization, allow_public=True)
    event.client_id = client.client_id
    presented = form.get("refresh_token")
    if not presented:
        raise invalid_request("refresh_token is required")
    known = server.store.find_refresh(presented)
    if known is None or known.client_id != client.client_id:
        raise invalid_grant("refresh token is invalid")
    rec = server.store.use_refresh(presented)
    if rec is None:
        raise invalid_grant("refresh token is expired, revoked or already used")
    granted = split_scopes(rec.scope)
    scopes = negotiate_scopes(form.get("scope"), granted) if form.get("scope") else granted
    user = server.store.get_user(rec.username) if rec.username else None
    if user is None:
        raise invalid_grant("the user no longer exists")
    event.user = user.fhir_user
    return token_response(server, site, client, scopes, user=user, context=dict(rec.context or {}))


Grant = Callable[[AuthServer, Site, dict[str, str], AuthEvent, str], dict[str, Any]]
GRANTS: dict[str, Grant] = {
    "client_credentials": client_credentials,
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
}


# --------------------------------------------------------------- introspection, revocation
def _presented_token(
    server: AuthServer, site: Site, form: dict[str, str]
) -> tuple[str, dict[str, Any] | None]:
    """The ``token`` form field (RFC 7662 §2.1 / RFC 7009 §2.1), with its claims when it is one
    of our access tokens; None means "not an access token" (a refresh token, or nothing we
    issued)."""
    token = form.get("token")
    if not token:
        raise invalid_request("token is required")
    try:
        return token, decode_access_token(server.keys(), token, issuer=site.issuer)
    except TokenInvalid:
        return token, None


def introspect(
    server: AuthServer,
    site: Site,
    form: dict[str, str],
    *,
    bearer: str | None = None,
    authorization: str = "",
) -> dict[str, Any]:
    """RFC 7662 §2.2: the admin token or an authenticated confidential client may ask; anything
    not active (unknown, expired, revoked) is just ``{"active": false}``."""
    if not (bearer and server.is_admin_token(bearer)):
        authenticate_client(server, site, form, authorization=authorization, allow_public=False)
    token, claims = _presented_token(server, site, form)
    if claims is not None:
        if server.store.is_revoked(str(claims["jti"])):
            return {"active": False}
        return {
            "active": True,
            "token_type": "Bearer",
            **{k: claims[k] for k in INTROSPECTED_CLAIMS if k in claims},
        }
    rec = server.store.find_refresh(token)
    if rec is not None and not rec.revoked and rec.expires_at.timestamp() > time.time():
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": rec.client_id,
            "scope": rec.scope,
            "exp": int(rec.expires_at.timestamp()),
        }
    return {"active": False}


def revoke(
    server: AuthServer,
    site: Site,
    form: dict[str, str],
    event: AuthEvent,
    *,
    authorization: str = "",
) -> None:
    """RFC 7009 §2: a client revokes its own access or refresh token; a token of another
    client, or an unknown one, is silently ignored (§2.2: the response is 200 either way)."""
    client = authenticate_client(server, site, form, authorization=authorization, allow_public=True)
    event.client_id = client.client_id
    token, claims = _presented_token(server, site, form)
    if claims is not None:
        if claims.get("client_id") == client.client_id:
            server.store.revoke_access(str(claims["jti"]), int(claims["exp"]))
            server.note_revoked(str(claims["jti"]))
        return
    rec = server.store.find_refresh(token)
    if rec is not None and rec.client_id == client.client_id:
        server.store.revoke_refresh(token)


# ------------------------------------------------------------------- admin: register, launch
def require_admin(server: AuthServer, bearer: str | None, event: AuthEvent | None = None) -> None:
    """Admin-only endpoints: closed (403) without a configured admin token, 401 without it."""
    if not server.admin_token:
        raise OAuthError(
            "access_denied", "registration is closed: no admin token is configured", 403
        )
    if bearer is None or not server.is_admin_token(bearer):
        raise OAuthError("invalid_token", "an admin bearer token is required", 401)
    if event is not None:
        event.client_id = "admin"


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def register(
    server: AuthServer, bearer: str | None, content_type: str, body: bytes, event: AuthEvent
) -> dict[str, Any]:
    """RFC 7591 §3.1 with an initial access token (the admin token): JSON client metadata in,
    the registered client's metadata out (§3.2.1)."""
    require_admin(server, bearer, event)
    if _media_type(content_type) != "application/json":
        raise invalid_request("registration requests are application/json")
    try:
        metadata = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OAuthError("invalid_client_metadata", "body is not JSON") from exc
    client = server.store.register_client(metadata)
    out: dict[str, Any] = client.to_metadata()
    return out


def create_launch(server: AuthServer, bearer: str | None, body: bytes) -> str:
    """SMART EHR launch: bind a patient context to a one-time ``launch`` value (admin only)."""
    require_admin(server, bearer)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_request('body must be JSON: {"patient": "<id>"}') from exc
    patient = parsed.get("patient") if isinstance(parsed, dict) else None
    if not isinstance(patient, str) or not ID_PATTERN.match(patient):
        raise invalid_request("patient must be a FHIR logical id")
    return server.store.create_launch(patient)
