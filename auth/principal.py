"""Who is calling: the verified token reduced to what the policy needs (SMART App Launch 2.x
"Token response": scope, patient and fhirUser context, plus the Consilium party binding).

Built by the token verifier (auth/tokens.py) from the JWT claims; the web adapter keeps it in the
request's security context (``request.state.security.principal``). ``cache`` holds per-request derived sets (a specialist's assigned
patients, an insurer's members) so they are computed once per request, not once per resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auth.scopes import Permission, ScopeError, parse_scope

ROLES = ("clinic", "specialist", "insurer", "coordinator")


@dataclass(frozen=True)
class Principal:
    client_id: str
    scopes: tuple[str, ...]
    subject: str = ""
    user: str | None = None  # fhirUser, e.g. "PractitionerRole/abc"
    patient: str | None = None  # launch patient context (logical id)
    organization: str | None = None  # Organization id the client/user is bound to
    role: str | None = None  # clinic | specialist | insurer | coordinator | None (trusted)
    practitioner_role: str | None = None  # a specialist's own PractitionerRole id
    token_id: str | None = None
    admin: bool = False
    permissions: tuple[Permission, ...] = ()
    cache: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def build(cls, client_id: str, scopes: tuple[str, ...], **kw: Any) -> Principal:
        perms: list[Permission] = []
        for s in scopes:
            try:
                p = parse_scope(s)
            except ScopeError:
                continue  # an unknown scope grants nothing
            if p is not None:
                perms.append(p)
        return cls(client_id, scopes, permissions=tuple(perms), **kw)

    @property
    def agent(self) -> str:
        return self.user or f"client:{self.client_id}"
