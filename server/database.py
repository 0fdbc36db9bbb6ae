"""The MongoDB connection and the physical layout of the resource store.

Layout (see ARCHITECTURE.md, "Storage"):
- one collection per resource type, named after the type, ``_id`` = logical id, holding the
  current version: ``{_id, vid, ts, deleted, resource, idx}``;
- ``_history``: every version ever written, append-only,
  ``{_id: "Type/id/vid", type, rid, vid, ts, method, deleted, resource}``.
Collection names are only ever taken from the resource-type registry, never from request text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from bson.codec_options import TypeDecoder, TypeEncoder, TypeRegistry
from bson.decimal128 import Decimal128
from pymongo import ASCENDING, IndexModel, MongoClient
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from resources.registry import is_resource_type
from server.bsondecimal import from_bson, to_bson

log = logging.getLogger(__name__)
HISTORY = "_history"
T = TypeVar("T")
Doc = dict[str, Any]


class _DecimalCodec(TypeEncoder, TypeDecoder):
    """FHIR decimals (``Decimal``, exact as sent; see ``server.fhirjson``) stored as Decimal128,
    which keeps significand and exponent: ``100.00`` reads back as ``100.00``."""

    python_type = Decimal
    bson_type = Decimal128

    def transform_python(self, value: Any) -> Decimal128:
        return to_bson(value)

    def transform_bson(self, value: Any) -> Decimal:
        return from_bson(value)


DECIMALS = TypeRegistry([_DecimalCodec()])


class Store:
    """Owns the client, knows the collections, and runs callbacks in transactions."""

    def __init__(self, uri: str, db_name: str) -> None:
        self.client: MongoClient[Doc] = MongoClient(
            uri, tz_aware=True, uuidRepresentation="standard", maxPoolSize=100
        )
        self.db: Database[Doc] = self.client.get_database(
            db_name, codec_options=self.client.codec_options.with_options(type_registry=DECIMALS)
        )
        self._indexed: set[str] = set()
        # One Collection object per name: building one costs ~9 us, and a write asks for three.
        self._collections: dict[str, Collection[Doc]] = {}
        self._index_lock = threading.Lock()
        self._index_providers: list[Callable[[str], list[IndexModel]]] = []
        hello = self.client.admin.command("hello")
        # Transactions need a replica set (or mongos). A standalone mongod gets single-document
        # atomicity only; we log it loudly rather than refuse to start.
        self.supports_transactions = bool(hello.get("setName") or hello.get("msg") == "isdbgrid")
        if not self.supports_transactions:
            log.warning("MongoDB is standalone: multi-document transactions are unavailable")
        # How a range on a multikey field is written so the index bounds it at both ends
        # (``keys.Window.query``): MongoDB needs ``$elemMatch``; SecantusDB scans the index only
        # for the plain form, which it reads element-wise. Same results, each its own plan.
        build = self.client.admin.command("buildInfo")
        self.elem_match_ranges = "secantusVersion" not in build
        # Built eagerly: SecantusDB leaves documents of a transaction that is open while an index
        # is built out of that index, and every write touches the history collection.
        self.ensure_indexes(HISTORY)

    def close(self) -> None:
        self.client.close()

    def add_index_provider(self, provider: Callable[[str], list[IndexModel]]) -> None:
        """Search registers here the indexes derived from the parameters of a type."""
        self._index_providers.append(provider)
        self._indexed.clear()

    def resources(self, resource_type: str) -> Collection[Doc]:
        if not is_resource_type(resource_type):
            raise ValueError(f"not a resource type: {resource_type!r}")
        self.ensure_indexes(resource_type)
        return self._collection(resource_type)

    @property
    def history(self) -> Collection[Doc]:
        self.ensure_indexes(HISTORY)
        return self._collection(HISTORY)

    def _collection(self, name: str) -> Collection[Doc]:
        found = self._collections.get(name)
        if found is None:
            found = self._collections[name] = self.db[name]
        return found

    def ensure_indexes(self, name: str) -> None:
        """Create a collection's indexes once per process, outside any transaction."""
        if name in self._indexed:
            return
        with self._index_lock:
            if name in self._indexed:
                return
            # Ascending keys only: a descending key followed by more keys makes SecantusDB drop
            # range boundaries ($gte on ts); MongoDB walks ascending indexes backwards for our
            # newest-first sorts at the same cost.
            if name == HISTORY:
                models = [
                    IndexModel(
                        [
                            ("type", ASCENDING),
                            ("rid", ASCENDING),
                            ("ts", ASCENDING),
                            ("_id", ASCENDING),
                        ]
                    ),
                    IndexModel([("ts", ASCENDING), ("_id", ASCENDING)]),
                    IndexModel([("type", ASCENDING), ("ts", ASCENDING), ("_id", ASCENDING)]),
                ]
            else:
                models = [IndexModel([("ts", ASCENDING), ("_id", ASCENDING)])]
                for provider in self._index_providers:
                    models.extend(provider(name))
            if models:
                self.db[name].create_indexes(models)
            self._indexed.add(name)

    def transaction(self, callback: Callable[[ClientSession | None], T]) -> T:
        """Run ``callback(session)`` in one transaction, retried on transient conflicts.

        The driver's ``with_transaction`` retries the whole callback on TransientTransactionError,
        so a callback must re-read what it checks (version numbers): a retried If-Match update then
        sees the winner's version and fails with 412 instead of overwriting it.
        """
        if not self.supports_transactions:
            return callback(None)
        with self.client.start_session() as session:
            return session.with_transaction(
                callback,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
                max_commit_time_ms=10_000,
            )
