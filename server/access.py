"""Adapter between the auth core's policy and the resource store.

- ``StoreFacts`` answers the policy's questions (who owns a patient, which cases a specialist
  holds, which members an insurer covers) with small projected queries on ``acl`` fields.
- ``StorePolicy`` is what ``Store.policy`` holds: the core ``Policy`` plus the repository-facing
  contract (``access_filter``, ``can_read``, ``redact``, ``history_filter``).
- ``acl_and_authorize`` is the PRE_WRITE hook: it computes the stored ``acl`` of every version
  (always, so ownership exists even while auth is off) and, with auth on, checks scopes and party
  ownership of the incoming *and* the previous version; a refusal is a 403 and rolls back the
  whole transaction (so each entry of a batch/transaction is checked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, IndexModel

from auth.acl import compute_acl
from auth.policy import Policy
from auth.principal import Principal
from resources.registry import patient_compartment, search_params_for
from server.database import Doc, Store
from server.errors import FhirError
from server.hooks import HookPoint, WriteEvent

if TYPE_CHECKING:
    from server.deps import AppState


def _ref_id(value: Any, rtype: str) -> str | None:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref.startswith(f"{rtype}/"):
            return ref.split("/", 2)[1]
    return None


def _pending_docs(repo: Any) -> Any:
    """Documents a transaction Bundle created but has not flushed yet (``Repository.write_batch``
    holds pure inserts back); reading them here avoids a flush per entry."""

    def pending(collection: str) -> list[Doc]:
        batches = getattr(repo, "_write_batch", None)
        if not batches:
            return []
        return list(batches[-1].get(collection, []))

    return pending


class StoreFacts:
    def __init__(self, store: Store, session: Any = None, pending: Any = None) -> None:
        self.store = store
        self.session = session  # a write's transaction: sees the Bundle's earlier entries
        self.pending = pending

    def patient_orgs(self, patients: set[str]) -> dict[str, set[str]]:
        if not patients:
            return {}
        out: dict[str, set[str]] = {}
        if self.pending is not None:
            for d in self.pending("Patient"):
                if d.get("_id") in patients:
                    out[d["_id"]] = set((d.get("acl") or {}).get("orgs", []))
        rest = patients - set(out)
        if rest:
            cursor = self.store.resources("Patient").find(
                {"_id": {"$in": sorted(rest)}}, {"acl.orgs": 1}, session=self.session
            )
            out.update({d["_id"]: set((d.get("acl") or {}).get("orgs", [])) for d in cursor})
        return out

    def practitioner_roles_of(self, organization: str) -> set[str]:
        cursor = self.store.resources("PractitionerRole").find(
            {"resource.organization.reference": f"Organization/{organization}", "deleted": False},
            {"_id": 1},
        )
        return {d["_id"] for d in cursor}

    def assigned_cases(self, roles: set[str]) -> tuple[set[str], set[str]]:
        if not roles:
            return set(), set()
        patients: set[str] = set()
        requests: set[str] = set()
        cursor = self.store.resources("Task").find(
            {"acl.owners": {"$in": sorted(roles)}, "deleted": False}, {"acl": 1}
        )
        for d in cursor:
            acl = d.get("acl") or {}
            patients.update(acl.get("patients", []))
            requests.update(acl.get("requests", []))
        return patients, requests

    def insured_members(self, organization: str) -> set[str]:
        members: set[str] = set()
        cursor = self.store.resources("Coverage").find(
            {"acl.payors": organization, "deleted": False}, {"resource.beneficiary": 1}
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
    """``Store.policy``: the contract the repository and the search engine call."""

    def __init__(self, store: Store) -> None:
        super().__init__(StoreFacts(store), _compartment_types)

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


def make_write_hook(store: Store, enforce: bool) -> Any:
    def acl_and_authorize(event: WriteEvent) -> None:
        facts = StoreFacts(store, event.session, _pending_docs(event.repository))
        principal = event.repository.principal
        if not isinstance(principal, Principal):
            principal = None
        previous_doc = (
            store.resources(event.resource_type).find_one(
                {"_id": event.resource_id}, {"acl": 1}, session=event.session
            )
            if event.previous is not None or event.interaction != "create"
            else None
        )
        old_acl = (previous_doc.get("acl") or {}) if previous_doc else None
        new_acl = compute_acl(
            event.resource_type,
            event.resource_id,
            event.resource,
            principal,
            old_acl,
            facts.patient_orgs,
        )
        if enforce and principal is not None and store.policy is not None:
            verdict = store.policy.check_write(
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
        event.extra["acl"] = new_acl

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
    enforce = state.settings.auth_enabled
    if enforce:
        state.store.policy = StorePolicy(state.store)
        state.store.add_index_provider(fact_indexes)
    # First: refuse a write before any other hook (integrity, domain) looks at or reveals data.
    state.hooks.register(HookPoint.PRE_WRITE, make_write_hook(state.store, enforce), first=True)
    # Last: record the ownership facts of the resource as it will be stored (hooks may modify
    # it), re-checking the final version.
    state.hooks.register(HookPoint.PRE_WRITE, make_write_hook(state.store, enforce))
