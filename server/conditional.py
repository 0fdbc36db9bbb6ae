"""Conditional create/update/delete/patch, written once on the repository's primitives.

Matching is the search engine's (``server.search.execute.match``), imported lazily so this
module does not depend on search being installed at import time.

Races: two clients conditionally creating with the same criteria at once must yield one
resource. Each creator *claims* the normalized criteria in ``_conditional_keys`` (``_id`` =
digest of ``Type?sorted&params``) in the same transaction as its create. The loser's write hits
the winner's key: a WriteConflict while the winner is uncommitted (the driver retries the whole
transaction, whose fresh snapshot now sees the winner through the match), or a duplicate key
after it committed (``ConditionalRace``, retried here by ``retry_races``). A key left behind by a
resource that no longer matches is stale and simply overwritten by the next creator.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from pymongo.errors import DuplicateKeyError

from server.errors import FhirError, bad_request, precondition_failed

if TYPE_CHECKING:
    from server.repository import Repository, Stored

T = TypeVar("T")
KEYS = "_conditional_keys"
RACE_RETRIES = 8


class ConditionalRace(Exception):
    """Another transaction claimed the same criteria first; rerun to see its result."""


# Result-shaping parameters that never count as match criteria.
NON_CRITERIA = frozenset({"_format", "_pretty", "_summary", "_elements"})


def criteria_from_url(query: str) -> str:
    """The criteria of ``PUT/DELETE/PATCH [type]?criteria`` without ``_format`` and the like."""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in NON_CRITERIA]
    return urlencode(pairs)


def create_criteria(resource_type: str, url_query: str, if_none_exist: str | None) -> str | None:
    """The criteria of a conditional create, or None for a plain create.

    ``POST [type]?criteria`` (what fhirpy's ``get_or_create`` sends) means the same as
    ``If-None-Exist: criteria``: ignoring the query would store a duplicate on every retry.
    Both at once are accepted only when they are the same criteria (in any order); different
    ones are a 400, since either choice would silently drop a condition the client set.
    """
    from_url = criteria_from_url(url_query)
    if not from_url:
        return if_none_exist
    if if_none_exist is not None and normalize(resource_type, if_none_exist) != normalize(
        resource_type, from_url
    ):
        raise bad_request(
            f"the URL's criteria ({from_url}) and If-None-Exist ({if_none_exist}) differ; "
            "send the conditional create's criteria once"
        )
    return from_url


def split_criteria(resource_type: str, query: str) -> str:
    """Accept ``identifier=a|b``, ``?identifier=a|b`` or ``Patient?identifier=a|b``."""
    q = query.strip()
    if q.startswith(f"{resource_type}?"):
        q = q[len(resource_type) + 1 :]
    q = q.removeprefix("?")
    if not q:
        raise bad_request(f"conditional criteria for {resource_type} must not be empty")
    return q


def normalize(resource_type: str, query: str) -> str:
    """``Type?`` + parameters sorted, so equivalent criteria claim the same key."""
    try:
        pairs = parse_qsl(split_criteria(resource_type, query), keep_blank_values=True)
    except ValueError as exc:
        raise bad_request(f"invalid conditional criteria {query!r}: {exc}") from exc
    if not pairs:
        raise bad_request(f"conditional criteria for {resource_type} must not be empty")
    return f"{resource_type}?{urlencode(sorted(pairs))}"


def match(repo: Repository, resource_type: str, query: str, *, limit: int = 2) -> list[str]:
    try:
        from server.search.execute import match as search_match
    except ImportError as exc:
        raise FhirError(
            501, "not-supported", "conditional operations need the search engine"
        ) from exc
    ids: list[str] = search_match(
        repo, resource_type, split_criteria(resource_type, query), limit=limit
    )
    return ids


def match_one(repo: Repository, resource_type: str, query: str, what: str) -> str | None:
    ids = match(repo, resource_type, query, limit=2)
    if len(ids) > 1:
        raise precondition_failed(
            f"{what}: criteria {resource_type}?{split_criteria(resource_type, query)} "
            "match more than one resource"
        )
    return ids[0] if ids else None


def claim(repo: Repository, resource_type: str, query: str, rid: str) -> None:
    """Record that ``resource_type/rid`` was created for these criteria (same transaction)."""
    key = normalize(resource_type, query)
    digest = hashlib.sha256(key.encode()).hexdigest()
    try:
        repo.store.db[KEYS].replace_one(
            {"_id": digest},
            {"_id": digest, "key": key[:2000], "ref": f"{resource_type}/{rid}"},
            upsert=True,
            session=repo.session,
        )
    except DuplicateKeyError as exc:
        raise ConditionalRace(key) from exc


def retry_races(run: Callable[[], T]) -> T:
    for _ in range(RACE_RETRIES):
        try:
            return run()
        except ConditionalRace:
            continue
    raise FhirError(409, "conflict", "conditional operation kept racing; retry the request")


# ------------------------------------------------------------------------------ operations
def create_in(
    repo: Repository, resource_type: str, body: Any, query: str, rid: str | None = None
) -> tuple[Stored, bool]:
    """Inside a transaction: (existing, False) on one match, else create; 412 on several."""
    existing = match_one(repo, resource_type, query, "conditional create")
    if existing is not None:
        return repo.read(resource_type, existing), False
    new_id = rid or str(uuid.uuid4())
    claim(repo, resource_type, query, new_id)
    return repo.create(resource_type, body, rid=new_id), True


def conditional_create(
    repo: Repository, resource_type: str, body: Any, query: str
) -> tuple[Stored, bool]:
    normalize(resource_type, query)  # 400 before any work
    repo._validate(body, resource_type)
    return retry_races(lambda: repo.transaction(lambda r: create_in(r, resource_type, body, query)))


def update_in(
    repo: Repository,
    resource_type: str,
    query: str,
    body: Any,
    *,
    if_match: int | None = None,
    new_id: str | None = None,
) -> tuple[Stored, bool]:
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object holding a FHIR resource")
    existing = match_one(repo, resource_type, query, "conditional update")
    body_id = body.get("id")
    if existing is not None:
        if body_id is not None and body_id != existing:
            raise bad_request(
                f"the body's id {body_id!r} differs from the matched resource {existing!r}",
                expression=[f"{resource_type}.id"],
            )
        return repo.update(resource_type, existing, {**body, "id": existing}, if_match=if_match)
    if if_match is not None:
        raise precondition_failed("If-Match given but no resource matches the criteria")
    rid = body_id if isinstance(body_id, str) else new_id or str(uuid.uuid4())
    claim(repo, resource_type, query, rid)
    return repo.update(resource_type, rid, {**body, "id": rid})


def conditional_update(
    repo: Repository, resource_type: str, query: str, body: Any, *, if_match: int | None = None
) -> tuple[Stored, bool]:
    normalize(resource_type, query)
    return retry_races(
        lambda: repo.transaction(
            lambda r: update_in(r, resource_type, query, body, if_match=if_match)
        )
    )


def delete_in(
    repo: Repository,
    resource_type: str,
    query: str,
    *,
    allow_multiple: bool,
    max_matches: int,
    if_match: int | None = None,
) -> list[Stored]:
    if not allow_multiple:
        rid = match_one(repo, resource_type, query, "conditional delete")
        ids = [rid] if rid else []
    else:
        ids = match(repo, resource_type, query, limit=max_matches + 1)
        if len(ids) > max_matches:
            raise FhirError(412, "too-costly", f"criteria match more than {max_matches} resources")
    if if_match is not None and len(ids) != 1:
        raise precondition_failed("If-Match needs exactly one matching resource")
    return [repo.delete(resource_type, rid, if_match=if_match) for rid in ids]


def conditional_delete(
    repo: Repository,
    resource_type: str,
    query: str,
    *,
    allow_multiple: bool,
    max_matches: int,
    if_match: int | None = None,
) -> list[Stored]:
    normalize(resource_type, query)
    return repo.transaction(
        lambda r: delete_in(
            r,
            resource_type,
            query,
            allow_multiple=allow_multiple,
            max_matches=max_matches,
            if_match=if_match,
        )
    )


def patch_in(
    repo: Repository,
    resource_type: str,
    query: str,
    apply: Callable[[dict[str, Any]], Any],
    *,
    if_match: int | None = None,
) -> Stored:
    rid = match_one(repo, resource_type, query, "conditional patch")
    if rid is None:
        raise FhirError(
            404, "not-found", f"no {resource_type} matches {split_criteria(resource_type, query)}"
        )
    return repo.patch(resource_type, rid, apply, if_match=if_match)


def conditional_patch(
    repo: Repository,
    resource_type: str,
    query: str,
    apply: Callable[[dict[str, Any]], Any],
    *,
    if_match: int | None = None,
) -> Stored:
    normalize(resource_type, query)
    return repo.transaction(lambda r: patch_in(r, resource_type, query, apply, if_match=if_match))
