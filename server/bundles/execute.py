"""One bundle entry's interaction against a repository: shared by transactions and batches.

Every write goes through the repository (so versioning, hooks and the access policy apply per
entry exactly as for a REST call); reads go through ``repo.read``/``repo.vread`` and searches
through the search engine.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from server import conditional, fhirjson
from server.bundles.entries import Entry, Outcome, entry_error
from server.bundles.references import rewrite_conditional
from server.config import Settings
from server.deps import parse_etag, parse_if_match
from server.errors import FhirError, info_outcome, precondition_failed
from server.formats import PATCH_JSON
from server.patch import Patcher, patcher
from server.repository import Repository
from server.timeutil import parse_fhir_instant


def clone(value: Any) -> Any:
    """A deep copy of parsed JSON, exact decimals kept (faster than ``copy.deepcopy``)."""
    return fhirjson.copy(value)


def etag_of(entry: Entry, value: str | None, name: str) -> int | None:
    try:
        return parse_etag(value, name)
    except FhirError as exc:
        raise entry_error(entry.index, exc.status, str(exc), exc.issues[0].code) from exc


def if_match_of(entry: Entry) -> int | None:
    """The entry's ``ifMatch``; one that names no version fails the entry with 412 (a
    transaction then writes nothing), like a version that is not the current one."""
    try:
        return parse_if_match(entry.if_match, "ifMatch")
    except FhirError as exc:
        raise entry_error(entry.index, exc.status, str(exc), exc.issues[0].code) from exc


def new_id() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------- references
def reference_resolver(repo: Repository) -> Callable[[str, str], str]:
    """Resolve conditional references (``Patient?identifier=a|b``) to exactly one resource."""
    cache: dict[tuple[str, str], str] = {}

    def resolve(resource_type: str, query: str) -> str:
        key = (resource_type, query)
        if key not in cache:
            ids = conditional.match(repo, resource_type, query, limit=2)
            if not ids:
                raise FhirError(
                    404,
                    "not-found",
                    f"conditional reference {resource_type}?{query} matches nothing",
                )
            if len(ids) > 1:
                raise precondition_failed(
                    f"conditional reference {resource_type}?{query} matches more than one resource"
                )
            cache[key] = f"{resource_type}/{ids[0]}"
        return cache[key]

    return resolve


def unresolved_urn(reference: str) -> None:
    raise FhirError(
        400,
        "invalid",
        f"reference {reference!r} does not match the fullUrl of any entry of this Bundle",
    )


def resolve_references(repo: Repository, body: Any, resolve: Callable[[str, str], str]) -> None:
    rewrite_conditional(body, resolve, unresolved_urn)


# ---------------------------------------------------------------------------------- writes
def entry_patcher(entry: Entry) -> Patcher:
    body = entry.resource
    assert entry.resource_type is not None
    if isinstance(body, dict) and body.get("resourceType") == "Binary":
        if body.get("contentType", "").split(";")[0].strip() != PATCH_JSON:
            raise entry_error(
                entry.index, 400, f"a Binary PATCH must have contentType {PATCH_JSON}"
            )
        try:
            ops = fhirjson.loads(base64.b64decode(body.get("data", ""), validate=True))
        except ValueError as exc:  # bad base64, or fhirjson.JsonError
            raise entry_error(entry.index, 400, "Binary.data is not base64 JSON Patch") from exc
        return patcher(PATCH_JSON, ops, entry.resource_type)
    return patcher("application/fhir+json", body, entry.resource_type)


def do_delete(repo: Repository, entry: Entry, *, allow_multiple: bool, max_matches: int) -> Outcome:
    assert entry.resource_type is not None
    if_match = if_match_of(entry)
    if entry.rid is not None:
        repo.delete(entry.resource_type, entry.rid, if_match=if_match)
        return Outcome(204)
    deleted = conditional.delete_in(
        repo,
        entry.resource_type,
        entry.query,
        allow_multiple=allow_multiple,
        max_matches=max_matches,
        if_match=if_match,
    )
    if not deleted:
        return Outcome(204, outcome=info_outcome("no resource matched the criteria"))
    return Outcome(204)


def do_create(repo: Repository, entry: Entry, body: Any, rid: str) -> Outcome:
    assert entry.resource_type is not None
    stored = repo.create(entry.resource_type, body, rid=rid)
    return Outcome(201, stored, stored.resource, location=True)


def do_update(repo: Repository, entry: Entry, body: Any, rid: str) -> Outcome:
    assert entry.resource_type is not None
    if_match = if_match_of(entry)
    if entry.if_none_match is not None:
        current = repo.current(entry.resource_type, rid)
        if current is not None and not current.deleted:
            inm = entry.if_none_match.strip()
            if inm == "*" or etag_of(entry, inm, "ifNoneMatch") == current.version_id:
                raise precondition_failed(
                    f"ifNoneMatch {inm}: {entry.resource_type}/{rid} already exists"
                )
    if isinstance(body, dict) and body.get("id") is None:
        body = {**body, "id": rid}
    stored, created = repo.update(entry.resource_type, rid, body, if_match=if_match)
    return Outcome(201 if created else 200, stored, stored.resource, location=True)


def do_patch(repo: Repository, entry: Entry, rid: str, apply: Patcher) -> Outcome:
    assert entry.resource_type is not None
    if_match = if_match_of(entry)
    stored = repo.patch(entry.resource_type, rid, apply, if_match=if_match)
    return Outcome(200, stored, stored.resource, location=True)


# ----------------------------------------------------------------------------------- reads
def do_get(repo: Repository, entry: Entry, base: str, settings: Settings) -> Outcome:
    assert entry.resource_type is not None
    if entry.rid is None:
        return do_search(repo, entry, base, settings)
    if entry.vid is not None:
        stored = repo.vread(entry.resource_type, entry.rid, entry.vid)
    else:
        stored = repo.read(entry.resource_type, entry.rid)
    if entry.if_none_match is not None:
        inm = entry.if_none_match.strip()
        if inm == "*" or etag_of(entry, inm, "ifNoneMatch") == stored.version_id:
            return Outcome(304, stored)
    if entry.if_modified_since is not None:
        since = parse_fhir_instant(entry.if_modified_since)
        if since is None:
            raise entry_error(entry.index, 400, "ifModifiedSince must be a FHIR instant")
        if stored.last_updated <= since:
            return Outcome(304, stored)
    resource = stored.resource if entry.method == "GET" else None
    return Outcome(200, stored, resource, extra={"read": True})


def do_search(repo: Repository, entry: Entry, base: str, settings: Settings) -> Outcome:
    """A search entry: the search engine's searchset Bundle as the entry's resource."""
    from server.search import params
    from server.search.bundle import searchset
    from server.search.execute import run

    rtype = entry.resource_type
    assert rtype is not None
    items = parse_qsl(entry.query, keep_blank_values=True)
    req = params.parse(rtype, items, strict=False, max_count=settings.max_page_size)
    count = (
        settings.default_page_size if req.count is None else min(req.count, settings.max_page_size)
    )
    result = run(repo, req, [rtype], count=count)
    return Outcome(200, None, searchset(base, rtype, req, result), extra={"read": True})
