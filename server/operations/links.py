"""Reading linked resources for operations, always through the caller's repository.

Two directions, both policy-safe:

* ``follow``: a reference held by a resource the caller already sees → ``repo.read`` (which
  applies the access policy and redaction). Missing, deleted or invisible targets are skipped
  and reported as a warning — the message never says *which* of missing/invisible it was, so an
  operation cannot be used to probe for resources the caller may not see.
* ``pointing_at``: resources whose reference search parameter (``idx.<code>``, encoded
  ``Type/id`` by server/search/types/reference.py) holds a key — a query on the stored index
  through ``repo.find_visible`` (access filter, ``can_read`` and redaction per result).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resources.registry import is_resource_type, search_params_for
from resources.validation import ID_PATTERN
from server.errors import FhirError, Issue
from server.repository import Repository

Doc = dict[str, Any]
SKIPPED_STATUSES = (403, 404, 410)
MAX_POINTING = 1000  # per type and key; a case has a handful


def local_key(reference: Any, base: str | None = None) -> str | None:
    """``{"reference": "Type/id"}`` (or ``<base>/Type/id``, or with ``/_history/n``) → ``Type/id``."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str) or not ref or ref.startswith("#"):
        return None
    if base and ref.startswith(base.rstrip("/") + "/"):
        ref = ref[len(base.rstrip("/")) + 1 :]
    if "://" in ref or ref.startswith("urn:"):
        return None
    ref = ref.split("/_history/", 1)[0]
    parts = ref.split("/")
    if len(parts) != 2 or not is_resource_type(parts[0]) or not ID_PATTERN.match(parts[1]):
        return None
    return ref


def follow(
    repo: Repository, reference: Any, expression: str, issues: list[Issue], base: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """Read the target of ``reference``; None (and a warning in ``issues``) when unavailable."""
    key = local_key(reference, base)
    if key is None:
        shown = reference.get("reference") if isinstance(reference, dict) else None
        if shown or (isinstance(reference, dict) and reference.get("identifier")):
            issues.append(
                Issue(
                    "not-supported",
                    f"{expression}: {shown or 'a logical reference'} is not a local reference; "
                    "not included",
                    "information",
                    expression=[expression],
                )
            )
        return None
    rtype, rid = key.split("/")
    try:
        stored = repo.read(rtype, rid)
    except FhirError as exc:
        if exc.status not in SKIPPED_STATUSES:
            raise
        what = "was deleted" if exc.status == 410 else "is not available (unknown or not visible)"
        issues.append(Issue("not-found", f"{expression}: {key} {what}", "warning", [expression]))
        return None
    assert stored.resource is not None
    return key, stored.resource


def pointing_at(
    repo: Repository, resource_type: str, codes: Sequence[str], key: str
) -> list[tuple[str, dict[str, Any]]]:
    """Current, visible ``resource_type`` resources whose ``codes`` parameters reference ``key``."""
    params = search_params_for(resource_type)
    usable = [c for c in codes if c in params and params[c].type == "reference"]
    if not usable:
        return []
    # One index scan per parameter (an ``$or`` is a collection scan on SecantusDB), merged by id.
    found: dict[str, Doc] = {}
    for code in usable:
        for doc in repo.find_visible(resource_type, {f"idx.{code}": key}, limit=MAX_POINTING):
            found.setdefault(doc["_id"], doc)
    return [(f"{resource_type}/{i}", found[i]["resource"]) for i in sorted(found)[:MAX_POINTING]]
