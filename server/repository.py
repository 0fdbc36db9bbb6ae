"""The one door to resource data: every write and every read of the resource collections.

Writes: every create/update/delete/patch, whether it comes from REST, a bundle or a hook, goes
through a ``Repository`` (versioning, optimistic locking, index extraction, history, hooks; the
documents are built by ``server.storage.build_documents``). Reads: ``read``/``vread``/
``history`` for one resource, and the read primitive ``find_visible``/``fetch_visible`` for
everything that queries (search, includes, operations, conditional matching, integrity, the
policy's facts), which applies the request's ``SecurityContext`` once: scope + party filter,
residual re-check, ``can_read``, redaction. Nothing else touches the resource or history
collections (tests/test_architecture.py says so).

A repository is cheap and built per request (it carries the request's security context); a
repository bound to a session joins that session's transaction, which is how a transaction
Bundle writes all its entries atomically.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import DESCENDING, ReplaceOne
from pymongo.client_session import ClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from auth.principal import Principal
from resources.registry import is_resource_type
from resources.validation import ResourceInvalid, validate_resource
from server import fhirjson
from server.context import SecurityContext
from server.database import HISTORY, Doc, Store
from server.errors import FhirError, Issue, conflict, gone, not_found, precondition_failed
from server.hooks import HookPoint, Hooks, WriteEvent
from server.search import residual
from server.search.index import extract_index, key_layout, windowed_fields
from server.search.keys import WALK_INDEX, Window, drive, elem_match, walks_live, window_of
from server.search.query import and_merge
from server.storage import (
    Documents,
    build_documents,
    drop_search_indexes_except,
    load_documents,
    reindex,
    same_content,
)
from server.storage import (
    Stored as Stored,
)
from server.timeutil import fhir_instant, now

if TYPE_CHECKING:
    from server.read_cache import ReadCache

T = TypeVar("T")


def invalid(exc: ResourceInvalid) -> FhirError:
    issues = [
        Issue("invalid" if d else "structure", d, expression=[e] if e else [])
        for d, e in exc.issues
    ]
    return FhirError(400, "invalid", str(exc), issues=issues)


@dataclass
class _Pending:
    """A write batch's documents not written yet: inserts (new ids, history) per collection,
    and replacements ``(expected vid, doc)`` of existing ids per resource type, in write order."""

    inserts: dict[str, list[Doc]] = field(default_factory=dict)
    replaces: dict[str, list[tuple[int, Doc]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.replaces)


def _fingerprint(resource: dict[str, Any] | None) -> bytes | None:
    """The resource's serialized form, to notice a PRE_WRITE hook changing it (even in place).

    Exact JSON text (``fhirjson.dumps``): a hook turning ``1.50`` into ``1.5`` is a change."""
    return None if resource is None else fhirjson.dumps(resource)


class Repository:
    # PRE_COMMIT follow-up writes one request may cause before we call it a loop (a transaction
    # Bundle of 10,000 entries plus the case engine's few writes per request stays far below).
    MAX_FOLLOW_UPS = 100_000

    def __init__(
        self,
        store: Store,
        hooks: Hooks,
        *,
        security: SecurityContext | None = None,
        session: ClientSession | None = None,
    ) -> None:
        self.store = store
        self.hooks = hooks
        # Who is asking, and the policy's cached answers for them; the system context (no
        # narrowing) when the server acts on its own account.
        self.security = security if security is not None else SecurityContext.system()
        self.session = session
        self._post_commit: list[WriteEvent] = []
        # Documents waiting for one insert_many / bulk_write per collection (see write_batch);
        # shared when bound.
        self._write_batch: list[_Pending] = []
        # Facts looked up while writing, memoised for this request's transaction (``memo``).
        self._memo: dict[str, Any] = {}
        # Current documents (``Type/id`` → doc without ``idx``, None: no such id) read or written
        # in this transaction (see ``current``); shared when bound, cleared per attempt.
        self._currents: dict[str, Doc | None] = {}

    # ----------------------------------------------------------------------------- transactions
    def bound(self, session: ClientSession | None) -> Repository:
        repo = Repository(self.store, self.hooks, security=self.security, session=session)
        repo._post_commit = self._post_commit
        repo._write_batch = self._write_batch
        repo._memo = self._memo
        repo._currents = self._currents
        return repo

    @contextmanager
    def write_batch(self) -> Iterator[None]:
        """Inside a transaction, collect the batch's documents and write them at the end with
        one ``insert_many`` per collection for new documents and history, and one ``bulk_write``
        of guarded replacements per collection for new versions of existing ids.

        Why: a transaction Bundle (or an import batch) of 1,000 entries otherwise pays 2,000 to
        3,000 round trips. Reads that need the collections (``read``, ``vread``, ``history``,
        ``find_visible``) flush first; ``current`` does not need to (it answers from the
        transaction's own cache for every id written in it), and a write hook's lookup reads
        ``pending`` instead. Pending documents are dropped on error (the transaction aborts).
        """
        if self.session is None:
            yield
            return
        self._write_batch.append(_Pending())
        try:
            yield
            self.flush_writes()
        finally:
            self._write_batch.clear()

    def flush_writes(self) -> None:
        if not self._write_batch or not self._write_batch[-1]:
            return
        pending = self._write_batch[-1]
        self._write_batch[-1] = _Pending()
        try:
            for name, docs in pending.inserts.items():
                coll = self.store.history if name == HISTORY else self.store.resources(name)
                coll.insert_many(docs, ordered=True, session=self.session)
        except BulkWriteError as exc:
            raise conflict("a resource was written concurrently; retry") from exc
        for name, ops in pending.replaces.items():
            res = self.store.resources(name).bulk_write(
                [ReplaceOne({"_id": d["_id"], "vid": vid}, d) for vid, d in ops],
                ordered=True,
                session=self.session,
            )
            if res.matched_count != len(ops):
                raise conflict(f"a {name} resource was modified concurrently; retry")

    def as_system(self) -> Repository:
        """A repository acting for the server itself (no principal, no session).

        For follow-up work the server does on its own account after a commit, such as opening
        the case Task of a new second-opinion request: the client's scopes allowed the request,
        and the Task is the server's bookkeeping, not something the client must be allowed to
        write.
        """
        return Repository(self.store, self.hooks)

    def _write(self, fn: Callable[[Repository], T]) -> T:
        """Run ``fn(repo_bound_to_session)`` in a transaction unless already inside one."""
        if self.session is not None:
            return fn(self)
        self._post_commit.clear()

        def attempt(session: ClientSession | None) -> T:
            self._post_commit.clear()  # a retried transaction must not double-fire hooks
            self._memo.clear()  # nor trust what the aborted attempt read
            self._currents.clear()
            repo = self.bound(session)
            result = fn(repo)
            repo.run_pre_commit()
            return result

        try:
            result = self.store.transaction(attempt)
        except OperationFailure as exc:
            if exc.has_error_label("TransientTransactionError") or exc.code == 112:
                raise conflict("concurrent modification; retry the request") from exc
            raise
        self.flush_post_commit()
        return result

    def run_pre_commit(self) -> None:
        """PRE_COMMIT hooks over every write event so far, and over those their writes add."""
        done = 0
        while done < len(self._post_commit):
            if done >= self.MAX_FOLLOW_UPS:
                raise FhirError(500, "exception", "write follow-ups did not converge")
            event = self._post_commit[done]
            done += 1
            self.hooks.run(HookPoint.PRE_COMMIT, event)
        self.flush_writes()

    def flush_post_commit(self) -> None:
        events, self._post_commit[:] = list(self._post_commit), []
        for event in events:
            self.hooks.run(HookPoint.POST_COMMIT, event)

    def transaction(self, fn: Callable[[Repository], T]) -> T:
        """Public: run ``fn(repo)`` with every write it makes in one MongoDB transaction."""
        return self._write(fn)

    # --------------------------------------------------------------------------- access policy
    @property
    def principal(self) -> Principal | None:
        return self.security.principal

    def access_filter(self, resource_type: str) -> Doc:
        """A MongoDB filter ANDed into every query on ``resource_type`` for this principal.

        ``{}`` means no narrowing; ``{"_id": {"$in": []}}`` style filters deny all. Computed once
        per request and type (``SecurityContext``).
        """
        return self.security.access_filter(resource_type)

    def can_read(
        self, resource_type: str, resource: dict[str, Any], acl: dict[str, Any] | None = None
    ) -> bool:
        """Check an outgoing resource (defence in depth behind ``access_filter``)."""
        return self.security.can_read(resource_type, resource, acl)

    def authorize(self, interaction: str, resource_type: str) -> None:
        """Scope/party check of an interaction on a type (403); no-op without a policy."""
        self.security.authorize(interaction, resource_type)

    def redact(self, resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
        """The view of an outgoing resource this principal gets (insurers: status only)."""
        return self.security.redact(resource_type, resource)

    def _guard(self, interaction: str, stored: Stored) -> Stored:
        """Apply the policy to one stored version: 403 for scope, 404 when not visible."""
        if not self.security.enforcing:
            return stored
        self.authorize(interaction, stored.resource_type)
        body = stored.resource if stored.resource is not None else {"id": stored.id}
        shown = self._disclose(stored.resource_type, body, stored.acl)
        if shown is None:
            raise not_found(f"{stored.resource_type}/{stored.id} is not known")
        if stored.resource is None:
            return stored
        return replace(stored, resource=shown)

    def _disclose(
        self, resource_type: str, resource: dict[str, Any], acl: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The one outgoing check: ``can_read``, then this principal's view (None: hidden)."""
        if not self.can_read(resource_type, resource, acl or {}):
            return None
        return self.redact(resource_type, resource)

    # ---------------------------------------------------------------------- the read primitive
    def find_visible(
        self,
        resource_type: str,
        flt: Doc,
        *,
        fields: Sequence[str] | None = None,
        checks: Sequence[Doc] = (),
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int = 0,
        include_deleted: bool = False,
        flush: bool = True,
        window: tuple[int, int] | None = None,
        longer: bool = False,
    ) -> Iterator[Doc]:
        """THE read of resource data: current documents of ``resource_type`` matching ``flt``
        that this request may see. Search, includes, operations, conditional matching, integrity
        and the policy's own facts all read through here; nothing else queries the collections.

        In order, once: the scope + party filter of the security context (its database part
        ANDed into ``flt``, its exactly-checkable part re-checked on the fetched documents, so
        restricted principals keep index scans; see ``SecurityContext.access_parts``), the
        find, the residual re-checks ``checks`` (search predicates MongoDB over-matches on
        multikey fields), then for whole documents ``can_read`` and redaction.

        ``fields`` given: only those (plus what the checks read) are fetched, and the result is
        a *match*, not a disclosure: no ``can_read``/redaction (they need the resource), so such
        results name candidates (ids, index values) that are disclosed only through a whole-
        document read (``fetch_visible``) later. ``limit`` counts results after the checks.
        ``flush=False`` for a lookup inside a write hook that reads pending inserts itself
        (``pending``) instead of flushing the Bundle's batch.

        ``window=(lo, hi)``: only the matches in buckets ``[lo, hi)`` of a query ``window_for``
        accepted; ``longer``: only a prefix search's matches with a longer value than the prefix
        (``keys.Window``). Everything else about the read is the same.
        """
        if flush or self._replacing(resource_type):
            # A write hook's lookup (flush=False) reads pending inserts through ``pending`` but
            # has always seen new versions of existing ids in the collection: flush when one of
            # this type is pending, so its answer is the one it was before replacements waited.
            self.flush_writes()
        db_part, access_check = self.security.access_parts(resource_type)
        all_checks = [*checks, access_check] if access_check else list(checks)
        query, key_checks = self._driven(resource_type, flt, db_part, include_deleted)
        all_checks += key_checks
        if window is not None or longer:
            driver = window_of(windowed_fields(resource_type), query)
            if driver is None:
                raise ValueError(f"not a windowed query: {query!r}")
            if longer:
                query = driver.longer_query()
            else:
                assert window is not None
                query = driver.query(*window, elem_match=self.store.elem_match_ranges)
                all_checks.append(driver.check(*window))
        if self.store.elem_match_ranges:
            query = elem_match(query)
        projection = (
            None if fields is None else residual.project(dict.fromkeys(fields, 1), all_checks)
        )
        cursor = self.store.resources(resource_type).find(query, projection, session=self.session)
        if walks_live(query):
            cursor = cursor.hint(WALK_INDEX)
        if sort:
            cursor = cursor.sort(list(sort))
        if limit and not all_checks:
            cursor = cursor.limit(limit)
        sent = 0
        for doc in cursor:
            if not all(residual.matches(c, doc) for c in all_checks):
                continue
            if fields is None:
                resource = doc.get("resource")
                shown = (
                    None
                    if resource is None
                    else self._disclose(resource_type, resource, doc.get("acl"))
                )
                if shown is None:
                    continue
                doc["resource"] = shown
            yield doc
            sent += 1
            if limit and sent >= limit:
                return

    def _driven(
        self, resource_type: str, flt: Doc, db_part: Doc, include_deleted: bool
    ) -> tuple[Doc, list[Doc]]:
        """The find's query, and what to re-check on its documents (``keys.drive``)."""
        base: list[Doc] = [] if include_deleted else [{"deleted": False}]
        parts, checks = drive(key_layout(resource_type), [flt, db_part])
        return and_merge([*base, *parts]), checks

    def window_for(self, resource_type: str, flt: Doc) -> Window | None:
        """The window driver of ``flt`` as this request's ``find_visible`` would run it (its
        access filter included), or None when windows cannot serve it (``keys.window_of``)."""
        db_part, _ = self.security.access_parts(resource_type)
        query, checks = self._driven(resource_type, flt, db_part, False)
        return None if checks else window_of(windowed_fields(resource_type), query)

    def fetch_visible(
        self, keys: Sequence[str], read: Mapping[str, Doc] | None = None
    ) -> list[tuple[str, Doc]]:
        """Whole current documents for ``Type/id`` keys, in order, that this request may see
        (one ``find_visible`` per type; unknown types, missing and invisible keys left out).

        ``read``: documents of some keys this request's own ``find_visible`` just matched
        (with ``resource`` and ``acl``); they get the same outgoing check instead of a read."""
        by_type: dict[str, list[str]] = {}
        found: dict[str, Doc] = {}
        for k in keys:
            t, _, i = k.partition("/")
            doc = None if read is None else read.get(k)
            if doc is not None and doc.get("resource") is not None:
                shown = self._disclose(t, doc["resource"], doc.get("acl"))
                if shown is not None:
                    found[k] = {**doc, "resource": shown}
                continue
            by_type.setdefault(t, []).append(i)
        for t, ids in by_type.items():
            if not is_resource_type(t):
                continue
            for doc in self.find_visible(t, {"_id": {"$in": ids}}):
                found[f"{t}/{doc['_id']}"] = doc
        return [(k.split("/", 1)[0], found[k]) for k in keys if k in found]

    @property
    def memo(self) -> dict[str, Any]:
        """Write-time facts (a patient's owning clinics) memoised for this request's transaction:
        the access hook asks the same question for every resource a case write touches (the
        request, its Task versions, the eligibility records, each Provenance). Entries of a
        resource are dropped when the repository writes that resource, and all of them when a
        transaction is retried."""
        return self._memo

    def pending(self, resource_type: str) -> list[Doc]:
        """Current documents of ``resource_type`` a transaction Bundle wrote but has not
        flushed yet (``write_batch`` holds inserts and replacements back): the one public view
        of them, for write hooks that must see earlier entries without forcing a flush per entry.
        """
        if not self._write_batch:
            return []
        batch = self._write_batch[-1]
        return [
            *batch.inserts.get(resource_type, []),
            *(d for _, d in batch.replaces.get(resource_type, [])),
        ]

    def _replacing(self, resource_type: str) -> bool:
        return bool(self._write_batch and self._write_batch[-1].replaces.get(resource_type))

    def prepare(self, resource_types: Iterable[str]) -> None:
        """Create the collections (and indexes) of ``resource_types`` now, outside any
        transaction: created lazily by the first write inside one, they cost a WriteConflict
        and a re-run of the whole batch on SecantusDB (measured with ``consilium import``)."""
        for name in resource_types:
            if is_resource_type(name):
                self.store.ensure_indexes(name)

    def prefetch(self, resource_type: str, ids: Sequence[str]) -> None:
        """Read the current documents of ``ids`` with one query into this transaction's cache,
        so the ``update``s (``current``) that follow cost no round trip each (an import batch,
        a Bundle of PUTs). Outside a transaction it does nothing (nothing would be cached)."""
        if self.session is None:
            return
        wanted = sorted({i for i in ids if f"{resource_type}/{i}" not in self._currents})
        if not wanted:
            return
        cursor = self.store.resources(resource_type).find(
            {"_id": {"$in": wanted}}, {"idx": 0, "ks": 0, "kw": 0}, session=self.session
        )
        found = {d["_id"]: d for d in cursor}
        for i in wanted:
            self._currents[f"{resource_type}/{i}"] = found.get(i)

    def unrestricted(self) -> Repository:
        """This repository's session and pending writes, read on the server's own account.

        For reads whose answer is not disclosed as resources: the policy's own facts, integrity
        checks, the member's utilisation count of ``$eligibility``.
        """
        repo = Repository(self.store, self.hooks, session=self.session)
        repo._post_commit = self._post_commit
        repo._write_batch = self._write_batch
        repo._memo = self._memo
        repo._currents = self._currents
        return repo

    # ------------------------------------------------------------------------------------ reads
    def current(self, resource_type: str, rid: str) -> Stored | None:
        """The current document of ``resource_type/rid`` (deleted ones too), unguarded.

        Inside a transaction the answer is cached for the transaction (snapshot reads cannot
        change but by our own writes, and every write of ours updates the cache in
        ``_store_version``), so it needs no flush of the write batch: an id the batch wrote is
        in the cache, any other id cannot be pending."""
        if self.session is None:
            self.flush_writes()
            doc = self.store.resources(resource_type).find_one({"_id": rid}, {"idx": 0})
            return Stored.from_current(resource_type, doc) if doc else None
        key = f"{resource_type}/{rid}"
        if key not in self._currents:
            self._currents[key] = self.store.resources(resource_type).find_one(
                {"_id": rid}, {"idx": 0}, session=self.session
            )
        doc = self._currents[key]
        return Stored.from_current(resource_type, doc) if doc else None

    def read(self, resource_type: str, rid: str, *, cache: ReadCache | None = None) -> Stored:
        """``cache``: the stored version may come from the read cache (outside transactions);
        the policy check below runs either way."""
        if cache is not None and self.session is None:
            stored = cache.load(resource_type, rid, 0, lambda: self.current(resource_type, rid))
        else:
            stored = self.current(resource_type, rid)
        if stored is None:
            self.authorize("read", resource_type)
            raise not_found(f"{resource_type}/{rid} is not known")
        stored = self._guard("read", stored)
        if stored.deleted:
            err = gone(f"{resource_type}/{rid} was deleted")
            err.headers["ETag"] = stored.etag
            raise err
        return stored

    def vread(
        self, resource_type: str, rid: str, vid: int, *, cache: ReadCache | None = None
    ) -> Stored:
        """``cache``: versions are immutable, so any cached copy is the stored one."""

        def fetch() -> Stored | None:
            self.flush_writes()
            doc = self.store.history.find_one(
                {"_id": f"{resource_type}/{rid}/{vid}"}, session=self.session
            )
            return None if doc is None else Stored.from_history(doc)

        found = (
            cache.load(resource_type, rid, vid, fetch)
            if cache is not None and self.session is None
            else fetch()
        )
        if found is None:
            self.authorize("vread", resource_type)
            raise not_found(f"{resource_type}/{rid} has no version {vid}")
        stored = self._guard("vread", found)
        if stored.deleted:
            err = gone(f"version {vid} of {resource_type}/{rid} is a deletion")
            err.headers["ETag"] = stored.etag
            raise err
        return stored

    def history(
        self,
        *,
        resource_type: str | None = None,
        rid: str | None = None,
        since: datetime | None = None,
        at_or_before: datetime | None = None,
        after_key: tuple[datetime, str] | None = None,
        limit: int = 20,
    ) -> Iterator[Stored]:
        """Versions newest first; ``after_key`` = (ts, _id) of the last entry already returned."""
        self.flush_writes()
        query: Doc = {}
        if resource_type is not None:
            query["type"] = resource_type
        if rid is not None:
            query["rid"] = rid
        ts: Doc = {}
        if since is not None:
            ts["$gte"] = since
        if at_or_before is not None:
            ts["$lte"] = at_or_before
        if ts:
            query["ts"] = ts
        if after_key is not None:
            kts, kid = after_key
            query = {
                "$and": [query, {"$or": [{"ts": {"$lt": kts}}, {"ts": kts, "_id": {"$lt": kid}}]}]
            }
        sort = [("ts", DESCENDING), ("_id", DESCENDING)]
        if not self.security.enforcing:
            cursor = self.store.history.find(query, session=self.session).sort(sort).limit(limit)
            for doc in cursor:
                yield Stored.from_history(doc)
            return
        # With a policy: narrow the query on the stored acl where the type is known, then check
        # every version (scope restrictions, redaction) and skip what the principal may not see.
        interaction = (
            "history-instance" if rid else "history-type" if resource_type else "history-system"
        )
        if resource_type is not None:
            self.authorize(interaction, resource_type)
            narrow = self.security.history_filter(resource_type)
            if narrow:
                query = {"$and": [query, narrow]}
        sent = 0
        for doc in self.store.history.find(query, session=self.session).sort(sort):
            stored = Stored.from_history(doc)
            try:
                visible = self._guard("vread", stored)
            except FhirError:
                continue
            yield visible
            sent += 1
            if sent >= limit:
                return

    def history_key(self, stored: Stored) -> tuple[datetime, str]:
        return stored.last_updated, f"{stored.resource_type}/{stored.id}/{stored.version_id}"

    # ----------------------------------------------------------------------------------- writes
    def create(self, resource_type: str, resource: Any, *, rid: str | None = None) -> Stored:
        """Create with a server-assigned id (any id in the body is ignored, as http.html says)."""
        self._validate(resource, resource_type)
        new_id = rid or str(uuid.uuid4())
        body = dict(resource)
        body["id"] = new_id
        return self._write(
            lambda repo: repo._store_version(resource_type, new_id, body, None, "create")
        )

    def update(
        self,
        resource_type: str,
        rid: str,
        resource: Any,
        *,
        if_match: int | None = None,
        validated: bool = False,
    ) -> tuple[Stored, bool]:
        """Update or create-with-client-id; returns (stored, created).

        ``validated``: the caller already ran ``validate_resource`` on this very body (the bulk
        import validates every line before it opens a batch's transaction, so that a bad line
        is reported without aborting one)."""
        if not validated:
            self._validate(resource, resource_type)
        if resource.get("id") != rid:
            raise FhirError(
                400,
                "invalid",
                f"the body's id ({resource.get('id')!r}) must equal the id in the URL ({rid!r})",
                expression=[f"{resource_type}.id"],
            )

        def work(repo: Repository) -> tuple[Stored, bool]:
            current = repo.current(resource_type, rid)
            if if_match is not None and (current is None or current.version_id != if_match):
                have = "none" if current is None else current.version_id
                raise precondition_failed(
                    f"If-Match expects version {if_match} of {resource_type}/{rid}, current is {have}"
                )
            if (
                current is not None
                and not current.deleted
                and current.resource is not None
                and (
                    same_content(current.resource, resource)
                    or same_content(
                        self.hooks.without_derived(resource_type, current.resource), resource
                    )
                )
            ):
                # Identical, also when the body lacks only what the server derived from it
                # (Hooks.register_derived): the client sent what it sent before.
                return current, False
            created = current is None or current.deleted
            stored = repo._store_version(resource_type, rid, dict(resource), current, "update")
            return stored, created

        return self._write(work)

    def delete(self, resource_type: str, rid: str, *, if_match: int | None = None) -> Stored:
        def work(repo: Repository) -> Stored:
            current = repo.current(resource_type, rid)
            if current is None:
                raise not_found(f"{resource_type}/{rid} is not known")
            if if_match is not None and current.version_id != if_match:
                raise precondition_failed(
                    f"If-Match expects version {if_match} of {resource_type}/{rid}, current is {current.version_id}"
                )
            if current.deleted:
                return current
            return repo._store_version(resource_type, rid, None, current, "delete")

        return self._write(work)

    def patch(
        self,
        resource_type: str,
        rid: str,
        apply: Callable[[dict[str, Any]], Any],
        *,
        if_match: int | None = None,
    ) -> Stored:
        """Apply ``apply(current) -> patched copy`` (JSON Patch, FHIRPath Patch) in one transaction.

        The result is validated like an update, but failures are 422 (http.html: a patch whose
        result is invalid is unprocessable); ``apply`` must not mutate its argument.
        """

        def work(repo: Repository) -> Stored:
            current = repo.read(resource_type, rid)
            if if_match is not None and current.version_id != if_match:
                raise precondition_failed(
                    f"If-Match expects version {if_match} of {resource_type}/{rid}, current is {current.version_id}"
                )
            assert current.resource is not None
            result = apply(current.resource)
            if (
                not isinstance(result, dict)
                or result.get("resourceType") != resource_type
                or result.get("id") != rid
            ):
                raise FhirError(422, "processing", "a patch must not change resourceType or id")
            try:
                validate_resource(result, resource_type)
            except ResourceInvalid as exc:
                err = invalid(exc)
                err.status = 422
                raise err from exc
            if same_content(current.resource, result):
                return current
            return repo._store_version(resource_type, rid, result, current, "patch")

        return self._write(work)

    # ------------------------------------------------------------------------ bulk maintenance
    def load_documents(
        self, resource_type: str, versions: Sequence[Documents], *, history: bool = True
    ) -> None:
        """Insert pre-built first versions in bulk, without hooks, policy or transaction (the
        audit materializer, benchmark loads); see ``server.storage.load_documents``."""
        load_documents(self.store, resource_type, versions, history=history, session=self.session)

    def reindex(self, resource_type: str) -> int:
        """Rebuild ``idx`` of every live current version; see ``server.storage.reindex``."""
        return reindex(self.store, resource_type, session=self.session)

    def drop_search_indexes_except(self, resource_type: str, keep: set[str]) -> None:
        """Drop the ``idx.*`` indexes of parameters that no longer exist (64-index budget)."""
        drop_search_indexes_except(self.store, resource_type, keep)

    # --------------------------------------------------------------------------------- internals
    def _validate(self, resource: Any, resource_type: str) -> None:
        try:
            validate_resource(resource, resource_type)
        except ResourceInvalid as exc:
            raise invalid(exc) from exc

    def _store_version(
        self,
        resource_type: str,
        rid: str,
        resource: dict[str, Any] | None,
        current: Stored | None,
        interaction: str,
    ) -> Stored:
        event = WriteEvent(
            interaction,
            resource_type,
            rid,
            resource,
            current.resource if current else None,
            self,
            self.session,
            previous_acl=(current.acl or {}) if current is not None else None,
        )
        before = _fingerprint(resource)
        self.hooks.run(HookPoint.PRE_WRITE, event)
        resource = event.resource
        if resource is not None and _fingerprint(resource) != before:
            # A hook changed the resource (server/hooks.py, PRE_WRITE): validate it again.
            self._validate(resource, resource_type)
        vid = (current.version_id if current else 0) + 1
        ts = now()
        if resource is not None:
            meta = dict(resource.get("meta") or {})
            meta["versionId"] = str(vid)
            meta["lastUpdated"] = fhir_instant(ts)
            resource["meta"] = meta
            resource["id"] = rid
        docs = build_documents(
            resource_type,
            rid,
            vid,
            ts,
            resource,
            interaction=interaction,
            idx=extract_index(resource_type, resource) if resource is not None else {},
            # Ownership/security data the policy layer filters on (e.g. the submitting
            # organization); kept from the previous version unless a hook replaces it.
            acl=event.acl if event.acl is not None else (event.previous_acl or {}),
            refs=event.refs,  # local reference targets, kept by server/integrity.py
        )
        doc, version = docs.current, docs.history
        coll = self.store.resources(resource_type)
        try:
            if self._write_batch:  # a bundle: written by flush_writes, one command per collection
                batch = self._write_batch[-1]
                if current is None:
                    batch.inserts.setdefault(resource_type, []).append(doc)
                else:
                    batch.replaces.setdefault(resource_type, []).append((current.version_id, doc))
                batch.inserts.setdefault(HISTORY, []).append(version)
            else:
                if current is None:
                    coll.insert_one(doc, session=self.session)
                else:
                    res = coll.replace_one(
                        {"_id": rid, "vid": current.version_id}, doc, session=self.session
                    )
                    if res.matched_count != 1:
                        raise conflict(f"{resource_type}/{rid} was modified concurrently; retry")
                self.store.history.insert_one(version, session=self.session)
        except DuplicateKeyError as exc:
            raise conflict(f"{resource_type}/{rid} was created concurrently; retry") from exc
        if self.session is not None:
            self._currents[f"{resource_type}/{rid}"] = doc
        event.version_id = vid
        self._memo.pop(f"{resource_type}/{rid}", None)
        self._memo.pop(f"exists:{resource_type}/{rid}", None)
        self._post_commit.append(event)
        return Stored(
            resource_type, rid, vid, ts, doc["deleted"], resource, version["method"], doc["acl"]
        )
