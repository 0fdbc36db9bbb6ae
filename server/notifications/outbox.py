"""Subscription writes (PRE_WRITE) and matching in the writing transaction (PRE_COMMIT).

Why in the transaction: the outbox event of a write commits with the write or not at all, so a
committed final report always has its notification event and a rolled-back one never has.

The matcher is the search engine's own: a Subscription's criteria are parsed by
``server.search.params`` and planned by ``server.search.query`` exactly like a search, and the
plan (database filter + residual re-checks) is evaluated on the written version's index values
(``server.search.index.extract_index``) by ``server.search.residual.matches``, the function the
search executor uses to re-check candidates. Plans with operators ``residual`` cannot decide
exactly as MongoDB does (regex, non-string comparisons) run as the search itself, restricted to
the written ``_id``, through the repository read primitive inside the transaction. Chained
criteria are planned at write time through the same resolvers a search uses.

Only versions the subscription's owner may read (``can_read`` of the access policy with the
owner as principal and the version's stored ``acl``) become events, so a subscription never
learns that something it cannot see happened; what the notification then carries is decided at
delivery by a read as the owner (docs/notifications.md).
"""

from __future__ import annotations

import contextvars
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from auth.principal import Principal
from server.errors import FhirError
from server.hooks import WriteEvent
from server.notifications import spec as spec_mod
from server.notifications import topics
from server.notifications.endpoint import EndpointPolicy, UnsafeEndpoint, check_endpoint
from server.notifications.store import EPOCH, GENERATION, NotifyStore
from server.notifications.topics import Topic
from server.repository import Repository
from server.search import query as qb
from server.search import residual
from server.search.execute import plan_for
from server.search.index import extract_index
from server.search.model import SearchRequest
from server.timeutil import now

Doc = dict[str, Any]
# Set while the server itself writes a Subscription (the worker putting it in ``error``).
_SERVER_WRITE: contextvars.ContextVar[bool] = contextvars.ContextVar("notify_server", default=False)
MEMO_KEY = "notify:subscriptions"
DIRTY_KEY = "notify:wrote-subscription"
QUEUED_KEY = "notify:queued"
_PATH = re.compile(r"^(_id|idx\.[^.$][^$]*)$")
_STR_OPS = frozenset({"$gt", "$gte", "$lt", "$lte", "$ne"})


@contextmanager
def server_write() -> Iterator[None]:
    token = _SERVER_WRITE.set(True)
    try:
        yield
    finally:
        _SERVER_WRITE.reset(token)


# ------------------------------------------------------------------------------ the matcher
def _decidable_cond(cond: Any) -> bool:
    if cond is None or isinstance(cond, str | bool):
        return True
    if not isinstance(cond, dict) or not cond:
        return False
    for op, arg in cond.items():
        if op in ("$in", "$nin"):
            if not isinstance(arg, list) or not all(isinstance(v, str) for v in arg):
                return False
        elif op == "$exists":
            if not isinstance(arg, bool) or len(cond) > 1:
                return False
        elif op in _STR_OPS:
            if not isinstance(arg, str):
                return False
        elif op == "$not":
            if len(cond) > 1 or not _decidable_cond(arg):
                return False
        else:
            return False
    return True


def decidable(flt: Doc) -> bool:
    """Whether ``residual.matches`` decides ``flt`` on one document's ``idx`` as the search does.

    Two-sided ranges are decided element-wise, which is what the search means (the executor
    re-checks them element-wise: ``query.needs_recheck``)."""
    for key, cond in flt.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(cond, list) or not all(
                isinstance(f, dict) and decidable(f) for f in cond
            ):
                return False
        elif not _PATH.match(key) or not _decidable_cond(cond):
            return False
    return True


@dataclass
class Entry:
    """One active (or erroring: events keep being counted) subscription, ready to match."""

    id: str
    status: str
    resource_type: str
    request: SearchRequest | None  # None for the topic form
    plan: qb.Plan | None  # None: chained criteria, planned per write (or the topic form)
    owner: Doc | None
    end: datetime | None
    topic: Topic | None = None
    filters: dict[str, list[qb.Plan]] = field(default_factory=dict)


def plan_of(entry: Entry, repo: Repository) -> qb.Plan:
    if entry.plan is not None:
        return entry.plan
    assert entry.request is not None
    return plan_for(repo.unrestricted(), entry.request, entry.resource_type)


# Plans are immutable once built (cached subscriptions and topics): whether the residual matcher
# decides one is computed once per plan object, not once per write.
_DECIDABLE: dict[int, tuple[qb.Plan, bool]] = {}


def _python_decides(plan: qb.Plan) -> bool:
    known = _DECIDABLE.get(id(plan))
    if known is not None and known[0] is plan:
        return known[1]
    answer = all(decidable(c) for c in [plan.filter, *plan.residual])
    if len(_DECIDABLE) > 100_000:
        _DECIDABLE.clear()
    _DECIDABLE[id(plan)] = (plan, answer)  # the plan is kept alive, so its id stays its own
    return answer


def plan_matches(resource_type: str, plan: qb.Plan, doc: Doc, repo: Repository) -> bool:
    """Does the version ``doc`` (``_id`` and ``idx``) match ``plan``? Decided by the search's
    residual matcher where it is exact, else by the search itself restricted to the ``_id``
    (then ``doc`` must be the current version: it is, for the written version)."""
    if _python_decides(plan):
        return residual.matches(plan.filter, doc) and all(
            residual.matches(c, doc) for c in plan.residual
        )
    flt = qb.and_merge([{"_id": doc["_id"]}, plan.filter])
    found = repo.unrestricted().find_visible(
        resource_type, flt, fields=["_id"], checks=plan.residual, limit=1
    )
    return next(iter(found), None) is not None


def criteria_match(entry: Entry, doc: Doc, repo: Repository) -> bool:
    """Does the written version ``doc`` match the entry's classic search?"""
    return plan_matches(entry.resource_type, plan_of(entry, repo), doc, repo)


def topic_match(entry: Entry, event: WriteEvent, doc: Doc, repo: Repository) -> bool:
    """Does the write fire the entry's topic (a trigger of its type) and pass its filters?"""
    assert entry.topic is not None
    rtype = event.resource_type
    interaction = "create" if event.previous is None else "update"
    previous: Doc | None = None
    for trigger in entry.topic.triggers:
        if trigger.resource != rtype or interaction not in trigger.interactions:
            continue
        current_ok = trigger.current is None or plan_matches(rtype, trigger.current, doc, repo)
        if trigger.previous is None:
            fired = current_ok
        else:
            if event.previous is None:
                previous_ok = trigger.create_passes
            else:
                previous = previous or _previous_doc(event)
                # The previous version is not the stored one: Python decides its criteria (the
                # shipped topics' are decidable: tests/server/notifications/test_topics.py).
                previous_ok = all(
                    residual.matches(c, previous)
                    for c in [trigger.previous.filter, *trigger.previous.residual]
                )
            fired = (
                (current_ok and previous_ok) if trigger.require_both else current_ok or previous_ok
            )
        if fired and trigger.changed and event.previous is not None:
            previous = previous or _previous_doc(event)
            fired = any(
                sorted(map(str, doc["idx"].get(p) or []))
                != sorted(map(str, previous["idx"].get(p) or []))
                for p in trigger.changed
            )
        if fired:
            filters = entry.filters.get(rtype, [])
            return all(plan_matches(rtype, f, doc, repo) for f in filters)
    return False


def _previous_doc(event: WriteEvent) -> Doc:
    assert event.previous is not None
    return {"_id": event.resource_id, "idx": extract_index(event.resource_type, event.previous)}


def owner_principal(owner: Doc) -> Principal:
    """The owner as the principal its notifications are read by (a fresh one per use, so the
    policy's per-principal caches, e.g. an insurer's members, never go stale)."""
    return Principal.build(
        str(owner.get("client_id", "")),
        tuple(owner.get("scopes") or ()),
        subject=str(owner.get("subject", "")),
        user=owner.get("user"),
        patient=owner.get("patient"),
        organization=owner.get("organization"),
        role=owner.get("role"),
        practitioner_role=owner.get("practitioner_role"),
        admin=bool(owner.get("admin")),
    )


def owner_record(p: Principal | None) -> Doc | None:
    if p is None:
        return None
    return {
        "client_id": p.client_id,
        "scopes": list(p.scopes),
        "subject": p.subject,
        "user": p.user,
        "patient": p.patient,
        "organization": p.organization,
        "role": p.role,
        "practitioner_role": p.practitioner_role,
        "admin": p.admin,
    }


# ---------------------------------------------------------------------------------- the cache
class SubscriptionCache:
    """Active subscriptions per resource type, reloaded when ``_notify_meta`` says a
    Subscription was written (by any process): one ``find_one`` per transaction that writes a
    resource, the full reload only after a Subscription write."""

    def __init__(self, notify: NotifyStore) -> None:
        self.notify = notify
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._by_type: dict[str, list[Entry]] = {}

    def types(self) -> frozenset[str]:
        return frozenset(self._by_type)

    def current(self, session: Any, *, keep: bool = True) -> dict[str, list[Entry]]:
        """The live subscriptions as ``session`` sees them. ``keep=False`` for a transaction
        that wrote a Subscription itself: what it sees may still roll back, so it must not
        become the cache of a generation number a committed write may take later."""
        meta = self.notify.meta.find_one({"_id": GENERATION}, session=session)
        generation = int((meta or {}).get("n", 0))
        if generation == self._generation and keep:
            return self._by_type
        by_type: dict[str, list[Entry]] = {}
        live = {"status": {"$in": ["active", "error", "requested"]}}
        for doc in self.notify.subs.find(live, session=session):
            entry = _entry(doc)
            if entry is None:
                continue
            if entry.topic is None:
                by_type.setdefault(entry.resource_type, []).append(entry)
            for rtype in {t.resource for t in entry.topic.triggers} if entry.topic else ():
                by_type.setdefault(rtype, []).append(entry)
        with self._lock:
            # A transaction may read an older generation than another one already loaded; keep
            # the cache of the newest (generations only grow).
            if keep and (self._generation is None or generation >= self._generation):
                self._generation, self._by_type = generation, by_type
        return by_type


def _entry(doc: Doc) -> Entry | None:
    end = doc.get("end")
    if doc.get("topic"):
        topic = topics.topics().get(doc["topic"])
        if topic is None:
            return None
        filters: dict[str, list[qb.Plan]] = {}
        for rtype, query in doc.get("filters") or []:
            filters.setdefault(rtype, []).append(topics.plan(rtype, query)[1])
        return Entry(
            doc["_id"], doc["status"], "", None, None, doc.get("owner"), end, topic, filters
        )
    try:
        rtype, _, req = spec_mod.parse_criteria(f"{doc['type']}?{doc.get('query', '')}")
    except (FhirError, KeyError):
        return None  # a definition that no longer parses (a parameter was removed) is skipped
    plan = None
    if not any(c.path for c in req.clauses):
        plan = qb.build(rtype, req.clauses, _no_chain, _no_chain_ref)
    return Entry(doc["_id"], doc["status"], rtype, req, plan, doc.get("owner"), end)


def _no_chain(_t: str, _f: Doc) -> list[str]:
    raise AssertionError("plans without chains resolve nothing")


def _no_chain_ref(_t: str, _f: Doc, _c: str) -> list[str]:
    raise AssertionError("plans without chains resolve nothing")


# ---------------------------------------------------------------------------------- the hooks
Policy = Callable[[], Any]  # the app's access policy, looked up late (installed after us)


class Notifications:
    """The hooks and the cache of one app (one database)."""

    def __init__(self, notify: NotifyStore, endpoints: EndpointPolicy, policy: Policy) -> None:
        self.notify = notify
        self.endpoints = endpoints
        self.policy = policy
        self.cache = SubscriptionCache(notify)
        self.wake: Callable[[], None] = lambda: None

    # ------------------------------------------------------------- Subscription writes
    def on_write(self, event: WriteEvent) -> None:
        """PRE_WRITE for Subscription: validate (422), set the status, keep the secret and the
        owner server-side, and record the state document, all in the writing transaction."""
        if event.resource_type != "Subscription":
            return
        event.repository.memo[DIRTY_KEY] = True
        event.repository.memo.pop(MEMO_KEY, None)
        session = event.session
        sid = event.resource_id
        if event.resource is None:
            self.notify.subs.update_one(
                {"_id": sid}, {"$set": {"status": "off", "deleted": True}}, session=session
            )
            self._bump(session)
            return
        resource = event.resource
        spec, _ = spec_mod.parse(resource)
        try:
            check_endpoint(spec.endpoint, self.endpoints)
        except UnsafeEndpoint as exc:
            raise spec_mod.unprocessable(f"unsafe endpoint: {exc}", "channel.endpoint") from exc
        previous = self.notify.subs.find_one({"_id": sid}, session=session)
        status = self._status(spec.status, previous, resource)
        # The Backport IG: a topic-based subscription is ``requested`` until its handshake
        # succeeded (the worker sends it first, then sets ``active``), unless it already is.
        if (
            spec.topic is not None
            and status == "active"
            and not _SERVER_WRITE.get()
            and (previous or {}).get("status") != "active"
        ):
            status = "requested"
        principal = event.repository.principal
        trusted = principal is None or principal.role is None
        provisioned = spec_mod.owner_of(resource)
        if provisioned is not None and not trusted:
            raise spec_mod.unprocessable(
                "only a trusted integration may provision a subscription for a party", "extension"
            )
        # A trusted writer may provision it for a party; a bound writer is always the owner
        # (the policy lets only the owning party write it, ``acl.subscriber``), so the owner
        # record is that party's latest writer: a second client of the party takes over a
        # subscription whose client was revoked by writing it again. A trusted writer without
        # the extension keeps the recorded owner.
        owner: Doc | None
        if provisioned is not None:
            owner = provisioned
        elif not trusted:
            owner = owner_record(principal)
        else:
            owner = (previous or {}).get("owner") or owner_record(principal)
        secret = spec_mod.secret_of(resource)
        stored = spec_mod.without_secret(resource)
        stored["status"] = status
        if status in ("active", "requested"):
            stored.pop("error", None)
        event.resource = stored
        fields: Doc = {
            "status": status,
            "type": spec.resource_type,
            "query": spec.query,
            "endpoint": spec.endpoint,
            "payload": spec.payload,
            "mime": spec.mime,
            "headers": [list(h) for h in spec.headers],
            "end": _instant(spec.end),
            "owner": owner,
            "deleted": False,
            "topic": spec.topic,
            "filters": [list(f) for f in spec.filters],
            "heartbeat": spec.heartbeat,
        }
        if secret is not None:
            fields["secret"] = secret
        self.notify.subs.update_one(
            {"_id": sid},
            {"$set": fields, "$setOnInsert": {"events": 0}},
            upsert=True,
            session=session,
        )
        fresh: Doc = {"lease_until": EPOCH, "lease_owner": None}
        was = (previous or {}).get("status")
        if status == "requested" and was != "requested":
            event.repository.memo[QUEUED_KEY] = True
            self.notify.outbox.insert_one(
                {
                    "_id": f"{sid}:handshake:{uuid.uuid4().hex}",
                    "sub": sid,
                    "n": 0,  # before every event: deliveries go in event-number order
                    "kind": "handshake",
                    "ts": now(),
                    "state": "pending",
                    "attempts": 0,
                },
                session=session,
            )
        if status in ("active", "requested") and was not in ("active", "requested"):
            event.repository.memo[QUEUED_KEY] = True  # a revived subscription has a backlog
            # (Re)activation: a subscription back from ``error`` gets its backlog delivered now.
            update: Doc = {
                "$set": {"failures": 0, "next_at": EPOCH, "last_error": None},
                "$setOnInsert": fresh,
            }
        else:
            update = {"$setOnInsert": {**fresh, "failures": 0, "next_at": EPOCH}}
        self.notify.delivery.update_one({"_id": sid}, update, upsert=True, session=session)
        self._bump(session)

    @staticmethod
    def _status(asked: str, previous: Doc | None, resource: Doc) -> str:
        """R4 (subscription.html): the client asks with ``requested``; this server has no
        handshake for classic rest-hooks, so a valid subscription becomes ``active`` at once.
        ``off`` stops it; ``error`` is the server's to set (a client may leave it standing)."""
        if _SERVER_WRITE.get():
            return asked
        if asked in ("requested", "active"):
            return "active"
        if asked == "off":
            return "off"
        if asked == "error" and previous is not None and previous.get("status") == "error":
            return "error"
        raise spec_mod.unprocessable(
            "status error is set by the server; ask with requested (or off)", "status"
        )

    def _bump(self, session: Any) -> None:
        self.notify.meta.update_one(
            {"_id": GENERATION}, {"$inc": {"n": 1}}, upsert=True, session=session
        )

    # --------------------------------------------------------------------- matching
    def on_commit(self, event: WriteEvent) -> None:
        """PRE_COMMIT: an outbox event per matching subscription of the written version."""
        if event.resource is None or event.version_id is None:
            return
        repo = event.repository
        memo = repo.memo
        by_type = memo.get(MEMO_KEY)
        if by_type is None:
            keep = not memo.get(DIRTY_KEY)
            by_type = memo[MEMO_KEY] = self.cache.current(event.session, keep=keep)
        entries = by_type.get(event.resource_type)
        if not entries:
            return
        doc: Doc = {
            "_id": event.resource_id,
            "idx": extract_index(event.resource_type, event.resource),
        }
        ts = now()
        for entry in entries:
            if entry.end is not None and entry.end <= ts:
                continue
            if entry.topic is not None:
                if not topic_match(entry, event, doc, repo):
                    continue
            elif not criteria_match(entry, doc, repo):
                continue
            if not self._visible(entry, event):
                continue
            self._append(entry, event, ts)

    def _visible(self, entry: Entry, event: WriteEvent) -> bool:
        policy = self.policy()
        if policy is None or entry.owner is None or event.resource is None:
            return True
        acl = event.acl if event.acl is not None else (event.previous_acl or {})
        principal = owner_principal(entry.owner)
        return bool(policy.can_read(principal, event.resource_type, event.resource, acl))

    def _append(self, entry: Entry, event: WriteEvent, ts: datetime) -> None:
        event.repository.memo[QUEUED_KEY] = True
        counted = self.notify.subs.find_one_and_update(
            {"_id": entry.id},
            {"$inc": {"events": 1}},
            projection={"events": 1},
            return_document=ReturnDocument.AFTER,
            session=event.session,
        )
        if counted is None:
            return
        n = int(counted["events"])
        self.notify.outbox.insert_one(
            {
                "_id": f"{entry.id}:{n}",
                "sub": entry.id,
                "n": n,
                "type": event.resource_type,
                "rid": event.resource_id,
                "vid": event.version_id,
                "interaction": event.interaction,
                "ts": ts,
                "state": "pending",
                "attempts": 0,
            },
            session=event.session,
        )

    def after_commit(self, event: WriteEvent) -> None:
        """POST_COMMIT: wake this process's worker when the transaction queued something
        (other processes find it by polling). Only then: a wake-up per write would have the
        worker query the outbox after every write of a subscribed type, matched or not."""
        memo = event.repository.memo
        if memo.pop(QUEUED_KEY, False):
            self.wake()


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
