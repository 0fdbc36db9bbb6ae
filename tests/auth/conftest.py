"""Fixtures shared by the OAuth core's tests: a site, a real auth store, an auth server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from auth.grants import AuthServer, Site
from auth.keys import KeyStore
from auth.store import AuthStore

SITE = Site(
    issuer="https://consilium.example/fhir",
    fhir_base="https://consilium.example/fhir",
    oauth_base="https://consilium.example/oauth",
)
REDIRECT = "https://app.example/cb"
ADMIN = "an-admin-token-long-enough-for-tests"


@pytest.fixture(scope="module")
def store(mongo_uri: str) -> Iterator[AuthStore]:
    """A store of the module's own, on the shared embedded database."""
    s = AuthStore(mongo_uri, f"t_auth_{uuid.uuid4().hex[:8]}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(store: AuthStore, tmp_path_factory: pytest.TempPathFactory) -> AuthServer:
    keys = KeyStore(Path(tmp_path_factory.mktemp("auth-keys")))
    return AuthServer(store=store, keys=lambda: keys, access_token_lifetime=300, admin_token=ADMIN)
