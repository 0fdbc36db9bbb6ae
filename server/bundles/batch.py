"""Batch Bundles (http.html#transaction): every entry on its own, each with its own outcome.

Each write entry runs in its own small transaction (so a conditional create still claims its
criteria atomically), in the same DELETE/POST/PUT-PATCH/GET order as a transaction. A failing
entry becomes an error ``response`` (status + OperationOutcome) and the others go on. Entries
must not depend on each other: a ``urn:uuid:`` reference is an error for that entry.
"""

from __future__ import annotations

import logging

from server import conditional
from server.bundles.entries import Entry, Outcome, processing_order
from server.bundles.execute import (
    clone,
    do_create,
    do_delete,
    do_get,
    do_patch,
    do_update,
    entry_patcher,
    if_match_of,
    new_id,
    reference_resolver,
    resolve_references,
)
from server.config import Settings
from server.errors import FhirError
from server.integrity import deferred_checks
from server.repository import Repository

log = logging.getLogger(__name__)


def _run_entry(r: Repository, e: Entry, settings: Settings) -> Outcome:
    rtype = e.resource_type
    assert rtype is not None
    with deferred_checks(r, settings):
        if e.method == "DELETE":
            return do_delete(
                r,
                e,
                allow_multiple=settings.allow_multiple_conditional_delete,
                max_matches=settings.max_bundle_entries,
            )
        body = clone(e.resource)
        resolve_references(r, body, reference_resolver(r))
        if e.method == "POST":
            if e.if_none_exist:
                stored, created = conditional.create_in(r, rtype, body, e.if_none_exist)
                return Outcome(201 if created else 200, stored, stored.resource, location=True)
            return do_create(r, e, body, new_id())
        if e.method == "PUT":
            if e.rid is not None:
                return do_update(r, e, body, e.rid)
            stored, created = conditional.update_in(
                r, rtype, e.query, body, if_match=if_match_of(e)
            )
            return Outcome(201 if created else 200, stored, stored.resource, location=True)
        # PATCH
        rid = e.rid or conditional.match_one(r, rtype, e.query, "conditional patch")
        if rid is None:
            raise FhirError(404, "not-found", f"no {rtype} matches {e.query}")
        patched = Entry(e.index, e.method, e.url, rtype, resource=body)
        return do_patch(r, e, rid, entry_patcher(patched))


def run_batch(
    repo: Repository, entries: list[Entry], settings: Settings, base: str
) -> list[Outcome | FhirError]:
    results: dict[int, Outcome | FhirError] = {}
    for e in processing_order(entries):
        if e.error is not None:
            results[e.index] = e.error
            continue
        try:
            if e.method in ("GET", "HEAD"):
                results[e.index] = do_get(repo, e, base, settings)
            else:
                results[e.index] = conditional.retry_races(
                    lambda e=e: repo.transaction(lambda r: _run_entry(r, e, settings))  # type: ignore[misc]
                )
        except FhirError as err:
            results[e.index] = err
        except Exception:  # one broken entry must not sink the others' results
            log.exception("batch entry %d failed", e.index)
            results[e.index] = FhirError(500, "exception", "internal error processing this entry")
    return [results[e.index] for e in entries]
