"""Re-extraction of index values for stored resources (``consilium reindex``).

Run after the search-parameter registry changes: every current version gets a fresh ``idx``
(written with ``$set`` on ``idx`` only, guarded by the version so a concurrent write wins), the
indexes of the new registry are created (on first use of the collection) and ``idx.*`` indexes
of parameters that no longer exist are dropped, so the 64-index budget is not exhausted.
"""

from __future__ import annotations

from pymongo import UpdateOne

from resources.registry import is_resource_type, resource_types
from server.database import Store
from server.search.index import extract_index, index_models
from server.search.registry_state import record

BATCH = 500


def reindex_all(store: Store, types: list[str] | None = None) -> dict[str, int]:
    """Re-extract ``idx`` for every live resource of ``types`` (all by default); counts per type."""
    present = set(store.db.list_collection_names())
    wanted = [t for t in (types or list(resource_types())) if is_resource_type(t)]
    counts: dict[str, int] = {}
    for rtype in wanted:
        if rtype not in present:
            continue
        coll = store.resources(rtype)
        n = 0
        ops: list[UpdateOne] = []
        for doc in coll.find({"deleted": False}, {"resource": 1, "vid": 1}):
            idx = extract_index(rtype, doc["resource"])
            ops.append(UpdateOne({"_id": doc["_id"], "vid": doc["vid"]}, {"$set": {"idx": idx}}))
            n += 1
            if len(ops) >= BATCH:
                coll.bulk_write(ops, ordered=False)
                ops = []
        if ops:
            coll.bulk_write(ops, ordered=False)
        counts[rtype] = n
        wanted_names = {m.document["name"] for m in index_models(rtype)}
        for name in coll.index_information():
            if name.startswith("idx.") and name not in wanted_names:
                coll.drop_index(name)
    if types is None:  # a partial reindex leaves the other types as they were
        record(store)
    return counts
