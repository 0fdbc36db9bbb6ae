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
from functools import cached_property
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.database import Database

SUBS = "_notify_subs"
META = "_notify_meta"
OUTBOX = "_outbox"
DELIVERY = "_notify_delivery"
GENERATION = "subscriptions"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Doc = dict[str, Any]


class NotifyStore:
    """Typed access to the notification collections of one database (through the app's client
    for the hooks, whose writes join the request's session; through the worker's own client
    for delivery, so its polling never shares the request pool)."""

    def __init__(self, db: Database[Doc]) -> None:
        self.db = db

    # One Collection object each (building one costs ~9 us; every write reads ``meta``).
    @cached_property
    def subs(self) -> Collection[Doc]:
        return self.db[SUBS]

    @cached_property
    def meta(self) -> Collection[Doc]:
        return self.db[META]

    @cached_property
    def outbox(self) -> Collection[Doc]:
        return self.db[OUTBOX]

    @cached_property
    def delivery(self) -> Collection[Doc]:
        return self.db[DELIVERY]

    def prepare(self) -> None:
        """Collections and indexes, created outside any transaction (SecantusDB leaves the
        documents of an open transaction out of an index built meanwhile)."""
        self.subs.create_indexes([IndexModel([("status", ASCENDING)])])
        self.outbox.create_indexes(
            [
                IndexModel([("state", ASCENDING), ("sub", ASCENDING), ("n", ASCENDING)]),
                IndexModel([("sub", ASCENDING), ("n", ASCENDING)]),
                IndexModel([("state", ASCENDING), ("delivered_at", ASCENDING)]),
            ]
        )
        self.delivery.create_indexes([IndexModel([("lease_until", ASCENDING)])])
        self.meta.update_one({"_id": GENERATION}, {"$setOnInsert": {"n": 0}}, upsert=True)
