"""Access token issue/verify: algorithm pinning, kid, type, expiry, tampering, rotation."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from jose import jwt

from auth.errors import TokenInvalid
from auth.keys import KeyStore
from auth.tokens import decode_access_token, issue_access_token, principal_from_claims

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
