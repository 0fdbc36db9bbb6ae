"""The notification records: the server's own collections (never resource data).

- ``_notify_subs``: one state document per Subscription: what the matcher and the worker need
  (type, query, endpoint, payload, headers, owner, HMAC secret) and ``events``, the
  per-subscription event counter incremented in the writing transaction;
- ``_notify_meta``: ``{_id: "subscriptions", n}``, bumped by every Subscription write, so each
  process knows when its cache of active subscriptions is stale;
- ``_outbox``: one event per (subscription, resource version), ``_id`` = ``<sub>:<n>``;
- ``_notify_delivery``: one per subscription: the worker lease, failures, next attempt.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.collection import Collection

from server.database import Store

SUBS = "_notify_subs"
META = "_notify_meta"
OUTBOX = "_outbox"
DELIVERY = "_notify_delivery"
GENERATION = "subscriptions"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Doc = dict[str, Any]


class NotifyStore:
    """Typed access to the notification collections of one database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def subs(self) -> Collection[Doc]:
        return self.store.db[SUBS]

    @property
    def meta(self) -> Collection[Doc]:
        return self.store.db[META]

    @property
    def outbox(self) -> Collection[Doc]:
        return self.store.db[OUTBOX]

    @property
    def delivery(self) -> Collection[Doc]:
        return self.store.db[DELIVERY]

    def prepare(self) -> None:
        """Collections and indexes, created outside any transaction (SecantusDB leaves the
        documents of an open transaction out of an index built meanwhile)."""
        self.subs.create_indexes([IndexModel([("status", ASCENDING)])])
        self.outbox.create_indexes(
            [
                IndexModel([("state", ASCENDING), ("sub", ASCENDING), ("n", ASCENDING)]),
                IndexModel([("sub", ASCENDING), ("n", ASCENDING)]),
            ]
        )
        self.delivery.create_indexes([IndexModel([("lease_until", ASCENDING)])])
        self.meta.update_one({"_id": GENERATION}, {"$setOnInsert": {"n": 0}}, upsert=True)
