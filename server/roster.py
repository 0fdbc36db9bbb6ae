"""The insurer's member roster: one insurer-held Coverage per certificate number.

An insurer loads its roster (Coverage, with the plans as InsurancePlan) by transaction or batch
Bundle, or one Coverage at a time. A certificate number identifies one member of one insurer
(DOMAIN.md: "access is by group policy number + certificate number"), so two Coverage ids that
carry the same payor + certificate identifier (v2-0203 ``MB``, system and value) + dependent
number are a roster error: eligibility would find two members for one number. The second is
refused with 409 and an OperationOutcome naming the Coverage that holds the number; inside a
transaction Bundle that aborts the whole Bundle, so nothing of it is written.

Why ``dependent`` is part of the key: group plans cover a member's dependants under the member's
certificate number, told apart by ``Coverage.dependent`` (e.g. ``01``, ``02``).

Why only insurer-held versions claim a number (``auth.acl.insurer_held``: a trusted feed or the
paying insurer): a Coverage a clinic types in is a claim of cover, not the roster; refusing it
would tell the clinic that the number exists (and whose Coverage holds it).

Races (two clients creating the same certificate at once, one must win): the number is claimed
in ``_member_keys`` (``_id`` = digest of the key) in the write's own transaction, the way
``server/conditional.py`` claims conditional-create criteria. The loser's insert of the same
``_id`` is a WriteConflict while the winner is uncommitted (the driver re-runs the loser's
transaction, whose fresh snapshot then sees the winner's claim: 409), or a duplicate key once
the winner committed (409 at once). A claim whose Coverage was deleted, renumbered or edited by
someone who is not the insurer is stale and taken over by the next holder.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from auth.acl import insurer_held
from resources.coverage import V2_0203
from resources.domain import has_coding, local_id
from server.errors import FhirError
from server.hooks import HookPoint, Hooks, WriteEvent

if TYPE_CHECKING:
    from server.repository import Repository

KEYS = "_member_keys"


def payor_ids(coverage: dict[str, Any]) -> list[str]:
    ids = (local_id(p, "Organization") for p in coverage.get("payor") or [])
    return sorted({i for i in ids if i})


def certificates(coverage: dict[str, Any]) -> list[tuple[str, str]]:
    """(system, value) of the certificate (member) identifiers: typed v2-0203 ``MB``."""
    out = set()
    for ident in coverage.get("identifier") or []:
        if not isinstance(ident, dict) or not has_coding(ident.get("type"), V2_0203, "MB"):
            continue
        value = ident.get("value")
        if isinstance(value, str) and value.strip():
            out.add((str(ident.get("system") or ""), value.strip()))
    return sorted(out)


def member_keys(coverage: dict[str, Any]) -> list[str]:
    """``payor|system|value|dependent`` for every payor and certificate of the Coverage."""
    dependent = coverage.get("dependent") if isinstance(coverage.get("dependent"), str) else ""
    return [
        f"Organization/{payor}|{system}|{value}|{dependent}"
        for payor in payor_ids(coverage)
        for system, value in certificates(coverage)
    ]


def describe(key: str) -> str:
    payor, system, value, dependent = key.split("|", 3)
    what = f"certificate number {value!r} ({system or 'no system'}) of {payor}"
    return what + (f", dependent {dependent!r}" if dependent else "")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def duplicate(key: str, holder: str) -> FhirError:
    return FhirError(
        409,
        "duplicate",
        f"{describe(key)} is already held by {holder}: one Coverage per member (update "
        f"{holder} instead, or give the dependent number)",
        expression=["Coverage.identifier"],
    )


def _holds(repo: Repository, holder: str, key: str) -> bool:
    """Does ``holder`` (``Coverage/id``) still carry ``key`` as an insurer-held Coverage?
    Reads a transaction Bundle's unflushed inserts (``pending``) before the collection."""
    rid = holder.split("/", 1)[1]
    doc = next((d for d in repo.pending("Coverage") if d.get("_id") == rid), None)
    if doc is None:
        found = repo.unrestricted().find_visible("Coverage", {"_id": rid}, limit=1, flush=False)
        doc = next(found, None)
    if doc is None or doc.get("deleted") or not isinstance(doc.get("resource"), dict):
        return False
    if not (doc.get("acl") or {}).get("attested", True):
        return False
    return key in member_keys(doc["resource"])


def claim_member_numbers(event: WriteEvent) -> None:
    """PRE_WRITE: refuse a second Coverage id for a member number (module docstring)."""
    coverage = event.resource
    if event.resource_type != "Coverage" or coverage is None:
        return
    repo = event.repository
    if not insurer_held(repo.principal, payor_ids(coverage)):
        return
    me = f"Coverage/{event.resource_id}"
    coll = repo.store.db[KEYS]
    for key in member_keys(coverage):
        digest = _digest(key)
        held = coll.find_one({"_id": digest}, session=event.session)
        claim = {"_id": digest, "key": key[:2000], "ref": me}
        if held is None:
            try:
                coll.insert_one(claim, session=event.session)
            except DuplicateKeyError as exc:  # the winner committed after our snapshot
                winner = coll.find_one({"_id": digest}) or {}
                raise duplicate(key, str(winner.get("ref", "another Coverage"))) from exc
        elif held.get("ref") != me:
            holder = str(held.get("ref"))
            if _holds(repo, holder, key):
                raise duplicate(key, holder)
            coll.replace_one({"_id": digest, "ref": holder}, claim, session=event.session)


def install(hooks: Hooks) -> None:
    hooks.register(HookPoint.PRE_WRITE, claim_member_numbers)
