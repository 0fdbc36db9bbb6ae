"""Persistence for the auth core: mongoengine Documents bound to a per-app connection alias.

Holds the RFC 7591 client registrations, SMART users, RFC 7523 used jtis, RFC 6749 codes and
refresh tokens, EHR launch contexts, patient-picker sign-in tickets and RFC 7009 revocations.

Why per-alias concrete classes: mongoengine Documents name their connection in class metadata.
``switch_db`` flips that metadata process-wide (not thread-safe), and tests run many apps with
different databases in one process. So the Documents in clients/users/records are abstract, and
each ``AuthStore`` creates concrete subclasses bound to its own alias.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import mongoengine
from mongoengine import Document
from mongoengine.errors import NotUniqueError

from auth import records
from auth.clients import ClientBase, new_client_id, validate_metadata
from auth.users import UserBase, hash_password, verify_password

_counter = itertools.count()
_lock = threading.Lock()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _bind(base: type[Document], alias: str, collection: str, suffix: str) -> Any:
    meta: dict[str, Any] = {"db_alias": alias, "collection": collection}
    indexes = base._meta.get("indexes")
    if indexes:
        meta["indexes"] = indexes
    return type(f"{base.__name__.removesuffix('Base')}_{suffix}", (base,), {"meta": meta})


class AuthStore:
    def __init__(self, uri: str, db_name: str) -> None:
        with _lock:
            suffix = f"{next(_counter)}_{secrets.token_hex(4)}"
        self.alias = f"consilium-auth-{suffix}"
        # registered, not connected: the client is made on first use, so apps that never touch
        # auth records (auth off) open no extra connection pool
        mongoengine.register_connection(
            alias=self.alias, host=uri, db=db_name, tz_aware=True, uuidRepresentation="standard"
        )
        self.Client: Any = _bind(ClientBase, self.alias, "oauth_clients", suffix)
        self.User: Any = _bind(UserBase, self.alias, "oauth_users", suffix)
        self.UsedJti: Any = _bind(records.UsedJtiBase, self.alias, "oauth_used_jtis", suffix)
        self.AuthCode: Any = _bind(records.AuthCodeBase, self.alias, "oauth_codes", suffix)
        self.Refresh: Any = _bind(records.RefreshTokenBase, self.alias, "oauth_refresh", suffix)
        self.Launch: Any = _bind(records.LaunchContextBase, self.alias, "oauth_launch", suffix)
        self.Revoked: Any = _bind(records.RevokedTokenBase, self.alias, "oauth_revoked", suffix)
        self.Ticket: Any = _bind(records.SignInTicketBase, self.alias, "oauth_tickets", suffix)

    def close(self) -> None:
        mongoengine.disconnect(alias=self.alias)

    # ---------------------------------------------------------------------------------- clients
    def register_client(self, metadata: dict[str, Any]) -> Any:
        values = validate_metadata(metadata)
        client = self.Client(client_id=new_client_id(), created_at=_now(), **values)
        client.save(force_insert=True)
        return client

    def get_client(self, client_id: str) -> Any:
        if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
            return None
        return self.Client.objects(pk=client_id).first()

    # ------------------------------------------------------------------------------------ users
    def add_user(
        self,
        username: str,
        password: str,
        fhir_user: str | None,
        *,
        organization: str | None = None,
        role: str | None = None,
        practitioner_role: str | None = None,
        display_name: str = "",
    ) -> Any:
        user = self.User(
            username=username,
            password_hash=hash_password(password),
            fhir_user=fhir_user,
            organization=organization,
            role=role,
            practitioner_role=practitioner_role,
            display_name=display_name,
        )
        user.save()
        return user

    def get_user(self, username: str) -> Any:
        if not isinstance(username, str) or not username or len(username) > 128:
            return None
        return self.User.objects(pk=username).first()

    def check_login(self, username: str, password: str) -> Any:
        user = self.get_user(username)
        if user is None:
            verify_password(password, hash_password("timing-equaliser"))
            return None
        return user if verify_password(password, user.password_hash) else None

    # ---------------------------------------------------------------------------- jti replay
    def remember_jti(self, client_id: str, jti: str, exp: int) -> bool:
        """Record ``client_id|jti`` until ``exp``; False when it is already recorded."""
        key = f"{client_id}|{jti}"
        expires = datetime.fromtimestamp(exp, UTC)
        existing = self.UsedJti.objects(pk=key).first()
        if existing is not None and _utc(existing.expires_at) > _now():
            return False
        if existing is not None:
            existing.delete()
        try:
            self.UsedJti(key=key, expires_at=expires).save(force_insert=True)
        except NotUniqueError:
            return False
        return True

    # ------------------------------------------------------------------------------------ codes
    def create_code(self, lifetime: int = 60, **fields: Any) -> str:
        code = secrets.token_urlsafe(32)
        self.AuthCode(
            code_hash=_hash(code), expires_at=_now() + timedelta(seconds=lifetime), **fields
        ).save(force_insert=True)
        return code

    def redeem_code(self, code: str) -> Any:
        """Atomically mark a code used; None if unknown, already used or expired."""
        if not isinstance(code, str) or not code or len(code) > 256:
            return None
        rec = self.AuthCode.objects(pk=_hash(code), used=False).modify(set__used=True)
        if rec is None or _utc(rec.expires_at) <= _now():
            return None
        return rec

    # ---------------------------------------------------------------------------- refresh
    def create_refresh(self, lifetime: int, **fields: Any) -> str:
        token = secrets.token_urlsafe(32)
        self.Refresh(
            token_hash=_hash(token), expires_at=_now() + timedelta(seconds=lifetime), **fields
        ).save(force_insert=True)
        return token

    def use_refresh(self, token: str) -> Any:
        """Rotation: the presented token is revoked atomically; None if not usable."""
        if not isinstance(token, str) or not token or len(token) > 256:
            return None
        rec = self.Refresh.objects(pk=_hash(token), revoked=False).modify(set__revoked=True)
        if rec is None or _utc(rec.expires_at) <= _now():
            return None
        return rec

    def find_refresh(self, token: str) -> Any:
        if not isinstance(token, str) or not token or len(token) > 256:
            return None
        return self.Refresh.objects(pk=_hash(token)).first()

    def revoke_refresh(self, token: str) -> None:
        if isinstance(token, str) and token and len(token) <= 256:
            self.Refresh.objects(pk=_hash(token)).update(set__revoked=True)

    # ---------------------------------------------------------------------------- launch
    def create_launch(self, patient: str, lifetime: int = 600) -> str:
        launch = secrets.token_urlsafe(16)
        self.Launch(
            launch=launch, patient=patient, expires_at=_now() + timedelta(seconds=lifetime)
        ).save(force_insert=True)
        return launch

    def get_launch(self, launch: str) -> Any:
        if not isinstance(launch, str) or not launch or len(launch) > 128:
            return None
        rec = self.Launch.objects(pk=launch).first()
        if rec is None or _utc(rec.expires_at) <= _now():
            return None
        return rec

    # ------------------------------------------------------------------- sign-in tickets
    def create_ticket(self, lifetime: int, *, binding: str, username: str) -> str:
        ticket = secrets.token_urlsafe(32)
        self.Ticket(
            ticket_hash=_hash(ticket),
            binding=binding,
            username=username,
            expires_at=_now() + timedelta(seconds=lifetime),
        ).save(force_insert=True)
        return ticket

    def redeem_ticket(self, ticket: str, binding: str) -> Any:
        """Spend a sign-in ticket of this authorization request; the user, or None if the
        ticket is unknown, used, expired or belongs to another request."""
        if not isinstance(ticket, str) or not ticket or len(ticket) > 256:
            return None
        rec = self.Ticket.objects(pk=_hash(ticket), used=False).modify(set__used=True)
        if rec is None or _utc(rec.expires_at) <= _now() or rec.binding != binding:
            return None
        return self.get_user(rec.username)

    # ---------------------------------------------------------------------- revoked tokens
    def revoke_access(self, jti: str, exp: int) -> None:
        self.Revoked.objects(pk=jti).upsert_one(set__expires_at=datetime.fromtimestamp(exp, UTC))

    def revoked_jtis(self) -> set[str]:
        """Every revoked access-token id still on record (the verifier caches this set)."""
        return {d.jti for d in self.Revoked.objects.only("jti")}

    def is_revoked(self, jti: str) -> bool:
        return self.Revoked.objects(pk=jti).first() is not None
