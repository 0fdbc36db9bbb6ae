"""Adapter between the auth core's policy and the resource store.

- ``StoreFacts`` answers the policy's questions (who owns a patient, which cases a specialist
  holds, which members an insurer covers) with small projected queries on ``acl`` fields,
  through the repository's read primitive (unrestricted: the facts decide visibility).
- ``StorePolicy`` is what ``AppState.policy`` holds: the core ``Policy`` plus the
  repository-facing contract (``server.context.AccessPolicy``), asked through the request's
  ``SecurityContext``.
- ``acl_and_authorize`` is the PRE_WRITE hook: it computes the stored ``acl`` of every version
  (always, so ownership exists even while auth is off) and, with auth on, checks scopes and party
  ownership of the incoming *and* the previous version (``WriteEvent.previous_acl``); a refusal
  is a 403 and rolls back the whole transaction (so each entry of a batch/transaction is checked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, IndexModel

from auth.acl import compute_acl
from auth.policy import Policy
from auth.principal import Principal
from resources.registry import patient_compartment, search_params_for
from server.database import Doc
from server.errors import FhirError
from server.hooks import Hook, HookPoint, WriteEvent
from server.repository import Repository

if TYPE_CHECKING:
    from server.deps import AppState


def _ref_id(value: Any, rtype: str) -> str | None:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref.startswith(f"{rtype}/"):
            return ref.split("/", 2)[1]
    return None


class StoreFacts:
    """The policy's database facts, read through ``repo`` (an unrestricted repository: the
    facts decide visibility, so they cannot themselves be narrowed by it)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def patient_orgs(self, patients: set[str]) -> dict[str, set[str]]:
        """Owning organizations per patient, seeing a transaction Bundle's earlier entries:
        its session for written ones, ``Repository.pending`` for batched inserts (no flush)."""
        if not patients:
            return {}
        out: dict[str, set[str]] = {}
        for d in self.repo.pending("Patient"):
            if d.get("_id") in patients:
                out[d["_id"]] = set((d.get("acl") or {}).get("orgs", []))
        memo = self.repo.memo
        for pid in patients - set(out):
            known = memo.get(f"Patient/{pid}")
            if known is not None:
                out[pid] = set(known)
        rest = patients - set(out)
        if rest:
            cursor = self.repo.find_visible(
                "Patient",
                {"_id": {"$in": sorted(rest)}},
                fields=["acl.orgs"],
                include_deleted=True,
                flush=False,
            )
            for d in cursor:
                orgs = set((d.get("acl") or {}).get("orgs", []))
                out[d["_id"]] = orgs
                memo[f"Patient/{d['_id']}"] = frozenset(orgs)
        return out

    def practitioner_roles_of(self, organization: str) -> set[str]:
        cursor = self.repo.find_visible(
            "PractitionerRole",
            {"resource.organization.reference": f"Organization/{organization}"},
            fields=["_id"],
            flush=False,
        )
        return {d["_id"] for d in cursor}

    def assigned_cases(self, roles: set[str]) -> tuple[set[str], set[str]]:
        if not roles:
            return set(), set()
        patients: set[str] = set()
        requests: set[str] = set()
        cursor = self.repo.find_visible(
            "Task", {"acl.owners": {"$in": sorted(roles)}}, fields=["acl"], flush=False
        )
        for d in cursor:
            acl = d.get("acl") or {}
            patients.update(acl.get("patients", []))
            requests.update(acl.get("requests", []))
        return patients, requests

    def insured_members(self, organization: str) -> set[str]:
        members: set[str] = set()
        cursor = self.repo.find_visible(
            "Coverage", {"acl.payors": organization}, fields=["resource.beneficiary"], flush=False
        )
        for d in cursor:
            pid = _ref_id((d.get("resource") or {}).get("beneficiary"), "Patient")
            if pid:
                members.add(pid)
        return members

    def known_param(self, resource_type: str, code: str) -> bool:
        return code in search_params_for(resource_type)

    def matches(self, resource_type: str, resource: dict[str, Any], code: str, value: str) -> bool:
        # Same normalised values the search index stores, so a restriction means the same thing
        # on a read as in the ``idx.<code>`` filter of a search.
        from server.search.index import extract_index

        try:
            values = extract_index(resource_type, resource).get(code, [])
        except Exception:
            return False
        return value in values


def _compartment_types() -> frozenset[str]:
    return frozenset(patient_compartment()) | {"Patient"}


class StorePolicy(Policy):
    """``AppState.policy``: the core policy plus what the repository asks of it
    (``server.context.AccessPolicy``); its facts are read through ``repo``, unrestricted."""

    def __init__(self, repo: Repository) -> None:
        super().__init__(StoreFacts(repo.unrestricted()), _compartment_types)

    def history_filter(self, p: Principal | None, resource_type: str) -> Doc:
        """The part of ``access_filter`` that history documents can answer (``acl`` only)."""
        narrowed: Doc = _strip_idx(self.access_filter(p, resource_type))
        return narrowed


def _strip_idx(f: Any) -> Any:
    if isinstance(f, dict):
        out = {}
        for k, v in f.items():
            if k.startswith("idx."):
                continue
            if k in ("$and", "$or"):
                parts = [_strip_idx(x) for x in v]
                if k == "$or" and any(not x for x in parts):
                    return {}
                parts = [x for x in parts if x]
                if parts:
                    out[k] = parts
            else:
                out[k] = v
        return out
    return f


def forbidden(diagnostics: str) -> FhirError:
    return FhirError(403, "forbidden", diagnostics)


def make_write_hook(policy: StorePolicy | None) -> Hook:
    """The PRE_WRITE access hook; ``policy`` None (auth off) computes ``acl`` only."""

    def acl_and_authorize(event: WriteEvent) -> None:
        facts = StoreFacts(event.repository.unrestricted())
        principal = event.repository.principal
        old_acl = event.previous_acl
        new_acl = compute_acl(
            event.resource_type,
            event.resource_id,
            event.resource,
            principal,
            old_acl,
            facts.patient_orgs,
        )
        if policy is not None and principal is not None:
            verdict = policy.check_write(
                principal,
                event.interaction,
                event.resource_type,
                event.resource,
                new_acl,
                old_acl,
                event.previous,
                facts.patient_orgs,
            )
            if not verdict:
                raise forbidden(
                    f"{event.interaction} {event.resource_type} refused by rule "
                    f"{verdict.rule}: {verdict.reason}"
                )
        event.acl = new_acl

    return acl_and_authorize


# The fields the policy's fact lookups filter on (``StoreFacts``): without an index each of a
# specialist's or insurer's requests would scan every Task or Coverage to learn its cases.
FACT_FIELDS: dict[str, tuple[str, ...]] = {
    "Task": ("acl.owners",),
    "Coverage": ("acl.payors",),
    "PractitionerRole": ("resource.organization.reference",),
}


def fact_indexes(resource_type: str) -> list[IndexModel]:
    """Partial like the search indexes, so ``{field: v, deleted: False}`` is fully covered."""
    return [
        IndexModel([(f, ASCENDING)], name=f"fact.{f}", partialFilterExpression={"deleted": False})
        for f in FACT_FIELDS.get(resource_type, ())
    ]


def install(app: Any, state: AppState) -> None:
    """Plugin part: ACL computation always; the policy only when auth is on."""
    policy = None
    if state.settings.auth_enabled:
        policy = StorePolicy(Repository(state.store, state.hooks))
        state.policy = policy
        state.store.add_index_provider(fact_indexes)
    # First: refuse a write before any other hook (integrity, domain) looks at or reveals data.
    state.hooks.register(HookPoint.PRE_WRITE, make_write_hook(policy), first=True)
    # Last: record the ownership facts of the resource as it will be stored (hooks may modify
    # it), re-checking the final version.
    state.hooks.register(HookPoint.PRE_WRITE, make_write_hook(policy))
