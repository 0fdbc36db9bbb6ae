"""Client assertion checks (RFC 7523 / SMART Backend Services), one negative per test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from auth.assertions import verify_client_assertion
from auth.errors import OAuthError
from tests.smart_helpers import KeyPair

AUD = "https://consilium.example/oauth/token"


@dataclass
class Client:
    client_id: str
    jwks: dict[str, Any]
    token_endpoint_auth_method: str = "private_key_jwt"


@dataclass
class Registry:
    clients: dict[str, Client] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def find(self, cid: str) -> Client | None:
        return self.clients.get(cid)

    def remember(self, cid: str, jti: str, exp: int) -> bool:
        key = f"{cid}|{jti}"
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


@pytest.fixture(scope="module")
def rsa() -> KeyPair:
    return KeyPair("RSA", kid="rsa-1")


@pytest.fixture(scope="module")
def ec() -> KeyPair:
    return KeyPair("EC", kid="ec-1")


@pytest.fixture
def registry(rsa: KeyPair, ec: KeyPair) -> Registry:
    return Registry(
        {
            "app": Client("app", {"keys": [rsa.public_jwk, ec.public_jwk]}),
            "public": Client("public", {}, "none"),
        }
    )


def verify(registry: Registry, assertion: str) -> Any:
    return verify_client_assertion(
        assertion, token_endpoint=AUD, find_client=registry.find, remember_jti=registry.remember
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    if secret is None:
        return f"{head}.{body}."
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "app", "sub": "app", "aud": AUD, "exp": now + 200, "jti": "j1", **over}


def test_rs384_assertion_is_accepted(registry: Registry, rsa: KeyPair) -> None:
    assert verify(registry, rsa.assertion("app", aud=AUD)).client_id == "app"


def test_es384_assertion_is_accepted(registry: Registry, ec: KeyPair) -> None:
    assert verify(registry, ec.assertion("app", aud=AUD)).client_id == "app"


def test_replayed_jti_is_refused(registry: Registry, rsa: KeyPair) -> None:
    verify(registry, rsa.assertion("app", aud=AUD, jti="same"))
    with pytest.raises(OAuthError, match="already used") as err:
        verify(registry, rsa.assertion("app", aud=AUD, jti="same"))
    assert err.value.error == "invalid_client"


def test_expired_assertion_is_refused(registry: Registry, rsa: KeyPair) -> None:
    with pytest.raises(OAuthError) as err:
        verify(registry, rsa.assertion("app", aud=AUD, exp_in=-600))
    assert err.value.error == "invalid_client"


def test_far_future_exp_is_refused(registry: Registry, rsa: KeyPair) -> None:
    with pytest.raises(OAuthError, match="five minutes"):
        verify(registry, rsa.assertion("app", aud=AUD, exp_in=3600))


def test_wrong_audience_is_refused(registry: Registry, rsa: KeyPair) -> None:
    with pytest.raises(OAuthError, match="rejected"):
        verify(registry, rsa.assertion("app", aud="https://evil.example/token"))


def test_unknown_kid_is_refused(registry: Registry, rsa: KeyPair) -> None:
    with pytest.raises(OAuthError, match="kid"):
        verify(registry, rsa.assertion("app", aud=AUD, kid="nope"))


def test_key_of_another_pair_under_a_known_kid_is_refused(registry: Registry) -> None:
    impostor = KeyPair("RSA", kid="rsa-1")
    with pytest.raises(OAuthError, match="rejected"):
        verify(registry, impostor.assertion("app", aud=AUD))


def test_alg_none_is_refused(registry: Registry) -> None:
    token = forge({"alg": "none", "kid": "rsa-1", "typ": "JWT"}, claims(), None)
    with pytest.raises(OAuthError, match="alg"):
        verify(registry, token)


def test_hs256_forgery_with_public_key_as_secret_is_refused(
    registry: Registry, rsa: KeyPair
) -> None:
    secret = json.dumps(rsa.public_jwk).encode()
    token = forge({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, claims(), secret)
    with pytest.raises(OAuthError, match="alg"):
        verify(registry, token)


def test_rs256_is_not_in_the_allow_list(registry: Registry, rsa: KeyPair) -> None:
    with pytest.raises(OAuthError, match="alg"):
        verify(registry, rsa.assertion("app", aud=AUD, alg="RS256"))


def test_algorithm_must_match_key_type(registry: Registry, rsa: KeyPair) -> None:
    # an RS384 signature presented under the EC key's kid
    with pytest.raises(OAuthError, match="cannot verify"):
        verify(registry, rsa.assertion("app", aud=AUD, kid="ec-1"))


def test_iss_must_equal_sub(registry: Registry, rsa: KeyPair) -> None:
    with pytest.raises(OAuthError, match="iss and sub"):
        verify(registry, rsa.assertion("app", aud=AUD, claims={"sub": "other"}))


def test_unknown_client_is_refused(registry: Registry, rsa: KeyPair) -> None:
    with pytest.raises(OAuthError, match="unknown client"):
        verify(registry, rsa.assertion("ghost", aud=AUD))


def test_public_client_cannot_use_assertions(registry: Registry, rsa: KeyPair) -> None:
    with pytest.raises(OAuthError, match="unknown client"):
        verify(registry, rsa.assertion("public", aud=AUD))


def test_missing_jti_is_refused(registry: Registry, rsa: KeyPair) -> None:
    from jose import jwt

    body = claims()
    del body["jti"]
    token = jwt.encode(body, rsa.pem, algorithm="RS384", headers={"kid": "rsa-1"})
    with pytest.raises(OAuthError):
        verify(registry, token)


def test_garbage_is_refused(registry: Registry) -> None:
    with pytest.raises(OAuthError) as err:
        verify(registry, "not.a.jwt")
    assert err.value.error == "invalid_client"
