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
INDEX_FORMAT = 2  # 2: numbers and quantities as exact sortable decimal text


def fingerprint() -> str:
    """A digest of every parameter that feeds ``extract_index``, and of the extraction format."""
    rows = sorted(
        (t, code, p.type, p.expression or "", list(p.target), [list(c) for c in p.components])
        for t, params in search_parameters().items()
        for code, p in params.items()
    )
    return hashlib.sha256(orjson.dumps([INDEX_FORMAT, rows])).hexdigest()


def recorded(store: Store) -> str | None:
    doc = store.db[STATE].find_one({"_id": KEY})
    value = doc.get("fingerprint") if doc else None
    return value if isinstance(value, str) else None


def record(store: Store) -> None:
    store.db[STATE].replace_one(
        {"_id": KEY}, {"_id": KEY, "fingerprint": fingerprint()}, upsert=True
    )


def check(store: Store) -> bool:
    """True when stored index values match the registry; a database without a record (new, or
    written before the record existed) is taken as current and gets one."""
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
