"""The case tracker: a static web app served at ``/app`` that is a SMART app of this server.

Why static files and no server-side rendering of FHIR data: the app must prove the public FHIR
API is enough, and the party rules must apply unchanged. So the pages are plain HTML and small
vanilla JavaScript modules (no build step, no Node.js); they sign the user in through
``/oauth/authorize`` (authorization code + PKCE S256) and call ``/fhir`` with the user's bearer
token. The only server-side piece is this plugin: it mounts the files and keeps the app's public
OAuth client registered (a fixed id, no secret; see docs/tracker.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.staticfiles import StaticFiles

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.config import Settings
    from server.deps import AppState

STATIC = Path(__file__).resolve().parent / "static"
CLIENT_ID = "consilium-tracker"
CLIENT_NAME = "Consilium case tracker"
CALLBACK = "/app/callback.html"
# What the app may ask for: the user's own party binding decides what it sees and does.
# ``online_access``: a refresh token for as long as the user keeps working (the access token
# lives minutes; a tab signed in for a morning should not be sent back to the sign-in page).
CLIENT_SCOPE = "openid fhirUser online_access user/*.cruds"
_LOOPBACK = {"127.0.0.1", "localhost", "0.0.0.0", "::", "::1"}


def redirect_uris(settings: Settings) -> list[str]:
    """The callback URLs the tracker is reached at: the public base URL when one is set, else
    the listen address (a loopback or wildcard address is reachable as both ``127.0.0.1`` and
    ``localhost``). Registered from settings only, never from a request's Host header, so no one
    can make the server send codes to a host of their choosing."""
    if settings.base_url:
        return [settings.base_url.rstrip("/") + CALLBACK]
    hosts = ["127.0.0.1", "localhost"] if settings.host in _LOOPBACK else [settings.host]
    return [f"http://{h}:{settings.port}{CALLBACK}" for h in hosts]


def client_metadata(settings: Settings) -> dict[str, Any]:
    """RFC 7591 metadata of the tracker's public client (PKCE, no secret, no party binding:
    every token carries the signed-in user's own binding)."""
    return {
        "client_name": CLIENT_NAME,
        "token_endpoint_auth_method": "none",
        # refresh_token: SMART's online_access for a public client (rotated on every use, so a
        # stolen refresh token works once at most; docs/tracker.md "Token refresh").
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": redirect_uris(settings),
        "scope": CLIENT_SCOPE,
    }


def ensure_client(state: AppState) -> None:
    """Create or refresh the tracker's client record (idempotent; runs at every start)."""
    if state.auth is None or not state.settings.auth_enabled:
        return  # with authorization off the app has nothing to sign in to
    from auth.clients import validate_metadata

    store = state.auth.store
    values = validate_metadata(client_metadata(state.settings))
    existing = store.get_client(CLIENT_ID)
    if existing is not None and all(getattr(existing, k) == v for k, v in values.items()):
        return
    client = store.Client(client_id=CLIENT_ID, created_at=datetime.now(UTC), **values)
    client.save()


def plugin(app: FastAPI, state: AppState) -> None:
    """Mount the app at ``/app`` and register its client (after the SMART plugin)."""
    ensure_client(state)
    app.mount("/app", StaticFiles(directory=STATIC, html=True), name="tracker")
