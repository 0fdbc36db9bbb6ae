"""A bounded read cache of stored versions for ``GET [type]/[id]`` and vread (docs/workers.md).

What it holds: the *stored* version (``Stored``, before access control), never a per-caller
response, so scope checks, the party rules and redaction still run on every request
(``Repository.read``/``vread`` apply ``_guard`` to what the cache returns). Hits are deep copies:
the policy may build its view from the dict it is given.

Why it stays correct:
- Same process: every commit invalidates its keys synchronously (a POST_COMMIT hook, before the
  response), and a fill that started before an invalidation of its key is dropped
  (``begin``/``put``), so a reader racing a writer cannot put the old version back.
- Other processes: a ``Watcher`` thread tails a MongoDB change stream of the database and
  invalidates every key another process writes. The current-version cache is used only while the
  watcher is healthy (stream open, a reply within ``max_lag``, its watermark published within the
  lease); otherwise reads go to the database. A write is acknowledged only after every live peer
  published a watermark at or past the write's own change event (``Watcher.fence``), so a client
  that saw its write acknowledged by one process never gets the older version from another.
  Versions (vread) are immutable and cached regardless of the watcher.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bson.timestamp import Timestamp
from pymongo.database import Database
from pymongo.errors import InvalidOperation, PyMongoError

from resources.registry import resource_types
from server import fhirjson
from server.hooks import HookPoint, WriteEvent
from server.storage import Stored
from server.timeutil import now

log = logging.getLogger(__name__)
Key = tuple[str, str, int]  # (type, id, 0) = current version; (type, id, vid) = that version
WATCHERS = "_read_cache_watchers"
CURRENT = 0
# Replies with fewer events than this are whole (below mongod's first-batch size of 101 and
# SecantusDB's): a reply that size cannot have been cut inside a transaction by a batch limit.
SMALL_REPLY = 100


def _size(stored: Stored) -> int:
    """Approximate memory of an entry: its JSON length plus a fixed overhead."""
    return 200 + (len(fhirjson.dumps(stored.resource)) if stored.resource is not None else 0)


class ReadCache:
    """LRU by entry count and bytes, with invalidation sequence numbers for racing fills."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, tuple[Stored, int]] = OrderedDict()
        self._bytes = 0
        self._seq = 0
        # key -> sequence number of its latest invalidation (recent ones only); fills that began
        # before ``_floor`` are dropped wholesale (the map forgot older invalidations).
        self._invalidated: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._floor = 0
        # Whether the current-version entries may be served (the watcher says so).
        self.usable: Callable[[], bool] = lambda: True
        # Per type, how many of its resources were invalidated; ``_clears`` counts ``clear``.
        # Whole-result caches (server/search/page_cache.py) stamp an entry with these and drop it
        # when any of its types moved: any write of the type may change a search's result.
        self._generations: dict[str, int] = {}
        self._clears = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def begin(self) -> int:
        """A token to take before reading the database for a fill (see ``put``)."""
        return self._seq

    def generations(self, types: tuple[str, ...]) -> tuple[int, ...]:
        """A stamp that changes whenever a resource of one of ``types`` is invalidated."""
        with self._lock:
            return (self._clears, *(self._generations.get(t, 0) for t in types))

    def get(self, key: Key) -> Stored | None:
        if key[2] == CURRENT and not self.usable():
            return None
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        stored = item[0]
        if stored.resource is None:
            return stored
        return replace(stored, resource=copy.deepcopy(stored.resource))

    def put(self, key: Key, stored: Stored, token: int) -> None:
        """Keep ``stored`` unless its key (or everything) was invalidated after ``token``."""
        size = _size(stored)
        if size > self.max_bytes:
            return
        if stored.resource is not None:
            stored = replace(stored, resource=copy.deepcopy(stored.resource))
        with self._lock:
            if token < self._floor or self._invalidated.get(key[:2], -1) > token:
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (stored, size)
            self._bytes += size
            while self._entries and (
                len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def invalidate(self, resource_type: str, rid: str) -> None:
        """Forget the current version of ``resource_type/rid`` (versions are immutable)."""
        with self._lock:
            self._seq += 1
            self._generations[resource_type] = self._generations.get(resource_type, 0) + 1
            name = (resource_type, rid)
            self._invalidated[name] = self._seq
            self._invalidated.move_to_end(name)
            if len(self._invalidated) > 10_000:
                _, seq = self._invalidated.popitem(last=False)
                self._floor = max(self._floor, seq + 1)
            old = self._entries.pop((resource_type, rid, CURRENT), None)
            if old is not None:
                self._bytes -= old[1]

    def clear(self) -> None:
        """Forget everything and refuse fills that began before now."""
        with self._lock:
            self._seq += 1
            self._clears += 1
            self._floor = self._seq
            self._invalidated.clear()
            self._entries.clear()
            self._bytes = 0

    def load(
        self, resource_type: str, rid: str, vid: int, fetch: Callable[[], Stored | None]
    ) -> Stored | None:
        """The cached stored version, or ``fetch()`` (then cached); absence is never cached."""
        key = (resource_type, rid, vid)
        hit = self.get(key)
        if hit is not None:
            return hit
        token = self.begin()
        stored = fetch()
        if stored is not None and (vid != CURRENT or self.usable()):
            self.put(key, stored, token)
        return stored


def _buffered(stream: Any) -> bool:
    """Whether the stream still holds events of the last reply (pymongo keeps them in its
    cursor's ``_data``; when that cannot be seen, assume so: the watermark then waits for the
    next empty reply, slower but never early)."""
    data = getattr(getattr(stream, "_cursor", None), "_data", None)
    return True if data is None else bool(data)


class Watcher(threading.Thread):
    """Tails the database's change stream; invalidates, publishes a watermark, fences writes.

    The watermark is the newest ``clusterTime`` through which every event was processed (all of
    a transaction's events share one time, so a time counts only once a later one, or an empty
    reply, was seen). It is published in ``_read_cache_watchers`` with a heartbeat; peers whose
    heartbeat is older than ``lease`` are not waited for, and such a peer does not serve
    current-version hits either (it checks its own last successful publish).
    """

    def __init__(
        self,
        db: Database[Any],
        cache: ReadCache,
        *,
        lease: float = 2.0,
        max_lag: float = 1.0,
        await_ms: int = 200,
    ) -> None:
        super().__init__(name="read-cache-watcher", daemon=True)
        self.db = db
        self.cache = cache
        self.lease = lease
        self.max_lag = max_lag
        self.await_ms = await_ms
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._halt = threading.Event()
        self._born = time.monotonic()
        self._confirmed: Timestamp | None = None  # every live peer is at or past this
        self._peers = 1  # live peers at the last heartbeat (1 until known: fence by default)
        self._cond = threading.Condition()
        self._open = False
        self._last_reply = 0.0
        self._last_publish = 0.0
        self._published: Timestamp | None = None
        self._complete: Timestamp | None = None
        self._last_time: Timestamp | None = None
        # (type, id) -> (vid, clusterTime) of the latest event seen for it (recent keys only)
        self._recent: OrderedDict[tuple[str, str], tuple[int, Timestamp]] = OrderedDict()
        # (type, id) -> vid of this process's own commits whose change event is still to come
        self._own: OrderedDict[tuple[str, str], int] = OrderedDict()
        cache.usable = self.healthy

    # -------------------------------------------------------------------------- health
    def healthy(self) -> bool:
        t = time.monotonic()
        return (
            self._open
            # A new process serves no cached current version for one lease: every writer's
            # view of the live peers (refreshed each heartbeat) then includes it.
            and t - self._born > self.lease
            and t - self._last_reply < self.max_lag
            and t - self._last_publish < self.lease * 0.75
        )

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        try:
            self.db[WATCHERS].delete_one({"_id": self.id})
        except PyMongoError:
            log.warning("could not remove read-cache watcher %s", self.id)

    # ---------------------------------------------------------------------------- loop
    def _pipeline(self) -> list[dict[str, Any]]:
        crud = ["insert", "update", "replace", "delete"]
        return [
            {
                "$match": {
                    "$or": [
                        {"ns.coll": {"$in": sorted(resource_types())}},
                        {"operationType": {"$nin": crud}},
                    ]
                }
            },
            # The event's keys and the new version number only, not the whole stored document.
            {
                "$project": {
                    "operationType": 1,
                    "clusterTime": 1,
                    "ns": 1,
                    "documentKey": 1,
                    "fullDocument.vid": 1,
                }
            },
        ]

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self._tail()
            except InvalidOperation:
                self._open = False
                return  # the client was closed: the app is gone
            except PyMongoError as exc:
                log.warning("read-cache watcher: %s; reopening", exc)
            self._open = False
            self._halt.wait(0.2)

    def _tail(self) -> None:
        with self.db.watch(self._pipeline(), max_await_time_ms=self.await_ms) as stream:
            # Anything cached before the stream opened may have missed events: start empty.
            self.cache.clear()
            self._open = True
            self._publish(force=True)
            in_reply = 0
            while not self._halt.is_set() and stream.alive:
                change = stream.try_next()
                self._last_reply = time.monotonic()
                if change is None:
                    self._advance(None, drained=True)
                    continue
                self._apply(change)
                in_reply += 1
                if not _buffered(stream):
                    # The end of a reply. A small one held everything committed when the server
                    # built it, so the watermark may move now instead of after the next, empty,
                    # reply (``await_ms`` later). A large one may have been cut by a batch limit
                    # inside a transaction's events: then wait for the next reply.
                    if in_reply < SMALL_REPLY:
                        self._advance(None, drained=True)
                    in_reply = 0

    def _apply(self, change: dict[str, Any]) -> None:
        op = change.get("operationType")
        ts = change.get("clusterTime")
        ns = change.get("ns") or {}
        if op in ("insert", "update", "replace", "delete"):
            rtype, rid = str(ns.get("coll")), str((change.get("documentKey") or {}).get("_id"))
            vid = int((change.get("fullDocument") or {}).get("vid") or 0)
            with self._cond:
                own = vid > 0 and self._own.get((rtype, rid)) == vid
                if own:
                    del self._own[(rtype, rid)]
            if not own:
                self.cache.invalidate(rtype, rid)
            if isinstance(ts, Timestamp):
                with self._cond:
                    self._recent[(rtype, rid)] = (vid, ts)
                    self._recent.move_to_end((rtype, rid))
                    if len(self._recent) > 10_000:
                        self._recent.popitem(last=False)
                    self._cond.notify_all()
        else:
            self.cache.clear()
        if isinstance(ts, Timestamp):
            self._advance(ts, drained=False)

    def _advance(self, ts: Timestamp | None, *, drained: bool) -> None:
        if ts is not None:
            if self._last_time is not None and ts > self._last_time:
                self._complete = self._last_time
            self._last_time = ts
        if drained and self._last_time is not None:
            self._complete = self._last_time
        self._publish(force=False)

    def _publish(self, *, force: bool) -> None:
        t = time.monotonic()
        advanced = self._complete is not None and self._complete != self._published
        if not force and not advanced and t - self._last_publish < self.lease / 4:
            return
        doc: dict[str, Any] = {"beat": now(), "seen": self._complete or Timestamp(0, 0)}
        self.db[WATCHERS].update_one({"_id": self.id}, {"$set": doc}, upsert=True)
        self._published = self._complete
        self._last_publish = t
        live = now() - timedelta(seconds=self.lease)
        self._peers = self.db[WATCHERS].count_documents(
            {"_id": {"$ne": self.id}, "beat": {"$gt": live}}
        )
        with self._cond:
            self._cond.notify_all()

    def seen(self, resource_type: str, rid: str) -> int | None:
        """The version in the latest change event seen for the key (recent keys only)."""
        with self._cond:
            last = self._recent.get((resource_type, rid))
        return None if last is None else last[0]

    def expect_own(self, resource_type: str, rid: str, vid: int) -> None:
        """Note a commit of this process that ``on_commit`` has already invalidated.

        Its change event then carries nothing new, and invalidating again would drop what was
        filled since the response (a read or a first search page right after one's own
        write), so ``_apply`` skips exactly that (type, id, vid). Any other version, a delete
        without a version, or an event that arrived before the commit hook ran (already in
        ``_recent``, its invalidation came before the response) is handled as before.
        """
        with self._cond:
            seen = self._recent.get((resource_type, rid))
            if seen is not None and seen[0] >= vid:
                return
            self._own[(resource_type, rid)] = vid
            self._own.move_to_end((resource_type, rid))
            if len(self._own) > 10_000:
                self._own.popitem(last=False)

    # --------------------------------------------------------------------------- fence
    def fence(self, resource_type: str, rid: str, vid: int) -> bool:
        """Wait until every live peer processed the event of version ``vid`` of the key.

        First this process's own watcher must see the event (that gives its clusterTime), then
        each peer with a fresh heartbeat must publish a watermark at or past it. Bounded by the
        lease: a peer that does not keep up stops serving cached current versions by itself
        before its heartbeat expires. False when the wait gave up (logged).
        """
        if self._peers == 0:
            return True  # alone (as of the last heartbeat; a newcomer waits a lease, see healthy)
        deadline = time.monotonic() + self.lease
        with self._cond:
            while True:
                seen = self._recent.get((resource_type, rid))
                if seen is not None and seen[0] >= vid:
                    ts = seen[1]
                    break
                left = deadline - time.monotonic()
                if left <= 0 or not self._open:
                    log.warning("fence: no change event for %s/%s/%s", resource_type, rid, vid)
                    return False
                self._cond.wait(min(left, 0.05))
        if self._confirmed is not None and ts <= self._confirmed:
            return True  # a transaction's other events: one wait covers them all
        while True:
            live = now() - timedelta(seconds=self.lease)
            behind = self.db[WATCHERS].count_documents(
                {"_id": {"$ne": self.id}, "beat": {"$gt": live}, "seen": {"$lt": ts}}
            )
            if behind == 0:
                with self._cond:
                    if self._confirmed is None or ts > self._confirmed:
                        self._confirmed = ts
                return True
            if time.monotonic() > deadline:
                log.warning("fence: %d peer(s) behind on %s/%s", behind, resource_type, rid)
                return False
            time.sleep(0.002)


# ------------------------------------------------------------------------------- the plugin
def plugin(app: Any, state: Any) -> None:
    """Install the cache when ``CONSILIUM_READ_CACHE`` > 0: the watcher, the commit hook."""
    settings = state.settings
    if settings.read_cache <= 0:
        return
    cache = ReadCache(settings.read_cache, settings.read_cache_bytes)
    watcher = Watcher(state.store.db, cache, lease=settings.read_cache_lease_seconds)

    def on_commit(event: WriteEvent) -> None:
        # Synchronously, before the response: this process never serves the old version again.
        cache.invalidate(event.resource_type, event.resource_id)
        if event.version_id is not None:
            watcher.expect_own(event.resource_type, event.resource_id, event.version_id)
            watcher.fence(event.resource_type, event.resource_id, event.version_id)

    state.hooks.register(HookPoint.POST_COMMIT, on_commit, first=True)
    state.read_cache = cache
    state.read_cache_watcher = watcher
    state.shutdown_hooks.insert(0, watcher.stop)
    watcher.start()
