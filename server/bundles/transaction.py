"""Transaction Bundles (http.html#transaction): all entries in one MongoDB transaction.

Steps, inside one ``Repository.transaction`` (re-run whole by the driver on a transient
conflict, so everything is recomputed from the request each attempt):
1. DELETE entries;
2. plan the id of every POST/PUT/PATCH: new ids for creates, the search engine's match for
   If-None-Exist and conditional update/patch (412 on several matches);
3. rewrite references everywhere in every resource: each entry's ``fullUrl`` (``urn:uuid:`` or
   absolute) becomes ``Type/id``; conditional references ``Type?criteria`` become the one match;
4. POST, then PUT/PATCH, then GET/HEAD;
5. deferred referential-integrity checks (``server/integrity.py``), so entries may point at
   each other in any order.
The first failing entry raises with its own status and OperationOutcome (located at
``Bundle.entry[i]``) and the transaction aborts: nothing of the bundle stays, history included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server import conditional
from server.bundles.entries import Entry, Outcome, entry_error, locate, processing_order
from server.bundles.execute import (
    clone,
    do_create,
    do_delete,
    do_get,
    do_patch,
    do_update,
    entry_patcher,
    new_id,
    reference_resolver,
    resolve_references,
)
from server.bundles.references import rewrite
from server.config import Settings
from server.errors import FhirError
from server.integrity import deferred_checks
from server.repository import Repository


def _guard(entry: Entry, fn: Callable[[], Outcome]) -> Outcome:
    try:
        return fn()
    except FhirError as err:
        raise locate(err, entry.index) from None


class _Plan:
    """Per-attempt decisions: target ids, creates that found an existing match, claims."""

    def __init__(self) -> None:
        self.ids: dict[int, str] = {}
        self.existing: set[int] = set()
        self.same_as: dict[int, int] = {}  # duplicate If-None-Exist within the bundle
        self.claims: dict[int, str] = {}  # entry index → criteria to claim on create
        self.mapping: dict[str, str] = {}


def _plan(repo: Repository, entries: list[Entry]) -> _Plan:
    plan = _Plan()
    seen_keys: dict[str, int] = {}
    for e in entries:
        if e.method not in ("POST", "PUT", "PATCH"):
            continue
        rtype = e.resource_type
        assert rtype is not None

        def decide(e: Entry = e, rtype: str = rtype) -> Outcome:
            if e.method == "POST":
                if e.if_none_exist:
                    key = conditional.normalize(rtype, e.if_none_exist)
                    if key in seen_keys:
                        plan.same_as[e.index] = seen_keys[key]
                        plan.ids[e.index] = plan.ids[seen_keys[key]]
                        return Outcome(0)
                    seen_keys[key] = e.index
                    found = conditional.match_one(repo, rtype, e.if_none_exist, "ifNoneExist")
                    if found is not None:
                        plan.ids[e.index] = found
                        plan.existing.add(e.index)
                        return Outcome(0)
                    plan.claims[e.index] = e.if_none_exist
                plan.ids[e.index] = new_id()
            elif e.rid is not None:
                plan.ids[e.index] = e.rid
            elif e.method == "PATCH":
                found = conditional.match_one(repo, rtype, e.query, "conditional patch")
                if found is None:
                    raise FhirError(404, "not-found", f"no {rtype} matches {e.query}")
                plan.ids[e.index] = found
            else:
                found = conditional.match_one(repo, rtype, e.query, "conditional update")
                body_id = e.resource.get("id") if isinstance(e.resource, dict) else None
                if found is not None:
                    if body_id is not None and body_id != found:
                        raise FhirError(
                            400, "invalid", f"the body's id {body_id!r} differs from the match"
                        )
                    plan.ids[e.index] = found
                else:
                    plan.ids[e.index] = body_id if isinstance(body_id, str) else new_id()
                    plan.claims[e.index] = e.query
            return Outcome(0)

        _guard(e, decide)
        if e.full_url and e.method in ("POST", "PUT"):
            plan.mapping[e.full_url] = f"{rtype}/{plan.ids[e.index]}"
    return plan


def _prefetch_updates(repo: Repository, entries: list[Entry], plan: _Plan) -> None:
    """One read per type of the current versions the PUT/PATCH entries replace, instead of one
    per entry (each ``update`` then finds its current version in the transaction's cache)."""
    by_type: dict[str, list[str]] = {}
    for e in entries:
        if e.method in ("PUT", "PATCH") and e.index in plan.ids and e.resource_type:
            by_type.setdefault(e.resource_type, []).append(plan.ids[e.index])
    for rtype, ids in by_type.items():
        repo.prefetch(rtype, ids)


def run_transaction(
    repo: Repository, entries: list[Entry], settings: Settings, base: str
) -> list[Outcome]:
    full_urls = [e.full_url for e in entries if e.full_url and e.method in ("POST", "PUT")]
    if len(set(full_urls)) != len(full_urls):
        dup = next(u for u in full_urls if full_urls.count(u) > 1)
        raise FhirError(400, "invalid", f"fullUrl {dup!r} appears on more than one entry")
    ordered = processing_order(entries)

    def attempt(r: Repository) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        with r.write_batch(), deferred_checks(r, settings):
            for e in ordered:
                if e.method == "DELETE":
                    outcomes[e.index] = _guard(
                        e,
                        lambda e=e: do_delete(  # type: ignore[misc]
                            r,
                            e,
                            allow_multiple=settings.allow_multiple_conditional_delete,
                            max_matches=settings.max_bundle_entries,
                        ),
                    )
            plan = _plan(r, entries)
            _prefetch_updates(r, entries, plan)
            resolve = reference_resolver(r)
            bodies: dict[int, Any] = {}
            for e in entries:
                if e.method in ("POST", "PUT", "PATCH") and e.index not in plan.existing:
                    body = clone(e.resource)
                    rewrite(body, plan.mapping)
                    _guard(e, lambda body=body: _resolve(r, body, resolve))  # type: ignore[misc]
                    bodies[e.index] = body
            for e in ordered:
                if e.method in ("DELETE", "GET", "HEAD"):
                    continue
                outcomes[e.index] = _guard(e, lambda e=e: _write(r, e, plan, bodies, outcomes))  # type: ignore[misc]
            r.flush_writes()  # searches read collections directly
            for e in ordered:
                if e.method in ("GET", "HEAD"):
                    outcomes[e.index] = _guard(e, lambda e=e: do_get(r, e, base, settings))  # type: ignore[misc]
        return [outcomes[e.index] for e in entries]

    return conditional.retry_races(lambda: repo.transaction(attempt))


def _resolve(repo: Repository, body: Any, resolve: Callable[[str, str], str]) -> Outcome:
    resolve_references(repo, body, resolve)
    return Outcome(0)


def _write(
    r: Repository, e: Entry, plan: _Plan, bodies: dict[int, Any], outcomes: dict[int, Outcome]
) -> Outcome:
    rtype = e.resource_type
    assert rtype is not None
    rid = plan.ids[e.index]
    if e.method == "POST":
        if e.index in plan.same_as:
            first = outcomes.get(plan.same_as[e.index])
            stored = first.stored if first else r.read(rtype, rid)
            return Outcome(200, stored, stored.resource if stored else None, location=True)
        if e.index in plan.existing:
            stored = r.read(rtype, rid)
            return Outcome(200, stored, stored.resource, location=True)
        if e.index in plan.claims:
            conditional.claim(r, rtype, plan.claims[e.index], rid)
        return do_create(r, e, bodies[e.index], rid)
    if e.method == "PUT":
        if e.index in plan.claims:
            conditional.claim(r, rtype, plan.claims[e.index], rid)
        return do_update(r, e, bodies[e.index], rid)
    if e.method == "PATCH":
        e_patched = Entry(e.index, e.method, e.url, rtype, resource=bodies[e.index])
        return do_patch(r, e, rid, entry_patcher(e_patched))
    raise entry_error(e.index, 400, f"unexpected method {e.method}")
