"""The stored-document layout, built by one pure function (see ARCHITECTURE.md, "Storage").

Every version of a resource is stored twice in the same transaction: as the *current* document
of its type's collection (``_id`` = logical id, with the search index values ``idx`` and, when
the integrity hook ran, the local reference targets ``refs``) and as an append-only *history*
document (``_id`` = ``Type/id/vid``). Both carry the ``acl`` ownership facts the policy filters
on. Why one builder: the repository, the audit materializer, ``consilium reindex`` and the
benchmark data generator all write this layout; spelled out four times it drifted (the history
copy lacked ``acl`` in one of them once). The builder is pure: no I/O, no clock, so it is
table-testable. ``Stored`` is the read view of either document; the bulk functions at the end
(load, reindex) work on this layout and are reached through the ``Repository`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from server import fhirjson
from server.search.index import extract_index, search_keys, window_keys
from server.search.keys import BUCKET, WINDOW_KEYS, bucket_of
from server.timeutil import now

if TYPE_CHECKING:
    from pymongo.client_session import ClientSession
    from pymongo.collection import Collection

    from server.database import Store

Doc = dict[str, Any]

# The HTTP method a version was written with, as history Bundles report it (request.method).
METHODS = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE"}


@dataclass(frozen=True)
class Stored:
    """One version of a resource as stored (``resource`` is None for a deletion)."""

    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    resource: dict[str, Any] | None
    method: str | None = None
    acl: dict[str, Any] | None = None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @classmethod
    def from_current(cls, resource_type: str, doc: Doc) -> Stored:
        return cls(
            resource_type,
            doc["_id"],
            doc["vid"],
            doc["ts"],
            doc["deleted"],
            doc.get("resource"),
            acl=doc.get("acl"),
        )

    @classmethod
    def from_history(cls, doc: Doc) -> Stored:
        return cls(
            doc["type"],
            doc["rid"],
            doc["vid"],
            doc["ts"],
            doc["deleted"],
            doc.get("resource"),
            doc.get("method"),
            doc.get("acl"),
        )


def same_content(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """Equal but for server-managed meta: an identical update makes no new version.

    Compared as JSON text (``fhirjson.same``): ``1.50`` replacing ``1.5`` is a change.
    """
    if a is None:
        return False

    def strip(r: dict[str, Any]) -> dict[str, Any]:
        meta = {
            k: v for k, v in (r.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")
        }
        out = {k: v for k, v in r.items() if k != "meta"}
        if meta:
            out["meta"] = meta
        return out

    return fhirjson.same(strip(a), strip(b))


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
    ks = search_keys(resource_type, idx)
    bucket = bucket_of(rid)
    current: Doc = {
        "_id": rid,
        "vid": vid,
        "ts": ts,
        "deleted": deleted,
        "resource": resource,
        "idx": idx,
        "ks": ks,
        WINDOW_KEYS: window_keys(resource_type, ks, bucket),
        BUCKET: bucket,
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


# ---------------------------------------------------------------- bulk work on the layout
# Called through the ``Repository`` methods of the same names (the door's public API).
def load_documents(
    store: Store,
    resource_type: str,
    versions: Sequence[Documents],
    *,
    history: bool = True,
    session: ClientSession | None = None,
) -> None:
    """Insert first versions built by ``build_documents``, in bulk, without hooks or policy.

    For the server's own append-only records (the audit materializer) and bulk loads (the search
    benchmark). Idempotent: ids that already exist are skipped (a retried audit batch), any other
    error propagates. ``history=False`` loads current documents only (the benchmark's data set).
    """
    targets: list[tuple[Collection[Doc], list[Doc]]] = [
        (store.resources(resource_type), [v.current for v in versions])
    ]
    if history:
        targets.append((store.history, [v.history for v in versions]))
    for coll, docs in targets:
        if not docs:
            continue
        try:
            coll.insert_many(docs, ordered=False, session=session)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise


def reindex(
    store: Store, resource_type: str, *, batch: int = 500, session: ClientSession | None = None
) -> int:
    """Rebuild ``idx`` of every live current version of ``resource_type``; returns how many.

    Each rebuilt document comes from ``build_documents`` (so it means what a write would store)
    and only its ``idx`` is written, guarded by the version so a concurrent write wins.
    """
    coll = store.resources(resource_type)
    n = 0
    ops: list[UpdateOne] = []
    for doc in coll.find({"deleted": False}, {"resource": 1, "vid": 1}, session=session):
        rebuilt = build_documents(
            resource_type,
            doc["_id"],
            doc["vid"],
            now(),
            doc["resource"],
            interaction="update",
            idx=extract_index(resource_type, doc["resource"]),
            acl={},
        ).current
        ops.append(
            UpdateOne(
                {"_id": doc["_id"], "vid": doc["vid"]},
                {"$set": {k: rebuilt[k] for k in ("idx", "ks", WINDOW_KEYS, BUCKET)}},
            )
        )
        n += 1
        if len(ops) >= batch:
            coll.bulk_write(ops, ordered=False, session=session)
            ops = []
    if ops:
        coll.bulk_write(ops, ordered=False, session=session)
    return n


def drop_search_indexes_except(store: Store, resource_type: str, keep: set[str]) -> None:
    """Drop the ``idx.*`` indexes of parameters that no longer exist (64-index budget)."""
    coll = store.resources(resource_type)
    for name in coll.index_information():
        if name.startswith("idx.") and name not in keep:
            coll.drop_index(name)
