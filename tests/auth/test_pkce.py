"""PKCE S256 (RFC 7636 §4.2) and the refusal of plain."""

from __future__ import annotations

import base64
import hashlib

import pytest

from auth import pkce

VERIFIER = "a" * 20 + "-._~" + "Z9" * 10
CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode().rstrip("=")
)


def test_s256_is_unpadded_base64url_of_sha256() -> None:
    assert pkce.s256(VERIFIER) == CHALLENGE
    assert pkce.verify(VERIFIER, CHALLENGE)


@pytest.mark.parametrize(
    ("challenge", "method", "ok"),
    [
        (CHALLENGE, "S256", True),
        (CHALLENGE, "plain", False),
        (CHALLENGE, None, False),
        ("short", "S256", False),
        (None, "S256", False),
    ],
)
def test_challenge_methods(challenge: str | None, method: str | None, ok: bool) -> None:
    assert pkce.valid_challenge(challenge, method) is ok


@pytest.mark.parametrize("verifier", ["wrong" * 10, "short", "", VERIFIER + "x"])
def test_mismatched_verifiers_fail(verifier: str) -> None:
    assert not pkce.verify(verifier, CHALLENGE)
