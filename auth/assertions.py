"""Client authentication by signed JWT assertion (RFC 7523 §3, SMART Backend Services
"Authenticating to the token endpoint", RFC 7521 §4.2).

Checks, in order: algorithm in the allow-list (RS384/ES384, matching the key type; never
``none`` nor HMAC), ``iss == sub == client_id`` of a registered ``private_key_jwt`` client, a
``kid`` that names one of its keys, the signature, ``aud`` = our token endpoint, ``exp`` present,
not passed and at most five minutes ahead (plus skew), and a ``jti`` never seen before within its
lifetime (recorded by the caller-supplied ``remember_jti``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from jose import jwt
from jose.exceptions import JOSEError

from auth.errors import OAuthError, invalid_client, invalid_request

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALG_KTY = {"RS384": "RSA", "ES384": "EC"}
MAX_LIFETIME_SECONDS = 300
CLOCK_SKEW_SECONDS = 60


class AssertionClient(Protocol):
    client_id: str
    token_endpoint_auth_method: str
    jwks: dict[str, Any]


def _key_for(client: AssertionClient, kid: str, alg: str) -> dict[str, Any]:
    for key in (client.jwks or {}).get("keys", []):
        if isinstance(key, dict) and key.get("kid") == kid:
            if key.get("kty") != ALG_KTY[alg]:
                raise invalid_client(f"key {kid!r} cannot verify {alg}")
            if key.get("alg") not in (None, alg):
                raise invalid_client(f"key {kid!r} is registered for {key.get('alg')}")
            return key
    raise invalid_client(f"no registered key with kid {kid!r}")


def verify_client_assertion(
    assertion: str,
    *,
    token_endpoint: str,
    find_client: Callable[[str], AssertionClient | None],
    remember_jti: Callable[[str, str, int], bool],
    now: float | None = None,
) -> AssertionClient:
    """Return the authenticated client or raise ``OAuthError(invalid_client)``.

    ``remember_jti(client_id, jti, exp)`` records a jti and returns False if it was already used.
    """
    if not assertion or len(assertion) > 16_384:
        raise invalid_request("client_assertion is missing or too large")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.get_unverified_claims(assertion)
    except JOSEError as exc:
        raise invalid_client("client_assertion is not a well-formed JWT") from exc
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALG_KTY:
        raise invalid_client(f"client_assertion alg must be one of {', '.join(ALG_KTY)}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise invalid_client("client_assertion header needs a kid")
    iss, sub = unverified.get("iss"), unverified.get("sub")
    if not isinstance(iss, str) or iss != sub:
        raise invalid_client("client_assertion iss and sub must both be the client_id")
    client = find_client(iss)
    if client is None or client.token_endpoint_auth_method != "private_key_jwt":  # noqa: S105
        raise invalid_client("unknown client or client not registered for private_key_jwt")
    key = _key_for(client, kid, alg)
    current = time.time() if now is None else now
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=[alg],
            audience=token_endpoint,
            options={
                "leeway": CLOCK_SKEW_SECONDS,
                "require_exp": True,
                "require_aud": True,
                "require_iss": True,
                "require_sub": True,
                "require_jti": True,
                "verify_iat": True,
                "verify_nbf": True,
            },
        )
    except JOSEError as exc:
        raise invalid_client(f"client_assertion rejected: {exc}") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise invalid_client("client_assertion exp must be a number")
    if exp > current + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise invalid_client("client_assertion exp is more than five minutes ahead")
    if exp < current - CLOCK_SKEW_SECONDS:  # jose checks this too; keep it explicit
        raise invalid_client("client_assertion has expired")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise invalid_client("client_assertion needs a jti")
    if not remember_jti(client.client_id, jti, int(exp) + CLOCK_SKEW_SECONDS):
        raise OAuthError("invalid_client", "client_assertion jti was already used", 401)
    return client
