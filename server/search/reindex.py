"""Re-extraction of index values for stored resources (``consilium reindex``).

Run after the search-parameter registry changes: every current version gets a fresh ``idx``
(``Repository.reindex``: written with ``$set`` on ``idx`` only, guarded by the version so a
concurrent write wins), the indexes of the new registry are created (on first use of the
collection) and ``idx.*`` indexes of parameters that no longer exist are dropped, so the
64-index budget is not exhausted. The collections are only touched through the repository.
"""

from __future__ import annotations

from resources.registry import is_resource_type, resource_types
from server.database import Store
from server.hooks import Hooks
from server.repository import Repository
from server.search.index import index_models
from server.search.registry_state import record


def reindex_all(store: Store, types: list[str] | None = None) -> dict[str, int]:
    """Re-extract ``idx`` for every live resource of ``types`` (all by default); counts per type."""
    repo = Repository(store, Hooks())
    present = set(store.db.list_collection_names())
    wanted = [t for t in (types or list(resource_types())) if is_resource_type(t)]
    counts: dict[str, int] = {}
    for rtype in wanted:
        if rtype not in present:
            continue
        counts[rtype] = repo.reindex(rtype)
        repo.drop_search_indexes_except(rtype, {m.document["name"] for m in index_models(rtype)})
    if types is None:  # a partial reindex leaves the other types as they were
        record(store)
    return counts
