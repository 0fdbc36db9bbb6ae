"""FastAPI adapter for auth: bearer token → principal on ``request.state``.

Security by default: with auth on and no verifier installed, every protected request is refused.
"""

from __future__ import annotations

from fastapi import Request

from server.errors import FhirError


def authenticate(request: Request) -> None:
    state = request.app.state.consilium
    if not state.settings.auth_enabled:
        request.state.principal = None
        return
    verifier = state.extras.get("token_verifier")
    header = request.headers.get("authorization", "")
    if verifier is None or not header.lower().startswith("bearer "):
        raise FhirError(
            401, "login", "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.principal = verifier(header[7:].strip(), request)
