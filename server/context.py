"""The per-request security context: who is calling, what they were granted, what they may see.

Built once per request by the auth dependency (``server.security.authenticate``) and passed
explicitly to the repository (``Repository(store, hooks, security=...)``), which is the only
place that applies it. Why a typed object rather than ``request.state.principal`` plus a policy
looked up on the store: the principal, its scopes, its party and the policy's per-type answers
travel together, and the answers are computed once per request and per type instead of at every
query (a search with includes and paging asked the policy for the same filter five times).

``policy`` None means no narrowing (auth off, or the server acting on its own account);
``principal`` None with a policy means the policy still narrows (tests install one that way).
Per-resource checks (``can_read``) are not cached: they depend on the resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from auth.policy import Verdict
from auth.principal import Principal
from server.errors import FhirError
from server.search import residual

Filter = dict[str, Any]
ALLOWED = Verdict(True, "auth-off")


class AccessPolicy(Protocol):
    """What the repository asks of a policy (``server.access.StorePolicy`` implements it)."""

    def access_filter(self, p: Principal | None, resource_type: str) -> Filter: ...

    def history_filter(self, p: Principal | None, resource_type: str) -> Filter: ...

    def decide(self, p: Principal | None, interaction: str, resource_type: str) -> Verdict: ...

    def can_read(
        self,
        p: Principal | None,
        resource_type: str,
        resource: dict[str, Any],
        acl: dict[str, Any] | None = None,
    ) -> bool: ...

    def redact(
        self, p: Principal | None, resource_type: str, resource: dict[str, Any]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Party:
    """The Consilium party a token is bound to (DOMAIN.md): clinic, specialist or insurer."""

    role: str | None
    organization: str | None


@dataclass
class SecurityContext:
    principal: Principal | None = None
    policy: AccessPolicy | None = None
    _filters: dict[str, Filter] = field(default_factory=dict, repr=False)
    _parts: dict[str, tuple[Filter, Filter | None]] = field(default_factory=dict, repr=False)
    _history: dict[str, Filter] = field(default_factory=dict, repr=False)
    _verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict, repr=False)

    @classmethod
    def system(cls) -> SecurityContext:
        """The server acting on its own account: no narrowing, no checks."""
        return cls()

    # ------------------------------------------------------------------------------- who
    @property
    def enforcing(self) -> bool:
        """Whether per-interaction checks (scopes, 403/404 on reads, redaction) apply."""
        return self.policy is not None and self.principal is not None

    @property
    def scopes(self) -> tuple[str, ...]:
        """The SMART scopes granted to the token (empty without a principal)."""
        return self.principal.scopes if self.principal else ()

    @property
    def party(self) -> Party | None:
        p = self.principal
        return Party(p.role, p.organization) if p is not None and p.role else None

    # --------------------------------------------------------------- per type, cached
    def access_filter(self, resource_type: str) -> Filter:
        """The MongoDB filter every query on ``resource_type`` is narrowed by (``{}``: none)."""
        if self.policy is None:
            return {}
        found = self._filters.get(resource_type)
        if found is None:
            found = self._filters[resource_type] = self.policy.access_filter(
                self.principal, resource_type
            )
        return found

    def access_parts(self, resource_type: str) -> tuple[Filter, Filter | None]:
        """(part for the database filter, part to check on the fetched documents).

        SecantusDB serves a query from an index only when the index covers every predicate, so
        an access filter ANDed into each query made every search of a restricted principal (a
        clinic, an expert, an insurer) a collection scan. When ``residual.matches`` decides the
        access filter exactly as MongoDB would, it is checked on the projected ``acl``/``idx``
        values instead: same result, and the database keeps its index scan.
        """
        found = self._parts.get(resource_type)
        if found is None:
            access = self.access_filter(resource_type)
            found = ({}, access) if access and residual.exact(access) else (access, None)
            self._parts[resource_type] = found
        return found

    def history_filter(self, resource_type: str) -> Filter:
        """The part of the access filter history documents can answer (their ``acl``)."""
        if not self.enforcing:
            return {}
        assert self.policy is not None
        found = self._history.get(resource_type)
        if found is None:
            found = self._history[resource_type] = self.policy.history_filter(
                self.principal, resource_type
            )
        return found

    def decide(self, interaction: str, resource_type: str) -> Verdict:
        """The coarse verdict (scopes, party rules) for an interaction on a type, once each."""
        if not self.enforcing:
            return ALLOWED
        assert self.policy is not None
        key = (interaction, resource_type)
        found = self._verdicts.get(key)
        if found is None:
            found = self._verdicts[key] = self.policy.decide(
                self.principal, interaction, resource_type
            )
        return found

    def authorize(self, interaction: str, resource_type: str) -> None:
        """403 unless ``decide`` allows the interaction."""
        verdict = self.decide(interaction, resource_type)
        if not verdict:
            raise FhirError(
                403,
                "forbidden",
                f"{interaction} on {resource_type} refused by rule {verdict.rule}: {verdict.reason}",
            )

    # ------------------------------------------------------------------- per resource
    def can_read(
        self, resource_type: str, resource: dict[str, Any], acl: dict[str, Any] | None = None
    ) -> bool:
        """The outgoing check behind the narrowing (defence in depth)."""
        if self.policy is None:
            return True
        return self.policy.can_read(self.principal, resource_type, resource, acl)

    def redact(self, resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
        """The view of an outgoing resource this principal gets (insurers: status only)."""
        if not self.enforcing:
            return resource
        assert self.policy is not None
        return self.policy.redact(self.principal, resource_type, resource)
