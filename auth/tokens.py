"""Issuing and verifying our own JWTs: access tokens (RFC 9068 profile) and OIDC id_tokens.

SMART App Launch 2.x "Obtaining an access token" / OpenID Connect Core §2. Access tokens are
short-lived signed JWTs (``typ: at+jwt``) so any worker can verify them without a lookup; the
verifier pins the algorithm (``RS384`` only, never ``none`` or HMAC) and the key by ``kid``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from jose import jwt
from jose.exceptions import JOSEError

from auth.errors import TokenInvalid
from auth.keys import SIGNING_ALG, KeyStore
from auth.principal import Principal

ACCESS_TYP = "at+jwt"
ID_TYP = "JWT"
# Clock skew allowed on our own access tokens' exp/nbf/iat. Only this deployment's workers
# verify them, on NTP-synced hosts: 5 s covers that; 30 s made a 5-minute token live 5.5.
LEEWAY_SECONDS = 5


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
    return _decode(keys, token, issuer)[0]


def _decode(keys: KeyStore, token: str, issuer: str | None) -> tuple[dict[str, Any], str]:
    """``decode_access_token``, and the ``kid`` of the key that verified the token."""
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
    return claims, key.kid


class VerifiedTokens:
    """Access tokens this process has fully verified, remembered until their ``exp``.

    Why: one RS384 verification through python-jose (header and claims parsing, the JWK turned
    into a key object, the signature) costs ~0.45 ms, the largest part of our own code in a
    read; a client sends the same token on every request until it expires.

    What a remembered token still needs on every use: its ``exp`` not passed (after it, the token
    is verified again from scratch, which applies the usual leeway, so it is accepted exactly as
    long as before), the key that signed it still known (a retired key stops its tokens at once,
    as before), and the caller's issuer. Only tokens that passed ``decode_access_token`` enter,
    keyed by the whole token text (a changed byte is a different token, verified in full).
    Revocation is not decided here: the caller checks the ``jti`` on every request, remembered or
    not. Bounded: beyond ``max_entries`` the oldest entry goes (it is merely verified again).
    """

    def __init__(self, max_entries: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[dict[str, Any], str, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def decode(self, keys: KeyStore, token: str, *, issuer: str | None = None) -> dict[str, Any]:
        """``decode_access_token``, answered from memory for a token verified before."""
        hit = self._entries.get(token)
        if hit is not None:
            claims, kid, exp = hit
            if self._clock() < exp and keys.get(kid) is not None:
                if issuer is not None and claims.get("iss") != issuer:
                    raise TokenInvalid("token was issued for another server")
                return dict(claims)
            with self._lock:
                self._entries.pop(token, None)
        claims, kid = _decode(keys, token, issuer)
        until = claims.get("exp")
        if isinstance(until, int | float) and not isinstance(until, bool) and until > self._clock():
            with self._lock:
                while len(self._entries) >= self.max_entries:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[token] = (dict(claims), kid, float(until))
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
