"""OAuth 2.0 error responses (RFC 6749 §5.2) raised by the auth core.

The core never imports the web layer: it raises ``OAuthError`` and the FastAPI adapter turns it
into ``{"error": ..., "error_description": ...}`` with the right status.
"""

from __future__ import annotations

from typing import Any


class OAuthError(Exception):
    """``error`` is an RFC 6749/7591 code (invalid_client, invalid_grant, invalid_scope ...)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


class TokenInvalid(Exception):
    """A bearer token that must be refused with 401 (bad signature, expired, revoked ...)."""
