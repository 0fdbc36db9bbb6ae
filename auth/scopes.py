"""SMART App Launch 2.x scope grammar (section "Scopes for requesting FHIR resources").

Parses v1 (``patient/Observation.read``, ``user/*.*``, ``system/*.write``) and v2
(``patient/Observation.rs?category=laboratory``) resource scopes into ``Permission`` values, and
recognises the non-resource scopes (``openid``, ``fhirUser``, ``launch``, ``launch/patient``,
``offline_access`` ...). Pure functions on strings: the policy layer decides what a permission
means for a given request; nothing here touches a database.

Why a parsed form: every check (per interaction, per batch entry, per _include result) asks the
same question "does some permission grant op X on type T for context C", so parsing once per
token keeps the hot path to a few set lookups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
V2_LETTERS = "cruds"
V1_OPS = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}

NON_RESOURCE_SCOPES = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
)

# Interaction (FHIR RESTful API names) → the v2 letter it needs (SMART 2.x table).
INTERACTION_OPS: dict[str, str] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "search-system": "s",
    "search-compartment": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "operation": "r",
}

_RESOURCE_SCOPE = re.compile(
    r"^(?P<ctx>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<ops>[a-z*]+)(?:\?(?P<q>.*))?$"
)
_PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-.:]{0,63}$")


class ScopeError(ValueError):
    """A scope string that is neither a known non-resource scope nor valid resource grammar."""


@dataclass(frozen=True)
class Permission:
    """One resource scope: ``context`` / ``resource_type`` (or ``*``) . ``ops`` ? ``restriction``."""

    context: str
    resource_type: str
    ops: frozenset[str]
    restriction: tuple[tuple[str, str], ...] = ()
    version: int = 2

    def covers(self, resource_type: str) -> bool:
        return self.resource_type in ("*", resource_type)

    def grants(self, op: str, resource_type: str) -> bool:
        return op in self.ops and self.covers(resource_type)


def _parse_ops(raw: str) -> tuple[frozenset[str], int]:
    if raw in V1_OPS:
        return V1_OPS[raw], 1
    if not raw or any(c not in V2_LETTERS for c in raw):
        raise ScopeError(f"unknown permission {raw!r}: use read/write/* (v1) or cruds (v2)")
    # v2 letters must appear in the order c, r, u, d, s, each at most once.
    positions = [V2_LETTERS.index(c) for c in raw]
    if positions != sorted(set(positions)):
        raise ScopeError(f"permission letters {raw!r} must be in the order c r u d s, no repeats")
    return frozenset(raw), 2


def _parse_restriction(query: str) -> tuple[tuple[str, str], ...]:
    try:
        pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=True)
    except ValueError as exc:
        raise ScopeError(f"invalid scope query {query!r}") from exc
    for name, _ in pairs:
        if not _PARAM_NAME.match(name):
            raise ScopeError(f"invalid search parameter {name!r} in scope query")
    return tuple(sorted(pairs))


def parse_scope(scope: str) -> Permission | None:
    """One scope string → a ``Permission``; ``None`` for a non-resource scope; raise otherwise."""
    if scope in NON_RESOURCE_SCOPES:
        return None
    m = _RESOURCE_SCOPE.match(scope)
    if m is None:
        raise ScopeError(f"unknown scope {scope!r}")
    ops, version = _parse_ops(m["ops"])
    query = m["q"]
    if query is not None and version == 1:
        raise ScopeError(f"v1 scope {scope!r} cannot carry a query restriction")
    restriction = _parse_restriction(query) if query else ()
    return Permission(m["ctx"], m["type"], ops, restriction, version)


def split_scopes(raw: str | None) -> list[str]:
    """The space-delimited ``scope`` parameter, de-duplicated, order kept."""
    seen: dict[str, None] = {}
    for s in (raw or "").split():
        seen.setdefault(s, None)
    return list(seen)


def is_valid_scope(scope: str) -> bool:
    try:
        parse_scope(scope)
    except ScopeError:
        return False
    return True


def scope_within(requested: str, allowed: Iterable[str]) -> bool:
    """Whether ``requested`` is no broader than one of ``allowed`` (used to narrow a grant).

    A resource scope fits an allowed one with the same context, a covering type, a superset of
    letters and a restriction that is a subset of the requested one (more restricted is fine).
    """
    allowed = list(allowed)
    if requested in allowed:
        return True
    try:
        want = parse_scope(requested)
    except ScopeError:
        return False
    if want is None:
        return False
    for a in allowed:
        try:
            have = parse_scope(a)
        except ScopeError:
            continue
        if have is None or have.context != want.context:
            continue
        if have.resource_type != "*" and have.resource_type != want.resource_type:
            continue
        if not want.ops <= have.ops:
            continue
        if not set(have.restriction) <= set(want.restriction):
            continue
        return True
    return False


def ops_for(interaction: str) -> str:
    """The v2 letter an interaction needs; unknown interactions need ``r`` (deny-leaning)."""
    return INTERACTION_OPS.get(interaction, "r")


def grants(
    permissions: Iterable[Permission], interaction: str, resource_type: str
) -> list[Permission]:
    """The permissions that allow ``interaction`` on ``resource_type`` (empty → deny)."""
    op = ops_for(interaction)
    return [p for p in permissions if p.grants(op, resource_type)]
