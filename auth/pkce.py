"""Proof Key for Code Exchange, S256 only (RFC 7636 §4.1-4.6; SMART requires S256, forbids plain)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def valid_challenge(challenge: str | None, method: str | None) -> bool:
    return method == "S256" and isinstance(challenge, str) and bool(_CHALLENGE.match(challenge))


def verify(verifier: str | None, challenge: str) -> bool:
    if not isinstance(verifier, str) or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
