"""Issuing and verifying our own JWTs: access tokens (RFC 9068 profile) and OIDC id_tokens.

SMART App Launch 2.x "Obtaining an access token" / OpenID Connect Core §2. Access tokens are
short-lived signed JWTs (``typ: at+jwt``) so any worker can verify them without a lookup; the
verifier pins the algorithm (``RS384`` only, never ``none`` or HMAC) and the key by ``kid``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from jose import jwt
from jose.exceptions import JOSEError

from auth.errors import TokenInvalid
from auth.keys import SIGNING_ALG, KeyStore
from auth.principal import Principal

ACCESS_TYP = "at+jwt"
ID_TYP = "JWT"
LEEWAY_SECONDS = 30


def issue_access_token(
    keys: KeyStore,
    *,
    issuer: str,
    client_id: str,
    scopes: list[str],
    lifetime: int,
    subject: str | None = None,
    context: dict[str, Any] | None = None,
    binding: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign an access token; ``binding`` = org/role/practitioner_role, ``context`` = patient..."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": issuer,
        "sub": subject or client_id,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    for k, v in (context or {}).items():
        if v is not None:
            claims[k] = v
    for k, v in (binding or {}).items():
        if v is not None:
            claims[k] = v
    key = keys.current
    token = jwt.encode(
        claims, key.private_pem, algorithm=SIGNING_ALG, headers={"kid": key.kid, "typ": ACCESS_TYP}
    )
    return token, claims


def issue_id_token(
    keys: KeyStore,
    *,
    issuer: str,
    client_id: str,
    subject: str,
    fhir_user: str | None,
    nonce: str | None,
    lifetime: int,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client_id,
        "sub": subject,
        "iat": now,
        "exp": now + lifetime,
    }
    if fhir_user:
        claims["fhirUser"] = fhir_user
    if nonce:
        claims["nonce"] = nonce
    key = keys.current
    token: str = jwt.encode(
        claims, key.private_pem, algorithm=SIGNING_ALG, headers={"kid": key.kid, "typ": ID_TYP}
    )
    return token


def decode_access_token(keys: KeyStore, token: str, *, issuer: str | None = None) -> dict[str, Any]:
    """Verify signature, algorithm, kid, type, time and issuer; raise ``TokenInvalid``."""
    try:
        header = jwt.get_unverified_header(token)
    except JOSEError as exc:
        raise TokenInvalid("malformed token") from exc
    if header.get("alg") != SIGNING_ALG:
        raise TokenInvalid(f"algorithm {header.get('alg')!r} is not accepted")
    if header.get("typ") != ACCESS_TYP:
        raise TokenInvalid("not an access token")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenInvalid("unknown signing key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_jwk,
            algorithms=[SIGNING_ALG],
            options={"verify_aud": False, "leeway": LEEWAY_SECONDS, "require_exp": True},
        )
    except JOSEError as exc:
        raise TokenInvalid(str(exc)) from exc
    if issuer is not None and claims.get("iss") != issuer:
        raise TokenInvalid("token was issued for another server")
    if not isinstance(claims.get("client_id"), str) or not isinstance(claims.get("jti"), str):
        raise TokenInvalid("token lacks client_id/jti")
    return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    scopes = tuple(str(claims.get("scope", "")).split())

    def opt(name: str) -> str | None:
        v = claims.get(name)
        return v if isinstance(v, str) and v else None

    return Principal.build(
        claims["client_id"],
        scopes,
        subject=str(claims.get("sub", "")),
        user=opt("fhirUser"),
        patient=opt("patient"),
        organization=opt("org"),
        role=opt("role"),
        practitioner_role=opt("prole"),
        token_id=opt("jti"),
    )
