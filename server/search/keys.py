"""One index for every search parameter: ``ks``, the list of ``<idx field><KSEP><value>`` keys.

Why one multikey index instead of one index per ``idx`` field: a MongoDB index that a document
does not populate still gets a (null) entry, so a collection with 55 single-field indexes paid 55
index writes per version whatever the resource held (171 inserts/s on SecantusDB against 923/s
with the one ``ks`` index, 1,448/s with none; see docs/indexing.md). A document's ``ks`` holds
one key per stored value of each keyed field, so a write costs what the resource contains, and
no parameter is left unindexed by the 64-index limit.

The keys are text: every ``idx`` value of a keyed field is text whose order is the value's order
(dates as fixed-width UTC text, numbers as ``sortable_number``, compound keys joined by SEP), so
``field + KSEP + value`` keeps that order inside the field's own key range
``[field KSEP, field KSEP_NEXT)``. A range on ``idx.f`` becomes the same range on ``ks``, and
because one key is one element, that range is element-wise (stricter than MongoDB's multikey
reading of two bounds, exactly what the residual re-check enforces anyway).

Queries keep their ``idx.*`` form everywhere (planner, residual re-checks, notifications'
matching); ``drive`` only rewrites, at the one ``find`` of ``Repository.find_visible``, the single
conjunct that should drive the scan into its ``ks`` equivalent.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel

from server.search.text import STRING_TOP

KEYS = "ks"
KSEP = "\x1e"  # after the field name; field names are [A-Za-z0-9_\-@+] so never contain it
KSEP_NEXT = "\x1f"  # the character after KSEP: the exclusive top of a field's key range
INDEX_NAME = "ks_1"
LOWER = ("$gt", "$gte")
UPPER = ("$lt", "$lte")
Doc = dict[str, Any]


def key(field: str, value: str) -> str:
    return f"{field}{KSEP}{value}"


# ------------------------------------------------------------------ window keys (``kw``)
# Why a second key list: SecantusDB's ``find`` decodes every candidate its index yields before it
# applies ``sort`` and ``limit``, and MongoDB fetches every match of ``{ks: k}`` to sort by
# ``_id``; so a first page of a value 10,000 resources share cost O(10,000) on both. ``kw``
# holds the same keys followed by the document's bucket (a hash of its id), so the matches of
# one value are also ordered by bucket in the index, and a page reads a narrow bucket range
# (a window) instead of the whole match (docs/indexing.md, "Windows").
WINDOW_KEYS = "kw"
WINDOW_INDEX = "kw_1"
BUCKET = "kb"  # the document's bucket, stored beside ``kw`` (the default order's first key)
BUCKETS = 1 << 16
WSEP = "\x1d"  # before the bucket: below every character of a value but the control ones
WINDOW_TOP = "~"  # above every bucket digit: the exclusive end of a value's window keys


def bucket_of(rid: str) -> str:
    """The 4-hex-digit bucket of ``rid``: uniform whatever the ids look like (``p-1``, uuids)."""
    return hashlib.blake2b(rid.encode(), digest_size=2).hexdigest()


def bucket_text(n: int) -> str:
    return WINDOW_TOP if n >= BUCKETS else f"{n:04x}"


def window_keys(windowed: frozenset[str], keys: Sequence[str], bucket: str) -> list[str]:
    """The ``kw`` keys: each ``ks`` key of a windowed field followed by the bucket."""
    return [f"{k}{WSEP}{bucket}" for k in keys if k.partition(KSEP)[0] in windowed]


def window_index_model() -> IndexModel:
    return IndexModel(
        [(WINDOW_KEYS, ASCENDING)], name=WINDOW_INDEX, partialFilterExpression={"deleted": False}
    )


@dataclass(frozen=True)
class Window:
    """A query that windows can serve: the live documents holding one key ``field␞value``,
    or (``prefix``) holding a value of ``field`` that starts with ``value``.

    A prefix search's matches whose value *is* ``value`` are read window by window; those with
    a longer value (``manningham`` for ``manning``) are read whole by ``longer_query``, which
    costs what they are (usually few: people search whole names).
    """

    field: str
    value: str
    prefix: bool

    @property
    def key(self) -> str:
        return key(self.field, self.value)

    def query(self, lo: int, hi: int, *, elem_match: bool) -> Doc:
        """Buckets ``[lo, hi)`` of the key. ``elem_match`` for MongoDB, whose planner bounds a
        range on a multikey field by both ends only under ``$elemMatch``; SecantusDB scans the
        index only for the plain form (and reads it element-wise, which is what we mean)."""
        bounds = {
            "$gte": f"{self.key}{WSEP}{bucket_text(lo)}",
            "$lt": f"{self.key}{WSEP}{bucket_text(hi)}",
        }
        cond: Any = {"$elemMatch": bounds} if elem_match else bounds
        return {"deleted": False, WINDOW_KEYS: cond}

    def check(self, lo: int, hi: int) -> Doc:
        """Re-checked in Python on each candidate: it holds the key itself (a value that
        contains ``WSEP`` could fall in the key's range) and its bucket is in the window."""
        return {KEYS: self.key, BUCKET: {"$gte": bucket_text(lo), "$lt": bucket_text(hi)}}

    def longer_query(self) -> Doc:
        """The prefix search's matches with a longer value: keys after ``field␞value`` itself."""
        top = key(self.field, self.value + STRING_TOP)
        return {"deleted": False, KEYS: {"$gte": self.key + AFTER, "$lt": top}}


def window_of(windowed: frozenset[str], query: Doc) -> Window | None:
    """The ``Window`` of a driven query that is exactly "live, one key" or "live, one prefix
    range" on a windowed field (anything else, such as a second condition, is None)."""
    if set(query) != {"deleted", KEYS} or query["deleted"] is not False:
        return None
    cond = query[KEYS]
    if isinstance(cond, str):
        field, sep, value = cond.partition(KSEP)
        return Window(field, value, False) if sep and field in windowed else None
    if isinstance(cond, dict) and set(cond) == {"$gte", "$lt"}:
        low, high = cond["$gte"], cond["$lt"]
        if isinstance(low, str) and isinstance(high, str) and high == low + STRING_TOP:
            field, sep, value = low.partition(KSEP)
            if sep and value and field in windowed:
                return Window(field, value, True)
    return None


def keys_of(keyed: frozenset[str], idx: Doc) -> list[str]:
    """The ``ks`` keys of a document's ``idx`` values (only text values of keyed fields)."""
    out: list[str] = []
    for field, values in idx.items():
        if field in keyed:
            out += [key(field, v) for v in values if isinstance(v, str)]
    return out


def index_model() -> IndexModel:
    """Partial like the rest: ``{deleted: False, ks: …}`` is fully served by the index."""
    return IndexModel(
        [(KEYS, ASCENDING)], name=INDEX_NAME, partialFilterExpression={"deleted": False}
    )


# The least string after a given one is itself plus NUL: so ``> k`` is ``>= k + AFTER`` and
# ``<= k`` is ``< k + AFTER``. SecantusDB walks every key equal to ``k`` for ``$gt: k`` (74 ms
# past 10,000 equal keys against 1.3 ms for the ``$gte`` form), so the keys use the closed form.
AFTER = "\x00"
_CLOSED = {"$gt": ("$gte", AFTER), "$gte": ("$gte", ""), "$lt": ("$lt", ""), "$lte": ("$lt", AFTER)}


def _bounds(field: str, cond: Doc) -> Doc | None:
    """The ``ks`` range equivalent to a range (only ``$gt/$gte/$lt/$lte`` on text) on ``field``."""
    if not cond or not all(op in LOWER + UPPER and isinstance(v, str) for op, v in cond.items()):
        return None
    out: Doc = {}
    for op, v in cond.items():
        closed, suffix = _CLOSED[op]
        bound = key(field, v) + suffix
        if closed in out:  # two bounds on one side: the tighter one
            bound = max(out[closed], bound) if closed == "$gte" else min(out[closed], bound)
        out[closed] = bound
    out.setdefault("$gte", field + KSEP)
    out.setdefault("$lt", field + KSEP_NEXT)
    return out


def _field_range(field: str) -> Doc:
    return {"$gte": field + KSEP, "$lt": field + KSEP_NEXT}


def translate(field: str, cond: Any) -> tuple[Any, bool] | None:
    """``(ks condition, exact)`` for ``{idx.field: cond}``; exact means it can replace it.

    None when the condition cannot drive a key scan (``:missing=true``'s null, ``$nin``,
    ``$not``…): those stay as they are and are served by another index or the partial
    ``(deleted, _id)`` walk.
    """
    if isinstance(cond, str):
        return key(field, cond), True
    if not isinstance(cond, dict) or not cond:
        return None
    if set(cond) == {"$in"} and cond["$in"] and all(isinstance(v, str) for v in cond["$in"]):
        return {"$in": [key(field, v) for v in cond["$in"]]}, True
    if set(cond) == {"$eq"} and isinstance(cond["$eq"], str):
        return key(field, cond["$eq"]), True
    if cond == {"$exists": True}:
        return _field_range(field), True
    if "$regex" in cond:  # :contains — the field's keys drive, the regex still decides
        return _field_range(field), False
    bounds = _bounds(field, cond)
    return (bounds, True) if bounds is not None else None


@dataclass(frozen=True)
class KeyLayout:
    """Which ``idx`` fields a type writes as keys, and how the others drive a key scan anyway.

    Why not every field: some fields' values are exactly another field's, or the union of
    others' (Observation's ``combo-code`` is ``code`` plus ``component-code``), and a stored
    key is an index entry on every write. ``unions[f]`` names the stored fields whose keys
    together are ``f``'s (an equality on ``f`` is one ``$in`` over them: exact);
    ``shared[f]`` names the stored field whose keys include all of ``f``'s (a scan of it is a
    superset, so ``f``'s own condition stays beside it for the database to filter).
    """

    stored: frozenset[str]
    unions: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    shared: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def drives(self, name: str) -> str | None:
        """The ``idx`` field of query field ``name`` when keys can drive it."""
        if not name.startswith("idx."):
            return None
        f = name[4:]
        return f if f in self.stored or f in self.unions or f in self.shared else None

    def translate(self, f: str, cond: Any) -> tuple[Any, bool] | None:
        """``translate`` for any field ``drives`` accepts."""
        if f in self.stored:
            return translate(f, cond)
        if f in self.shared:  # a superset: ``drive`` moves the condition to the re-checks
            got = translate(self.shared[f], cond)
            return None if got is None else (got[0], False)
        values = _equalities(cond)
        if values is None:  # a union of ranges is no one key range
            return None
        return {"$in": [key(t, v) for t in self.unions[f] for v in values]}, True


def _equalities(cond: Any) -> list[str] | None:
    if isinstance(cond, str):
        return [cond]
    if isinstance(cond, dict) and set(cond) == {"$eq"} and isinstance(cond["$eq"], str):
        return [cond["$eq"]]
    if isinstance(cond, dict) and set(cond) == {"$in"} and cond["$in"]:
        values = cond["$in"]
        return list(values) if all(isinstance(v, str) for v in values) else None
    return None


def _or_keys(branches: Any, layout: KeyLayout) -> list[str] | None:
    """An OR of equalities / ``$in`` on keyed fields as one ``$in`` of keys (exact)."""
    if not isinstance(branches, list) or not branches:
        return None
    out: list[str] = []
    for branch in branches:
        if not isinstance(branch, dict) or len(branch) != 1:
            return None
        name, cond = next(iter(branch.items()))
        f = layout.drives(name)
        got = layout.translate(f, cond) if f is not None else None
        if got is None or not got[1]:
            return None
        ks, _ = got
        if isinstance(ks, str):
            out.append(ks)
        elif isinstance(ks, dict) and set(ks) == {"$in"}:
            out += ks["$in"]
        else:
            return None
    return out


def _drive_one(flt: Doc, layout: KeyLayout, checks: list[Doc]) -> Doc | None:
    """``flt`` with its first drivable conjunct in ``ks`` form (None: nothing to drive).

    A conjunct on a ``shared`` field is appended to ``checks`` instead of staying beside its
    keys: SecantusDB serves a query from the ``ks`` index only when nothing but ``deleted``
    is beside it, so it would scan the collection."""
    if "_id" in flt or KEYS in flt:  # the _id index is better; or already driven
        return None
    for name, cond in flt.items():
        if name == "$or":
            ors = _or_keys(cond, layout)
            if ors is not None:
                out = {k: v for k, v in flt.items() if k != "$or"}
                out[KEYS] = {"$in": list(dict.fromkeys(ors))}
                return out
            continue
        f = layout.drives(name)
        if f is None:
            continue
        got = layout.translate(f, cond)
        if got is None:
            continue
        ks, exact = got
        if f in layout.shared:
            checks.append({name: cond})
            exact = True
        out = {k: v for k, v in flt.items() if not (exact and k == name)}
        out[KEYS] = ks
        return out
    nested = flt.get("$and")
    if isinstance(nested, list):
        for i, part in enumerate(nested):
            if isinstance(part, dict):
                driven = _drive_one(part, layout, checks)
                if driven is not None:
                    out = {k: v for k, v in flt.items() if k != "$and"}
                    rest = [*nested[:i], *nested[i + 1 :]]
                    if rest:
                        out["$and"] = rest
                    return _merge(out, driven)
    return None


def _merge(a: Doc, b: Doc) -> Doc:
    out = dict(a)
    for k, v in b.items():
        if k in out:
            out.setdefault("$and", []).append({k: v})
        else:
            out[k] = v
    return out


def drive(layout: KeyLayout, parts: Sequence[Doc]) -> tuple[list[Doc], list[Doc]]:
    """``parts`` (ANDed, in order of preference) with one conjunct rewritten to drive ``ks``,
    and the conditions the caller re-checks on what that finds (``KeyLayout.shared``).

    The first part that can drive wins: the search planner's chosen driver comes first
    (``server.search.query.split_for_index`` already ranked it), the access filter after.
    """
    checks: list[Doc] = []
    if any("_id" in p for p in parts):
        return list(parts), checks
    for i, part in enumerate(parts):
        driven = _drive_one(part, layout, checks)
        if driven is not None:
            return [*parts[:i], driven, *parts[i + 1 :]], checks
    return list(parts), checks


def elem_match(query: Doc) -> Doc:
    """``query`` with each range on ``ks`` under ``$elemMatch``, for MongoDB.

    MongoDB's planner bounds a range on a multikey field at both ends only under ``$elemMatch``;
    the plain form scans from one bound to the end of the index (every key of every later
    field) and lets different keys satisfy the two bounds. The element-wise reading is what the
    keys mean, and what SecantusDB's index scan of the plain form does (it scans the index only
    for that form, so it keeps it: ``Store.elem_match_ranges``).
    """

    def wrap(cond: Any) -> Any:
        if isinstance(cond, dict) and cond and all(op in LOWER + UPPER for op in cond):
            return {"$elemMatch": cond}
        return cond

    out = {k: wrap(v) if k == KEYS else v for k, v in query.items()}
    if isinstance(out.get("$and"), list):
        out["$and"] = [elem_match(p) if isinstance(p, dict) else p for p in out["$and"]]
    return out


WALK_INDEX = "deleted_id"


def _field_names(flt: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(flt, dict):
        for k, v in flt.items():
            if k in ("$and", "$or", "$nor") and isinstance(v, list):
                for part in v:
                    names |= _field_names(part)
            else:
                names.add(k)
    return names


def walks_live(query: Doc) -> bool:
    """True for a search no key can drive (``:missing=true``, ``:not``/``$nin`` alone…).

    Such a query reads every live document whatever the layout; mongod's planner walks the
    ``(deleted, _id)`` index for the ``deleted: false`` prefix, SecantusDB's only when told to,
    so the read primitive hints it to get the same plan on both.
    """
    names = _field_names(query)
    return (
        query.get("deleted") is False
        and KEYS not in names
        and any(n.startswith("idx.") for n in names)
        and all(n == "deleted" or n.startswith("idx.") for n in names)
    )
