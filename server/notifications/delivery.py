"""The delivery worker: at-least-once, in order per subscription, safe with several processes.

Each process runs one worker (a thread started from the app lifespan). A round lists the
subscriptions with pending outbox events and hands each to a small thread pool; a subscription
is drained by whoever *claims* it: ``find_one_and_update`` on its ``_notify_delivery`` document
sets a lease (``lease_until``, ``lease_owner``) only where the lease has expired and the next
attempt is due, so two processes never drain one subscription at once, and a crashed worker's
lease simply runs out. Inside a lease, events go out in event-number order; the first failure
stops the subscription's round and schedules the next attempt with exponential backoff, so one
dead endpoint holds one pool thread for at most the timeout and never delays another
subscription. After ``notify_max_failures`` consecutive failures the Subscription is put in
``error`` (by the server, through the repository); its events keep being counted in the
outbox and go out once the client asks for it again (status ``requested``).

An event is marked delivered after the receiver's 2xx: a crash between the two resends it with
the same event number, which receivers use to drop duplicates (at-least-once).

Revoked owners stop: before draining, the worker checks that the OAuth client recorded as the
subscription's owner still exists with the same party binding (``owner_revoked``); if not, the
Subscription goes to ``error`` and nothing more is sent on that client's authority. Delivered
events older than ``notify_retention_seconds`` are pruned in batches (``prune``); counters live
on the subscription, so ``$status`` is unaffected.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from server import fhirjson
from server.context import SecurityContext
from server.errors import FhirError
from server.notifications.bundle import notification_bundle, status_parameters
from server.notifications.endpoint import EndpointPolicy, UnsafeEndpoint, check_endpoint
from server.notifications.outbox import owner_principal, server_write
from server.notifications.store import EPOCH, NotifyStore
from server.repository import Repository
from server.timeutil import fhir_instant, now

if TYPE_CHECKING:
    from server.deps import AppState

log = logging.getLogger(__name__)
Doc = dict[str, Any]
BATCH = 50
SIGNATURE = "X-Consilium-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``: the timestamp is signed with
    the body so a captured notification cannot be replayed later under a new time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds before attempt ``failures + 1``: base·2^(failures-1), at most ``cap``."""
    return float(min(cap, base * (2 ** max(0, failures - 1))))


class Worker:
    def __init__(self, state: AppState) -> None:
        self.state = state
        s = state.settings
        # Its own client: polling and bookkeeping never take connections from requests (and
        # never appear among a request's commands).
        self._client: MongoClient[Doc] = MongoClient(
            state.mongodb_uri or s.mongodb_uri,
            tz_aware=True,
            uuidRepresentation="standard",
            maxPoolSize=s.notify_concurrency + 4,
        )
        self.notify = NotifyStore(self._client.get_database(state.store.db.name))
        self.endpoints = EndpointPolicy.from_settings(s.notify_allow_hosts, s.notify_allow_loopback)
        self.id = uuid.uuid4().hex
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(s.notify_concurrency, thread_name_prefix="notify")
        self._busy: set[str] = set()
        self._heartbeat_check = 0.0
        self._prune_check = 0.0
        self._busy_lock = threading.Lock()
        self._http = httpx.Client(
            timeout=httpx.Timeout(s.notify_timeout_seconds),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the endpoint check is the rule
            headers={"User-Agent": f"Consilium/{state.version} notifications"},
        )

    # ---------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notify-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._release_all()
        self._http.close()
        self._client.close()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        poll = self.state.settings.notify_poll_seconds
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.round()
            except Exception:
                log.exception("notification round failed")
            self._wake.wait(poll)

    # ------------------------------------------------------------------------------- rounds
    def round(self) -> None:
        """Hand every subscription with pending events (not drained here already) to the pool."""
        if time.monotonic() >= self._heartbeat_check:  # heartbeats have 1 s granularity
            self._heartbeat_check = time.monotonic() + min(
                1.0, self.state.settings.notify_poll_seconds
            )
            self.heartbeats()
        if time.monotonic() >= self._prune_check:
            self._prune_check = time.monotonic() + self.state.settings.notify_prune_every_seconds
            self.prune()
        waiting = self.notify.outbox.distinct("sub", {"state": "pending"})
        if not waiting:
            return
        # Subscriptions in error or off keep their pending events but are not claimed.
        live = {"_id": {"$in": waiting}, "status": {"$in": ["active", "requested"]}}
        subs = [d["_id"] for d in self.notify.subs.find(live, {"_id": 1})]
        for sid in subs:
            with self._busy_lock:
                if sid in self._busy:
                    continue
                self._busy.add(sid)
            try:
                self._pool.submit(self._drain_guarded, sid)
            except RuntimeError:  # shutting down
                with self._busy_lock:
                    self._busy.discard(sid)
                return

    def heartbeats(self) -> None:
        """Queue a heartbeat for each active topic subscription with a heartbeat period that
        sent nothing for that long and has nothing pending. The ``_id`` names the period's time
        slot, so several processes queue one heartbeat between them."""
        t = now()
        for sub in self.notify.subs.find({"status": "active", "heartbeat": {"$gt": 0}}):
            sid, period = sub["_id"], int(sub["heartbeat"])
            doc = self.notify.delivery.find_one({"_id": sid}) or {}
            last = doc.get("last_sent") or EPOCH
            if last + timedelta(seconds=period) > t:
                continue
            if self.notify.outbox.find_one({"sub": sid, "state": "pending"}, {"_id": 1}):
                continue
            slot = int(t.timestamp() // period)
            try:
                self.notify.outbox.insert_one(
                    {
                        "_id": f"{sid}:heartbeat:{slot}",
                        "sub": sid,
                        "n": 0,
                        "kind": "heartbeat",
                        "ts": t,
                        "state": "pending",
                        "attempts": 0,
                    }
                )
            except DuplicateKeyError:
                continue

    def prune(self, max_batches: int = 10) -> int:
        """Remove delivered events older than the retention, ``notify_prune_batch`` at a time
        and at most ``max_batches`` batches per call (a large backlog is worked off over
        several rounds instead of one long delete). Pending events are never pruned. Returns
        how many were removed."""
        s = self.state.settings
        cutoff = now() - timedelta(seconds=s.notify_retention_seconds)
        old: Doc = {"state": "delivered", "delivered_at": {"$lt": cutoff}}
        removed = 0
        for _ in range(max_batches):
            ids = [
                d["_id"]
                for d in self.notify.outbox.find(old, {"_id": 1}).limit(s.notify_prune_batch)
            ]
            if not ids:
                break
            removed += self.notify.outbox.delete_many({"_id": {"$in": ids}, **old}).deleted_count
            if len(ids) < s.notify_prune_batch:
                break
        return removed

    def owner_revoked(self, sub: Doc) -> str | None:
        """Why the subscription's owning client may no longer be notified, or None. The owner
        is the OAuth client whose token wrote it: deleted (revoked) clients and clients whose
        party binding changed lose its notifications. Provisioned owners (a trusted writer's
        ``subscription-owner``), the admin token and auth off have no client to check."""
        owner = sub.get("owner") or {}
        auth = self.state.auth
        client_id = str(owner.get("client_id") or "")
        if auth is None or owner.get("admin") or client_id in ("", "provisioned"):
            return None
        client = auth.store.get_client(client_id)
        if client is None:
            return f"the owning client {client_id} was revoked"
        binding = (client.organization, client.role, client.practitioner_role)
        if binding != (
            owner.get("organization"),
            owner.get("role"),
            owner.get("practitioner_role"),
        ):
            return f"the owning client {client_id} is bound to another party now"
        return None

    def _drain_guarded(self, sid: str) -> None:
        try:
            self.drain(sid)
        except Exception:
            log.exception("draining subscription %s failed", sid)
            self._release(sid)
        finally:
            with self._busy_lock:
                self._busy.discard(sid)

    def _claim(self, sid: str) -> Doc | None:
        t = now()
        lease = timedelta(seconds=self.state.settings.notify_lease_seconds)
        return self.notify.delivery.find_one_and_update(
            {"_id": sid, "lease_until": {"$lt": t}, "next_at": {"$lte": t}},
            {"$set": {"lease_until": t + lease, "lease_owner": self.id}},
            return_document=ReturnDocument.AFTER,
        )

    def _renew(self, sid: str) -> bool:
        lease = timedelta(seconds=self.state.settings.notify_lease_seconds)
        res = self.notify.delivery.update_one(
            {"_id": sid, "lease_owner": self.id}, {"$set": {"lease_until": now() + lease}}
        )
        return res.matched_count == 1

    def _release(self, sid: str, extra: Doc | None = None) -> None:
        self.notify.delivery.update_one(
            {"_id": sid, "lease_owner": self.id},
            {"$set": {"lease_until": EPOCH, "lease_owner": None, **(extra or {})}},
        )

    def _release_all(self) -> None:
        try:
            self.notify.delivery.update_many(
                {"lease_owner": self.id}, {"$set": {"lease_until": EPOCH, "lease_owner": None}}
            )
        except Exception:
            log.exception("releasing notification leases failed")

    def drain(self, sid: str) -> None:
        """Deliver ``sid``'s pending events in order while they succeed (under its lease)."""
        if self._claim(sid) is None:
            return  # another worker holds it, or its next attempt is not due
        revoked = self.owner_revoked(self.notify.subs.find_one({"_id": sid}) or {})
        if revoked is not None:
            self._release(sid, {"last_error": revoked})
            self._set_status(sid, ("active", "requested"), "error", revoked)
            return
        while not self._stop.is_set():
            sub = self.notify.subs.find_one({"_id": sid})
            status = (sub or {}).get("status")
            if sub is None or status not in ("active", "requested"):
                break
            flt: Doc = {"sub": sid, "state": "pending"}
            if status == "requested":  # only the handshake goes out before activation
                flt["kind"] = "handshake"
            events = list(self.notify.outbox.find(flt).sort([("n", ASCENDING)]).limit(BATCH))
            if not events:
                break
            for event in events:
                problem = self.send(sub, event)
                if problem is not None:
                    self._failed(sid, sub, event, problem)
                    return
                self.notify.outbox.update_one(
                    {"_id": event["_id"]},
                    {
                        "$set": {"state": "delivered", "delivered_at": now()},
                        "$inc": {"attempts": 1},
                    },
                )
                done: Doc = {"failures": 0, "last_error": None, "last_sent": now()}
                if event.get("kind", "event") == "event":
                    done["delivered"] = event["n"]
                self.notify.delivery.update_one({"_id": sid}, {"$set": done})
                if event.get("kind") == "handshake":
                    self._set_status(sid, ("requested",), "active")
                    break  # re-read the subscription: it may now send its events
                if self._stop.is_set() or not self._renew(sid):
                    return
            if self._stop.is_set() or not self._renew(sid):
                return
        self._release(sid)

    def _failed(self, sid: str, sub: Doc, event: Doc, problem: str) -> None:
        s = self.state.settings
        self.notify.outbox.update_one({"_id": event["_id"]}, {"$inc": {"attempts": 1}})
        doc = self.notify.delivery.find_one_and_update(
            {"_id": sid},
            {"$inc": {"failures": 1}, "$set": {"last_error": problem}},
            return_document=ReturnDocument.AFTER,
        )
        failures = int((doc or {}).get("failures", 1))
        delay = backoff(failures, s.notify_backoff_base_seconds, s.notify_backoff_max_seconds)
        log.info("notification %s failed (%s); attempt %d", event["_id"], problem, failures)
        self._release(sid, {"next_at": now() + timedelta(seconds=delay)})
        if failures >= s.notify_max_failures:
            self._set_status(
                sid, ("active", "requested"), "error", f"delivery failed: {problem}"[:500]
            )

    def _set_status(
        self, sid: str, when: tuple[str, ...], status: str, error: str | None = None
    ) -> None:
        """The server's own status change of a Subscription (through the repository, so the
        resource, its history and the state document change together)."""
        repo = Repository(self.state.store, self.state.hooks)

        def work(r: Repository) -> None:
            current = r.current("Subscription", sid)
            if current is None or current.deleted or current.resource is None:
                return
            if current.resource.get("status") not in when:
                return
            body = dict(current.resource)
            body["status"] = status
            if error:
                body["error"] = error
            else:
                body.pop("error", None)
            body.pop("meta", None)
            r.update("Subscription", sid, body, if_match=current.version_id)

        try:
            with server_write():
                repo.transaction(work)
        except FhirError as exc:
            log.warning("could not set Subscription/%s to %s: %s", sid, status, exc)

    # -------------------------------------------------------------------------------- sending
    def send(self, sub: Doc, event: Doc) -> str | None:
        """POST one notification; None when the receiver answered 2xx, else what went wrong."""
        try:
            check_endpoint(str(sub["endpoint"]), self.endpoints)
        except UnsafeEndpoint as exc:
            return f"unsafe endpoint: {exc}"
        body, headers = self.payload(sub, event)
        headers.update(dict(sub.get("headers") or []))
        headers["X-Consilium-Subscription"] = str(sub["_id"])
        headers["X-Consilium-Event-Number"] = str(event["n"])
        secret = sub.get("secret")
        if secret:
            headers[SIGNATURE] = sign(str(secret), int(time.time()), body)
        try:
            with self._http.stream(
                "POST", str(sub["endpoint"]), content=body, headers=headers
            ) as response:
                status = response.status_code
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    def payload(self, sub: Doc, event: Doc) -> tuple[bytes, dict[str, str]]:
        """Classic R4 rest-hook body: the resource as its owner reads it, or nothing.

        ``full-resource``: the version read through the repository *as the owner* (its scopes,
        party rules, redaction: an insurer gets the status view); a version the owner can no
        longer read goes out ``empty``, a body over ``notify_max_payload_bytes`` ``id-only``. ``id-only``: ``X-Consilium-Focus: Type/id/_history/vid``, no body."""
        if sub.get("topic"):
            return self.topic_payload(sub, event)
        focus = f"{event['type']}/{event['rid']}/_history/{event['vid']}"
        mode = sub.get("payload", "empty")
        if mode == "full-resource":
            resource = self._read_as_owner(sub, event)
            if resource is None:
                return b"", {}
            body = fhirjson.dumps(resource)
            if len(body) <= self.state.settings.notify_max_payload_bytes:
                return body, {"Content-Type": "application/fhir+json"}
            mode = "id-only"
        if mode == "id-only":
            return b"", {"X-Consilium-Focus": focus}
        return b"", {}

    def topic_payload(self, sub: Doc, event: Doc) -> tuple[bytes, dict[str, str]]:
        """The Backport IG body: a ``history`` Bundle, status Parameters first; for an event
        the focus entry per payload content (``full-resource``: read as the owner, like the
        classic form; unreadable now → ``empty``; too large → ``id-only``)."""
        kind = event.get("kind", "event")
        base = (self.state.settings.base_url or "").rstrip("/")
        base = f"{base}/fhir" if base else ""
        stamp = fhir_instant(now())
        ctype = {"Content-Type": "application/fhir+json"}
        if kind in ("handshake", "heartbeat"):
            status = "requested" if kind == "handshake" else str(sub.get("status"))
            events = 0 if kind == "handshake" else int(sub.get("events", 0))
            params = status_parameters(sub, status, kind, events, base)
            return fhirjson.dumps(notification_bundle(params, stamp, base)), ctype
        key = f"{event['type']}/{event['rid']}"
        mode = str(sub.get("payload", "empty"))
        resource = self._read_as_owner(sub, event) if mode == "full-resource" else None
        if mode == "full-resource" and resource is None:
            mode = "empty"
        for attempt in (mode, "id-only"):
            focus = None
            if attempt != "empty":
                focus = {
                    "key": key,
                    "vid": event["vid"],
                    "resource": resource if attempt == "full-resource" else None,
                }
            notification = {
                "n": event["n"],
                "timestamp": fhir_instant(event["ts"]),
                "focus": f"{key}/_history/{event['vid']}" if attempt != "empty" else None,
            }
            params = status_parameters(
                sub, "active", "event-notification", int(event["n"]), base, notification
            )
            body = fhirjson.dumps(notification_bundle(params, stamp, base, focus))
            if len(body) <= self.state.settings.notify_max_payload_bytes or attempt == "id-only":
                return body, ctype
        raise AssertionError("unreachable")

    def _read_as_owner(self, sub: Doc, event: Doc) -> dict[str, Any] | None:
        owner = sub.get("owner")
        policy = self.state.policy
        security = (
            SecurityContext(owner_principal(owner), policy)
            if owner is not None and policy is not None
            else SecurityContext.system()
        )
        repo = Repository(self.state.store, self.state.hooks, security=security)
        try:
            return repo.vread(str(event["type"]), str(event["rid"]), int(event["vid"])).resource
        except FhirError:
            return None
