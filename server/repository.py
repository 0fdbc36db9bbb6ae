"""The one write path: versioning, optimistic locking, index extraction, history, hooks.

Every create/update/delete, whether it comes from REST, a bundle or a hook, goes through a
``Repository``. A repository is cheap and built per request (it carries the caller's principal
for the policy layer); a repository bound to a session joins that session's transaction, which is
how a transaction Bundle writes all its entries atomically.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from pymongo import DESCENDING
from pymongo.client_session import ClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from resources.validation import ResourceInvalid, validate_resource
from server import fhirjson
from server.database import HISTORY, Doc, Store
from server.errors import FhirError, Issue, conflict, gone, not_found, precondition_failed
from server.hooks import HookPoint, Hooks, WriteEvent
from server.search.index import extract_index
from server.timeutil import fhir_instant, now

T = TypeVar("T")


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


def invalid(exc: ResourceInvalid) -> FhirError:
    issues = [
        Issue("invalid" if d else "structure", d, expression=[e] if e else [])
        for d, e in exc.issues
    ]
    return FhirError(400, "invalid", str(exc), issues=issues)


def _same_content(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
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


class Repository:
    def __init__(
        self,
        store: Store,
        hooks: Hooks,
        *,
        principal: Any = None,
        session: ClientSession | None = None,
    ) -> None:
        self.store = store
        self.hooks = hooks
        self.principal = principal
        self.session = session
        self._post_commit: list[WriteEvent] = []
        # Documents waiting for one insert_many per collection (see write_batch); shared when bound.
        self._write_batch: list[dict[str, list[Doc]]] = []

    # ----------------------------------------------------------------------------- transactions
    def bound(self, session: ClientSession | None) -> Repository:
        repo = Repository(self.store, self.hooks, principal=self.principal, session=session)
        repo._post_commit = self._post_commit
        repo._write_batch = self._write_batch
        return repo

    @contextmanager
    def write_batch(self) -> Iterator[None]:
        """Inside a transaction, collect new documents and write them with one ``insert_many``
        per collection.

        Why: a transaction Bundle of 1,000 creates otherwise pays 2,000 round trips. Only pure
        inserts (creates, history versions) wait; every read through the repository
        (``current``, ``read``, ``vread``, ``history``) flushes first, and bundle processing
        flushes before searches and integrity checks. Code that queries collections directly
        with the session mid-bundle must call ``flush_writes`` first. Pending documents are
        dropped on error (the transaction aborts anyway).
        """
        if self.session is None:
            yield
            return
        self._write_batch.append({})
        try:
            yield
            self.flush_writes()
        finally:
            self._write_batch.clear()

    def flush_writes(self) -> None:
        if not self._write_batch or not self._write_batch[-1]:
            return
        pending = self._write_batch[-1]
        self._write_batch[-1] = {}
        try:
            for name, docs in pending.items():
                coll = self.store.history if name == HISTORY else self.store.resources(name)
                coll.insert_many(docs, ordered=True, session=self.session)
        except BulkWriteError as exc:
            raise conflict("a resource was written concurrently; retry") from exc

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
            return fn(self.bound(session))

        try:
            result = self.store.transaction(attempt)
        except OperationFailure as exc:
            if exc.has_error_label("TransientTransactionError") or exc.code == 112:
                raise conflict("concurrent modification; retry the request") from exc
            raise
        self.flush_post_commit()
        return result

    def flush_post_commit(self) -> None:
        events, self._post_commit[:] = list(self._post_commit), []
        for event in events:
            self.hooks.run(HookPoint.POST_COMMIT, event)

    def transaction(self, fn: Callable[[Repository], T]) -> T:
        """Public: run ``fn(repo)`` with every write it makes in one MongoDB transaction."""
        return self._write(fn)

    # --------------------------------------------------------------------------- access policy
    def access_filter(self, resource_type: str) -> Doc:
        """A MongoDB filter ANDed into every query on ``resource_type`` for this principal.

        ``{}`` means no narrowing. The policy layer (auth) supplies it; search, _include,
        history and compartment search must all apply it, so a query can never reach documents
        the principal may not see. Returns ``{"_id": {"$in": []}}`` style filters to deny all.
        """
        policy = self.store.policy
        return policy.access_filter(self.principal, resource_type) if policy else {}

    def can_read(
        self, resource_type: str, resource: dict[str, Any], acl: dict[str, Any] | None = None
    ) -> bool:
        """Check an outgoing resource (defence in depth behind ``access_filter``)."""
        policy = self.store.policy
        return policy.can_read(self.principal, resource_type, resource, acl) if policy else True

    def authorize(self, interaction: str, resource_type: str) -> None:
        """Scope/party check of an interaction on a type (403); no-op without a policy."""
        policy = self.store.policy
        if policy is None or self.principal is None:
            return
        verdict = policy.decide(self.principal, interaction, resource_type)
        if not verdict:
            raise FhirError(
                403,
                "forbidden",
                f"{interaction} on {resource_type} refused by rule {verdict.rule}: {verdict.reason}",
            )

    def redact(self, resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
        """The view of an outgoing resource this principal gets (insurers: status only)."""
        policy = self.store.policy
        if policy is None or self.principal is None:
            return resource
        out: dict[str, Any] = policy.redact(self.principal, resource_type, resource)
        return out

    def _guard(self, interaction: str, stored: Stored) -> Stored:
        """Apply the policy to one stored version: 403 for scope, 404 when not visible."""
        policy = self.store.policy
        if policy is None or self.principal is None:
            return stored
        self.authorize(interaction, stored.resource_type)
        body = stored.resource if stored.resource is not None else {"id": stored.id}
        if not policy.can_read(self.principal, stored.resource_type, body, stored.acl or {}):
            raise not_found(f"{stored.resource_type}/{stored.id} is not known")
        if stored.resource is None:
            return stored
        return replace(stored, resource=self.redact(stored.resource_type, stored.resource))

    # ------------------------------------------------------------------------------------ reads
    def current(self, resource_type: str, rid: str) -> Stored | None:
        self.flush_writes()
        doc = self.store.resources(resource_type).find_one(
            {"_id": rid}, {"idx": 0}, session=self.session
        )
        return Stored.from_current(resource_type, doc) if doc else None

    def read(self, resource_type: str, rid: str) -> Stored:
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

    def vread(self, resource_type: str, rid: str, vid: int) -> Stored:
        self.flush_writes()
        doc = self.store.history.find_one(
            {"_id": f"{resource_type}/{rid}/{vid}"}, session=self.session
        )
        if doc is None:
            self.authorize("vread", resource_type)
            raise not_found(f"{resource_type}/{rid} has no version {vid}")
        stored = self._guard("vread", Stored.from_history(doc))
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
        policy = self.store.policy
        if policy is None or self.principal is None:
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
            narrow = policy.history_filter(self.principal, resource_type)
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
        self, resource_type: str, rid: str, resource: Any, *, if_match: int | None = None
    ) -> tuple[Stored, bool]:
        """Update or create-with-client-id; returns (stored, created)."""
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
                and _same_content(current.resource, resource)
            ):
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
            if _same_content(current.resource, result):
                return current
            return repo._store_version(resource_type, rid, result, current, "patch")

        return self._write(work)

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
        )
        self.hooks.run(HookPoint.PRE_WRITE, event)
        resource = event.resource
        if resource is not None and event.extra.get("modified"):
            self._validate(resource, resource_type)
        vid = (current.version_id if current else 0) + 1
        ts = now()
        if resource is not None:
            meta = dict(resource.get("meta") or {})
            meta["versionId"] = str(vid)
            meta["lastUpdated"] = fhir_instant(ts)
            resource["meta"] = meta
            resource["id"] = rid
        deleted = resource is None
        doc: Doc = {"_id": rid, "vid": vid, "ts": ts, "deleted": deleted, "resource": resource}
        doc["idx"] = extract_index(resource_type, resource) if resource is not None else {}
        # Ownership/security data the policy layer filters on (e.g. the submitting organization);
        # kept from the previous version unless a hook replaces it.
        doc["acl"] = event.extra.get("acl", (current.acl or {}) if current else {})
        if "refs" in event.extra:  # local reference targets, kept by server/integrity.py
            doc["refs"] = event.extra["refs"]
        coll = self.store.resources(resource_type)
        try:
            if current is None and self._write_batch:
                self._write_batch[-1].setdefault(resource_type, []).append(doc)
            elif current is None:
                coll.insert_one(doc, session=self.session)
            else:
                res = coll.replace_one(
                    {"_id": rid, "vid": current.version_id}, doc, session=self.session
                )
                if res.matched_count != 1:
                    raise conflict(f"{resource_type}/{rid} was modified concurrently; retry")
            method = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE"}[
                interaction
            ]
            version: Doc = {
                "_id": f"{resource_type}/{rid}/{vid}",
                "type": resource_type,
                "rid": rid,
                "vid": vid,
                "ts": ts,
                "method": method,
                "deleted": deleted,
                "resource": resource,
                "acl": doc["acl"],
            }
            if self._write_batch:  # a bundle: written by flush_writes, one insert_many
                self._write_batch[-1].setdefault(HISTORY, []).append(version)
            else:
                self.store.history.insert_one(version, session=self.session)
        except DuplicateKeyError as exc:
            raise conflict(f"{resource_type}/{rid} was created concurrently; retry") from exc
        event.version_id = vid
        self._post_commit.append(event)
        return Stored(resource_type, rid, vid, ts, deleted, resource, method, doc["acl"])
