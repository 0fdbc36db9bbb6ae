"""Short-lived server records: used assertion jtis, codes, refresh tokens, launch contexts,
sign-in tickets.

Each has an ``expires_at`` with a TTL index (MongoDB removes it after expiry), but every check
also compares ``expires_at`` itself because TTL deletion is lazy. RFC 7523 §3 (jti replay),
RFC 6749 §4.1.2 (single-use codes), §10.4 (refresh token rotation), SMART EHR launch, and the
SMART standalone-launch patient picker (a ticket standing in for the password between the sign-in
and the picker page).
"""

from __future__ import annotations

from typing import Any

from mongoengine import BooleanField, DateTimeField, DictField, Document, StringField

_TTL = {"fields": ["expires_at"], "expireAfterSeconds": 0}


class UsedJtiBase(Document):  # type: ignore[misc]
    meta: dict[str, Any] = {"abstract": True, "indexes": [_TTL]}
    key = StringField(primary_key=True)  # client_id|jti
    expires_at = DateTimeField(required=True)


class AuthCodeBase(Document):  # type: ignore[misc]
    meta: dict[str, Any] = {"abstract": True, "indexes": [_TTL]}
    code_hash = StringField(primary_key=True)
    client_id = StringField(required=True)
    redirect_uri = StringField(required=True)
    scope = StringField(default="")
    code_challenge = StringField(required=True)
    username = StringField(required=True)
    context = DictField()
    nonce = StringField(null=True)
    used = BooleanField(default=False)
    expires_at = DateTimeField(required=True)


class RefreshTokenBase(Document):  # type: ignore[misc]
    meta: dict[str, Any] = {"abstract": True, "indexes": [_TTL]}
    token_hash = StringField(primary_key=True)
    client_id = StringField(required=True)
    scope = StringField(default="")
    username = StringField(null=True)
    context = DictField()
    revoked = BooleanField(default=False)
    expires_at = DateTimeField(required=True)


class LaunchContextBase(Document):  # type: ignore[misc]
    meta: dict[str, Any] = {"abstract": True, "indexes": [_TTL]}
    launch = StringField(primary_key=True)
    patient = StringField(required=True)
    expires_at = DateTimeField(required=True)


class SignInTicketBase(Document):  # type: ignore[misc]
    meta: dict[str, Any] = {"abstract": True, "indexes": [_TTL]}
    ticket_hash = StringField(primary_key=True)
    binding = StringField(required=True)  # hash of the authorization request it belongs to
    username = StringField(required=True)
    used = BooleanField(default=False)
    expires_at = DateTimeField(required=True)


class RevokedTokenBase(Document):  # type: ignore[misc]
    meta: dict[str, Any] = {"abstract": True, "indexes": [_TTL]}
    jti = StringField(primary_key=True)
    expires_at = DateTimeField(required=True)
