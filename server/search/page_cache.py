"""First search pages, kept while nothing they searched was written (docs/paging.md).

Why: on SecantusDB a search's first page costs work proportional to its *match* count, not its
page size (the database decodes every index candidate before it sorts and limits; a family name
shared by 10,000 Patients took ~2 s per first page). Worklists and portals repeat the same few
searches all day, so the keyset rows of a first page (which ids, in which order, the total, the
paging state its ``next`` link names) are kept and reused until a resource of a searched type is
written. HAPI reuses identical searches for a fixed minute whatever was written since; this
cache never serves a result a write has changed.

Why it stays correct:
- The key is the *resolved* search: each type's planned filter (chains and ``_has`` already
  resolved to ids, so a write on a chained type changes the key), its residual checks and sort,
  the caller's access filter for each type (so no party ever gets another's rows), page size and
  ``_total``. It is a hash of the BSON encoding: typed, so distinct filters never collide.
- An entry is stamped with the write generations of its types (``ReadCache.generations``) taken
  *before* the database was read; any invalidation since (a commit in this process, or another
  process's write seen by the change-stream watcher, which writers fence on) makes it a miss.
- Only ids and sort keys are kept: the page's resources are fetched, access-checked and
  redacted per request (``Repository.fetch_visible``), as without the cache.
- Entries live at most ``max_age`` (far below the paging state's hour), bounded by count (LRU).
- Inside a transaction (a Bundle's search entries) nothing is cached: it sees its own writes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions

from server.read_cache import ReadCache

Stamp = tuple[int, ...]


@dataclass(frozen=True)
class FirstPage:
    """What a first page's keyset read found: rows, the total when known, its paging state."""

    rows: tuple[tuple[int, list[Any], str], ...]  # (type index, sort key, id); never mutated
    total: int | None
    snapshot: str | None
    born: float  # time.monotonic() of the fill


class PageCache:
    """An LRU of ``FirstPage`` by resolved-search key, valid while its types' stamp holds."""

    def __init__(self, source: ReadCache, max_entries: int, max_age: float = 60.0) -> None:
        self.source = source
        self.max_entries = max_entries
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, tuple[FirstPage, tuple[str, ...], Stamp]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(parts: Sequence[Any], codec_options: CodecOptions[Any]) -> bytes:
        return hashlib.sha256(bson.encode({"k": list(parts)}, codec_options=codec_options)).digest()

    def begin(self, types: Sequence[str]) -> Stamp | None:
        """The stamp to fill under, taken before reading; None: the cache may not be used now."""
        if not self.source.usable():
            return None
        return self.source.generations(tuple(types))

    def get(self, key: bytes) -> FirstPage | None:
        if not self.source.usable():
            return None
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                self.misses += 1
                return None
            page, types, stamp = item
            stale = time.monotonic() - page.born > self.max_age
            if stale or self.source.generations(types) != stamp:
                del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return page

    def put(self, key: bytes, types: Sequence[str], page: FirstPage, stamp: Stamp) -> None:
        """Keep ``page`` unless one of ``types`` was written since ``stamp`` was taken."""
        types_t = tuple(types)
        if self.source.generations(types_t) != stamp:
            return
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (page, types_t, stamp)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def plugin(app: Any, state: Any) -> None:
    """Install the cache when the read cache is on and ``CONSILIUM_SEARCH_CACHE`` > 0."""
    settings = state.settings
    if state.read_cache is None or settings.search_cache <= 0:
        return
    state.page_cache = PageCache(
        state.read_cache, settings.search_cache, settings.search_cache_seconds
    )
