"""Notices that stored index values were extracted under another search registry.

Index values are computed at write time, so a new or changed SearchParameter (or a change in how
values are extracted) leaves the resources already stored without them: searches on that
parameter silently miss older resources until ``consilium reindex`` runs. The fingerprint of
what produced the stored values is therefore kept in the database; ``consilium serve`` compares
it at start-up and says which command to run, and the reindex records the new one.
"""

from __future__ import annotations

import hashlib
import logging

import orjson

from resources.registry import search_parameters
from server.database import Store

log = logging.getLogger(__name__)

STATE = "_server_state"
KEY = "search-index"
# Bump when ``extract_index`` changes what it stores for an unchanged registry.
INDEX_FORMAT = 4  # 2: numbers and quantities as exact sortable decimal text; 3: ``ks`` keys;
# 4: ``kw`` window keys and the ``kb`` bucket
# Bump when extraction finds other values in the same layout: reported, not forced (searches
# still work; only the changed parameters miss older resources until ``consilium reindex``).
# 2: a cast over several items (``Observation.component.value as Quantity``) indexes each.
EXTRACTION = 2


def fingerprint() -> str:
    """A digest of every parameter that feeds ``extract_index``, and of the extraction format."""
    rows = sorted(
        (t, code, p.type, p.expression or "", list(p.target), [list(c) for c in p.components])
        for t, params in search_parameters().items()
        for code, p in params.items()
    )
    return hashlib.sha256(orjson.dumps([INDEX_FORMAT, EXTRACTION, rows])).hexdigest()


def recorded(store: Store) -> str | None:
    doc = store.db[STATE].find_one({"_id": KEY})
    value = doc.get("fingerprint") if doc else None
    return value if isinstance(value, str) else None


def record(store: Store) -> None:
    store.db[STATE].replace_one(
        {"_id": KEY},
        {"_id": KEY, "fingerprint": fingerprint(), "format": INDEX_FORMAT},
        upsert=True,
    )


def layout_outdated(store: Store) -> bool:
    """True when the stored documents were written in an older index layout (see INDEX_FORMAT)."""
    doc = store.db[STATE].find_one({"_id": KEY})
    return doc is not None and doc.get("format") != INDEX_FORMAT


def check(store: Store) -> bool:
    """True when stored index values match the registry; a database without a record (new, or
    written before the record existed) is taken as current and gets one. An older layout is
    reindexed here (a changed registry is only reported: reindexing is then the operator's
    call, since the new parameters may be wrong)."""
    if layout_outdated(store):
        # Searches would find nothing in an older layout (format 3 moved every key to ``ks``),
        # so this is not left to the operator: one pass over the current versions.
        from server.search.reindex import reindex_all

        log.warning("stored search keys are in an older layout: reindexing every resource type")
        counts = reindex_all(store)
        log.warning("reindexed %d resources", sum(counts.values()))
        return True
    stored = recorded(store)
    if stored is None:
        record(store)
        return True
    if stored == fingerprint():
        return True
    log.warning(
        "the search parameters changed since the stored resources were indexed: searches on new "
        "or changed parameters miss older resources until `consilium reindex` is run"
    )
    return False
