"""Access token issue/verify: algorithm pinning, kid, type, expiry, tampering, rotation, and
what a remembered verification (``VerifiedTokens``) still checks."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from jose import jwt

import auth.tokens as tokens_module
from auth.errors import TokenInvalid
from auth.keys import KeyStore
from auth.tokens import (
    VerifiedTokens,
    decode_access_token,
    issue_access_token,
    principal_from_claims,
)

ISS = "https://consilium.example/fhir"


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys")


def issue(keys: KeyStore, lifetime: int = 300) -> str:
    token, _ = issue_access_token(
        keys,
        issuer=ISS,
        client_id="c1",
        scopes=["system/*.rs"],
        lifetime=lifetime,
        binding={"org": "org-a", "role": "clinic"},
    )
    return token


def test_round_trip_gives_the_principal(keys: KeyStore) -> None:
    p = principal_from_claims(decode_access_token(keys, issue(keys), issuer=ISS))
    assert (p.client_id, p.organization, p.role) == ("c1", "org-a", "clinic")
    assert p.permissions[0].resource_type == "*"


def test_keys_persist_and_private_file_is_0600(tmp_path: Path) -> None:
    first = KeyStore(tmp_path / "k")
    again = KeyStore(tmp_path / "k")
    assert first.current.kid == again.current.kid
    mode = (tmp_path / "k" / f"{first.current.kid}.pem").stat().st_mode & 0o777
    assert mode == 0o600


def test_rotation_keeps_old_tokens_valid_and_publishes_both(keys: KeyStore) -> None:
    old = issue(keys)
    keys.rotate()
    assert decode_access_token(keys, old, issuer=ISS)["client_id"] == "c1"
    assert len(keys.jwks()["keys"]) == 2


def test_retired_key_invalidates_its_tokens(keys: KeyStore) -> None:
    old_kid = keys.current.kid
    old = issue(keys)
    keys.rotate()
    keys.retire(old_kid)
    with pytest.raises(TokenInvalid, match="unknown signing key"):
        decode_access_token(keys, old, issuer=ISS)


def test_expired_token_is_refused(keys: KeyStore) -> None:
    token, _ = issue_access_token(keys, issuer=ISS, client_id="c", scopes=[], lifetime=-3600)
    with pytest.raises(TokenInvalid):
        decode_access_token(keys, token, issuer=ISS)


def test_a_token_just_past_its_exp_is_accepted_within_the_leeway(keys: KeyStore) -> None:
    token, _ = issue_access_token(
        keys, issuer=ISS, client_id="c", scopes=[], lifetime=-(tokens_module.LEEWAY_SECONDS - 3)
    )
    assert decode_access_token(keys, token, issuer=ISS)["client_id"] == "c"


def test_a_token_past_its_exp_by_more_than_the_leeway_is_refused(keys: KeyStore) -> None:
    # The leeway is a few seconds (workers' clock skew), not half a minute of extra life.
    assert tokens_module.LEEWAY_SECONDS <= 5
    token, _ = issue_access_token(
        keys, issuer=ISS, client_id="c", scopes=[], lifetime=-(tokens_module.LEEWAY_SECONDS + 2)
    )
    with pytest.raises(TokenInvalid, match="expired"):
        decode_access_token(keys, token, issuer=ISS)


def test_tampered_payload_is_refused(keys: KeyStore) -> None:
    head, body, sig = issue(keys).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["scope"] = "system/*.cruds"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(TokenInvalid):
        decode_access_token(keys, f"{head}.{forged}.{sig}", issuer=ISS)


def test_alg_none_is_refused(keys: KeyStore) -> None:
    head = (
        base64.urlsafe_b64encode(
            json.dumps({"alg": "none", "typ": "at+jwt", "kid": keys.current.kid}).encode()
        )
        .decode()
        .rstrip("=")
    )
    body = issue(keys).split(".")[1]
    with pytest.raises(TokenInvalid, match="algorithm"):
        decode_access_token(keys, f"{head}.{body}.", issuer=ISS)


def test_hs256_with_public_key_as_secret_is_refused(keys: KeyStore) -> None:
    claims = jwt.get_unverified_claims(issue(keys))
    secret = json.dumps(keys.current.public_jwk)
    forged = jwt.encode(
        claims, secret, algorithm="HS256", headers={"kid": keys.current.kid, "typ": "at+jwt"}
    )
    with pytest.raises(TokenInvalid, match="algorithm"):
        decode_access_token(keys, forged, issuer=ISS)


def test_other_issuer_is_refused(keys: KeyStore) -> None:
    with pytest.raises(TokenInvalid, match="another server"):
        decode_access_token(keys, issue(keys), issuer="https://other.example/fhir")


def test_id_token_is_not_an_access_token(keys: KeyStore) -> None:
    from auth.tokens import issue_id_token

    idt = issue_id_token(
        keys, issuer=ISS, client_id="c", subject="u", fhir_user=None, nonce=None, lifetime=60
    )
    with pytest.raises(TokenInvalid, match="not an access token"):
        decode_access_token(keys, idt, issuer=ISS)


def test_garbage_is_refused(keys: KeyStore) -> None:
    with pytest.raises(TokenInvalid):
        decode_access_token(keys, "abc", issuer=ISS)


def test_rotation_by_another_process_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auth.keys as keys_module

    server = KeyStore(tmp_path / "shared")
    cli = KeyStore(tmp_path / "shared")
    new = cli.rotate()
    monkeypatch.setattr(keys_module, "RELOAD_SECONDS", 0.0)
    assert server.current.kid == new.kid
    assert server.get(new.kid) is not None


# ------------------------------------------------------------------ remembered verifications
class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tokens verified from scratch (signature and all) by ``VerifiedTokens``."""
    seen: list[str] = []
    real = tokens_module._decode

    def counting(keys: KeyStore, token: str, issuer: str | None) -> tuple[dict[str, Any], str]:
        seen.append(token)
        return real(keys, token, issuer)

    monkeypatch.setattr(tokens_module, "_decode", counting)
    return seen


def test_a_verified_token_is_not_verified_again(keys: KeyStore, full_checks: list[str]) -> None:
    cache, token = VerifiedTokens(), issue(keys)
    assert cache.decode(keys, token, issuer=ISS) == cache.decode(keys, token, issuer=ISS)
    assert full_checks == [token]


def test_a_remembered_token_is_verified_again_past_its_exp(
    keys: KeyStore, full_checks: list[str]
) -> None:
    clock = Clock()
    cache, token = VerifiedTokens(clock=clock), issue(keys, lifetime=60)
    cache.decode(keys, token, issuer=ISS)
    clock.now += 61
    cache.decode(keys, token, issuer=ISS)
    assert full_checks == [token, token]


def test_a_remembered_token_of_a_retired_key_is_refused(keys: KeyStore) -> None:
    cache, old_kid, token = VerifiedTokens(), keys.current.kid, issue(keys)
    cache.decode(keys, token, issuer=ISS)
    keys.rotate()
    keys.retire(old_kid)
    with pytest.raises(TokenInvalid, match="unknown signing key"):
        cache.decode(keys, token, issuer=ISS)


def test_a_remembered_token_is_refused_for_another_issuer(keys: KeyStore) -> None:
    cache, token = VerifiedTokens(), issue(keys)
    cache.decode(keys, token, issuer=ISS)
    with pytest.raises(TokenInvalid, match="another server"):
        cache.decode(keys, token, issuer="https://other.example/fhir")


def test_a_refused_token_is_not_remembered(keys: KeyStore) -> None:
    cache = VerifiedTokens()
    with pytest.raises(TokenInvalid):
        cache.decode(keys, issue(keys), issuer="https://other.example/fhir")
    assert len(cache) == 0


def test_remembered_tokens_are_bounded(keys: KeyStore) -> None:
    cache = VerifiedTokens(max_entries=2)
    for _ in range(3):
        cache.decode(keys, issue(keys), issuer=ISS)
    assert len(cache) == 2
