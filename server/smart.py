"""The SMART-on-FHIR plugin: keys, auth records, token verifier, policy, OAuth routes, discovery.

``smart_plugin(app, state)`` wires the framework-free core (``auth/``) into the app:
``state.auth`` holds the ``AuthRuntime``, ``state.token_verifier`` the verifier ``authenticate``
calls, ``state.policy`` the access policy (installed by server/access.py), and the
CapabilityStatement gets ``rest.security`` with the SMART oauth-uris extension.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request

from auth.errors import TokenInvalid
from auth.keys import KeyStore
from auth.principal import Principal
from auth.store import AuthStore
from auth.tokens import VerifiedTokens, principal_from_claims
from server import access
from server.config import Settings
from server.deps import AppState, base_url

log = logging.getLogger(__name__)
ADMIN_SCOPES = ("system/*.cruds",)
OAUTH_PREFIX = "/oauth"
REVOCATION_REFRESH_SECONDS = 2.0


@dataclass
class AuthRuntime:
    settings: Settings
    store: AuthStore
    _keys: KeyStore | None = None
    _revoked: set[str] = field(default_factory=set)
    _revoked_loaded: float = 0.0
    _verified: VerifiedTokens = field(default_factory=VerifiedTokens)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def keys(self) -> KeyStore:
        """Loaded (or generated into ``Settings.keys_dir``) at start with auth on, else lazily."""
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    self._keys = KeyStore(self.settings.keys_dir)
        return self._keys

    def fhir_base(self, request: Request) -> str:
        return base_url(request)

    def issuer(self, request: Request) -> str:
        return self.fhir_base(request)

    def endpoint(self, request: Request, name: str) -> str:
        return f"{self.fhir_base(request).removesuffix('/fhir')}{OAUTH_PREFIX}/{name}"

    def is_admin_token(self, token: str) -> bool:
        admin = self.settings.admin_token
        return bool(admin) and hmac.compare_digest(token.encode(), str(admin).encode())

    def admin_principal(self) -> Principal:
        return Principal.build("admin", ADMIN_SCOPES, subject="admin", admin=True)

    # Revoked access tokens are few and short-lived: a process-local set refreshed every couple
    # of seconds keeps a database round-trip off every request.
    def is_revoked(self, jti: str) -> bool:
        now = time.monotonic()
        if now - self._revoked_loaded > REVOCATION_REFRESH_SECONDS:
            with self._lock:
                self._revoked = self.store.revoked_jtis()
                self._revoked_loaded = now
        return jti in self._revoked

    def note_revoked(self, jti: str) -> None:
        with self._lock:
            self._revoked.add(jti)

    def verify(self, token: str, request: Request) -> Principal | None:
        if self.is_admin_token(token):
            return self.admin_principal()
        try:  # a token verified before is remembered until its exp (auth/tokens.py) ...
            claims = self._verified.decode(self.keys, token, issuer=self.issuer(request))
        except TokenInvalid:
            return None
        if self.is_revoked(str(claims["jti"])):  # ... and its revocation checked every time
            return None
        return principal_from_claims(claims)


def smart_contributor(state: AppState) -> Any:
    def contribute(statement: dict[str, Any]) -> None:
        base = str(statement.get("implementation", {}).get("url", ""))
        root = base.removesuffix("/fhir")
        ext = [
            {"url": "authorize", "valueUri": f"{root}{OAUTH_PREFIX}/authorize"},
            {"url": "token", "valueUri": f"{root}{OAUTH_PREFIX}/token"},
            {"url": "register", "valueUri": f"{root}{OAUTH_PREFIX}/register"},
            {"url": "introspect", "valueUri": f"{root}{OAUTH_PREFIX}/introspect"},
            {"url": "revoke", "valueUri": f"{root}{OAUTH_PREFIX}/revoke"},
        ]
        security = {
            "cors": True,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ],
                    "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
                }
            ],
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": ext,
                }
            ],
        }
        if not state.settings.auth_enabled:
            security["description"] = "authorization is switched off (CONSILIUM_AUTH=off)"
        for rest in statement.get("rest", []):
            rest["security"] = security

    return contribute


def smart_plugin(app: FastAPI, state: AppState) -> None:
    from server.rest.oauth import discovery_router, router

    settings = state.settings
    runtime = AuthRuntime(settings, AuthStore(_mongo_uri(state), settings.db_name))
    if settings.admin_token is not None and len(settings.admin_token) < 24:
        log.warning("CONSILIUM_ADMIN_TOKEN is short; use at least 32 random characters")
    if settings.auth_enabled:
        runtime.keys  # noqa: B018 - generate/load the signing keys at start, not on a request
    state.auth = runtime
    state.token_verifier = runtime.verify
    state.shutdown_hooks.append(runtime.store.close)
    access.install(app, state)
    state.capability_contributors.append(smart_contributor(state))
    app.include_router(discovery_router, prefix="/fhir")
    app.include_router(router, prefix=OAUTH_PREFIX)


def _mongo_uri(state: AppState) -> str:
    uri = state.mongodb_uri or state.settings.mongodb_uri
    if not uri:
        raise RuntimeError("the SMART plugin needs the MongoDB URI in state.mongodb_uri")
    return str(uri)
