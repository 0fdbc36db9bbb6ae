"""Referential integrity for local references, enforced inside the write's transaction.

Who references whom is kept on each stored document as ``refs`` (the sorted ``Type/id``
targets of its local references, indexed), written by a PRE_WRITE hook in the same transaction
as the resource, so it can never disagree with the data and costs no extra write. A field rather
than a side collection: ingest is the hot path, and deletes (which pay for the lookup across
collections) are rare.

Checks are immediate for a single REST write. Inside a transaction Bundle or a cascade they are
*deferred* to the end (``deferred_checks``), like SQL deferred constraints: entries may refer to
each other in any order, and a bundle may delete a resource and the last reference to it together.
``Settings.enforce_referential_integrity`` switches the checks off; ``refs`` is maintained either
way so switching them on later needs no re-index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, IndexModel

from resources.registry import is_resource_type
from server.bundles.references import local_targets
from server.errors import FhirError, bad_request, conflict
from server.hooks import HookPoint, WriteEvent

if TYPE_CHECKING:
    from server.config import Settings
    from server.database import Store
    from server.repository import Repository

REFS = "refs"
MAX_CASCADE = 1000

# The FHIR base of the current request (``…/fhir``): absolute references on it are local.
request_base: ContextVar[str | None] = ContextVar("request_base", default=None)


@dataclass
class Deferred:
    session: Any
    referenced: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)


_deferred: ContextVar[Deferred | None] = ContextVar("deferred_integrity", default=None)


def unresolvable(targets: list[str]) -> FhirError:
    return FhirError(
        422,
        "processing",
        f"reference to a resource that does not exist on this server: {', '.join(targets)}",
    )


def referenced_by(target: str, referrer: str) -> FhirError:
    return conflict(
        f"{target} is referenced by {referrer}; delete or update the referrer first, "
        "or delete with _cascade=delete"
    )


def missing_targets(repo: Repository, targets: set[str]) -> list[str]:
    """Targets that do not exist (or are deleted), read in the repository's session."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for t in targets:
        rtype, _, rid = t.partition("/")
        by_type[rtype].append(rid)
    missing: list[str] = []
    reader = repo.unrestricted()
    memo = repo.memo  # a case write names the same requester, patient and request many times
    for rtype, ids in by_type.items():
        unknown = [i for i in ids if not memo.get(f"exists:{rtype}/{i}")]
        if not unknown:
            continue
        cursor = reader.find_visible(rtype, {"_id": {"$in": unknown}}, fields=["_id"])
        found = {d["_id"] for d in cursor}
        for i in found:
            memo[f"exists:{rtype}/{i}"] = True
        missing.extend(f"{rtype}/{i}" for i in unknown if i not in found)
    return sorted(missing)


def _resource_collections(store: Store) -> list[str]:
    # listCollections may not run inside a transaction; collection names are metadata anyway.
    return sorted(n for n in store.db.list_collection_names() if is_resource_type(n))


def referrers(repo: Repository, targets: set[str], *, limit: int = 1) -> list[tuple[str, str]]:
    """Live resources referencing any of ``targets``: [(referrer ``Type/id``, target)]."""
    out: list[tuple[str, str]] = []
    wanted = sorted(targets)
    reader = repo.unrestricted()
    for name in _resource_collections(repo.store):
        cursor = reader.find_visible(
            name, {REFS: {"$in": wanted}}, fields=["_id", REFS], limit=limit - len(out)
        )
        for doc in cursor:
            hit = next(t for t in doc[REFS] if t in targets)
            out.append((f"{name}/{doc['_id']}", hit))
        if len(out) >= limit:
            break
    return out


def check_deferred(repo: Repository, deferred: Deferred) -> None:
    repo.flush_writes()
    missing = missing_targets(repo, deferred.referenced)
    if missing:
        raise unresolvable(missing)
    if deferred.deleted:
        found = referrers(repo, deferred.deleted)
        if found:
            referrer, target = found[0]
            raise referenced_by(target, referrer)


@contextmanager
def deferred_checks(repo: Repository, settings: Settings) -> Iterator[Deferred]:
    """Collect integrity checks of the writes made through ``repo`` and run them on exit."""
    deferred = Deferred(repo.session)
    token = _deferred.set(deferred)
    try:
        yield deferred
    finally:
        _deferred.reset(token)
    if settings.enforce_referential_integrity:
        check_deferred(repo, deferred)


def bases(settings: Settings) -> tuple[str, ...]:
    out = []
    if settings.base_url:
        out.append(settings.base_url.rstrip("/") + "/fhir")
    current = request_base.get()
    if current:
        out.append(current)
    return tuple(out)


def make_hook(settings: Settings) -> Any:
    def integrity_hook(event: WriteEvent) -> None:
        own = f"{event.resource_type}/{event.resource_id}"
        deferred = _deferred.get()
        if deferred is not None and deferred.session is not event.session:
            deferred = None
        if event.resource is None:
            event.refs = []
            if not settings.enforce_referential_integrity:
                return
            if deferred is not None:
                deferred.deleted.add(own)
                return
            found = referrers(event.repository, {own})
            if found:
                raise referenced_by(own, found[0][0])
            return
        targets = [t for t in local_targets(event.resource, bases(settings)) if t != own]
        event.refs = targets
        if not settings.enforce_referential_integrity or not targets:
            return
        if deferred is not None:
            deferred.referenced.update(targets)
            return
        missing = missing_targets(event.repository, set(targets))
        if missing:
            raise unresolvable(missing)

    return integrity_hook


def refs_index(resource_type: str) -> list[IndexModel]:
    return [IndexModel([(REFS, ASCENDING)], name="refs_1")]


def cascade_delete(
    repo: Repository, settings: Settings, resource_type: str, rid: str, *, if_match: int | None
) -> list[Any]:
    """Delete ``resource_type/rid`` and, transitively, every live resource referencing it,
    in one transaction (each deletion still passes the policy and hooks). Capped at
    ``MAX_CASCADE`` resources so one request cannot wipe an unbounded graph."""

    def work(r: Repository) -> list[Any]:
        deleted = []
        with deferred_checks(r, settings):
            first = r.delete(resource_type, rid, if_match=if_match)
            deleted.append(first)
            frontier = {f"{resource_type}/{rid}"}
            seen = set(frontier)
            while frontier:
                found = referrers(r, frontier, limit=MAX_CASCADE + 1)
                frontier = set()
                for referrer, _ in found:
                    if referrer in seen:
                        continue
                    seen.add(referrer)
                    if len(seen) > MAX_CASCADE:
                        raise FhirError(
                            409,
                            "too-costly",
                            f"cascade would delete more than {MAX_CASCADE} resources",
                        )
                    rtype, _, rrid = referrer.partition("/")
                    deleted.append(r.delete(rtype, rrid))
                    frontier.add(referrer)
        return deleted

    return repo.transaction(work)


def parse_cascade(value: str | None) -> bool:
    if value is None:
        return False
    if value != "delete":
        raise bad_request(f"_cascade must be 'delete', got {value!r}")
    return True


def install(store: Store, hooks: Any, settings: Settings) -> None:
    store.add_index_provider(refs_index)
    hooks.register(HookPoint.PRE_WRITE, make_hook(settings))
