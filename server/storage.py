"""The stored-document layout, built by one pure function (see ARCHITECTURE.md, "Storage").

Every version of a resource is stored twice in the same transaction: as the *current* document
of its type's collection (``_id`` = logical id, with the search index values ``idx`` and, when
the integrity hook ran, the local reference targets ``refs``) and as an append-only *history*
document (``_id`` = ``Type/id/vid``). Both carry the ``acl`` ownership facts the policy filters
on. Why one builder: the repository, the audit materializer, ``consilium reindex`` and the
benchmark data generator all write this layout; spelled out four times it drifted (the history
copy lacked ``acl`` in one of them once). Pure: no I/O, no clock, so it is table-testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

Doc = dict[str, Any]

# The HTTP method a version was written with, as history Bundles report it (request.method).
METHODS = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE"}


@dataclass(frozen=True)
class Documents:
    """The two documents of one version: ``current`` replaces the type collection's document,
    ``history`` is appended to ``_history``."""

    current: Doc
    history: Doc


def build_documents(
    resource_type: str,
    rid: str,
    vid: int,
    ts: datetime,
    resource: dict[str, Any] | None,
    *,
    interaction: str,
    idx: dict[str, Any],
    acl: dict[str, Any],
    refs: list[str] | None = None,
) -> Documents:
    """The documents of version ``vid`` of ``resource_type/rid`` (``resource`` None: a deletion).

    ``idx`` are the extracted search values (``server.search.index.extract_index``; ``{}`` for a
    deletion), ``acl`` the ownership facts (``auth.acl.compute_acl``), ``refs`` the local
    reference targets kept by ``server/integrity.py`` (omitted when None). The resource body is
    shared, not copied: the caller hands over ownership of it.
    """
    deleted = resource is None
    current: Doc = {
        "_id": rid,
        "vid": vid,
        "ts": ts,
        "deleted": deleted,
        "resource": resource,
        "idx": idx,
        "acl": acl,
    }
    if refs is not None:
        current["refs"] = refs
    history: Doc = {
        "_id": f"{resource_type}/{rid}/{vid}",
        "type": resource_type,
        "rid": rid,
        "vid": vid,
        "ts": ts,
        "method": METHODS[interaction],
        "deleted": deleted,
        "resource": resource,
        "acl": acl,
    }
    return Documents(current, history)
