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

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel

KEYS = "ks"
KSEP = "\x1e"  # after the field name; field names are [A-Za-z0-9_\-@+] so never contain it
KSEP_NEXT = "\x1f"  # the character after KSEP: the exclusive top of a field's key range
INDEX_NAME = "ks_1"
LOWER = ("$gt", "$gte")
UPPER = ("$lt", "$lte")
Doc = dict[str, Any]


def key(field: str, value: str) -> str:
    return f"{field}{KSEP}{value}"


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


def _bounds(field: str, cond: Doc) -> Doc | None:
    """The ``ks`` range equivalent to a range (only ``$gt/$gte/$lt/$lte`` on text) on ``field``."""
    if not cond or not all(op in LOWER + UPPER and isinstance(v, str) for op, v in cond.items()):
        return None
    out: Doc = {op: key(field, v) for op, v in cond.items()}
    if not any(op in out for op in LOWER):
        out["$gte"] = field + KSEP
    if not any(op in out for op in UPPER):
        out["$lt"] = field + KSEP_NEXT
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


def _keyed_field(name: str, keyed: frozenset[str]) -> str | None:
    if not name.startswith("idx."):
        return None
    field = name[4:]
    return field if field in keyed else None


def _or_keys(branches: Any, keyed: frozenset[str]) -> list[str] | None:
    """An OR of equalities / ``$in`` on keyed fields as one ``$in`` of keys (exact)."""
    if not isinstance(branches, list) or not branches:
        return None
    out: list[str] = []
    for branch in branches:
        if not isinstance(branch, dict) or len(branch) != 1:
            return None
        name, cond = next(iter(branch.items()))
        field = _keyed_field(name, keyed)
        got = translate(field, cond) if field is not None else None
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


def _drive_one(flt: Doc, keyed: frozenset[str]) -> Doc | None:
    """``flt`` with its first drivable conjunct in ``ks`` form (None: nothing to drive)."""
    if "_id" in flt or KEYS in flt:  # the _id index is better; or already driven
        return None
    for name, cond in flt.items():
        if name == "$or":
            ors = _or_keys(cond, keyed)
            if ors is not None:
                out = {k: v for k, v in flt.items() if k != "$or"}
                out[KEYS] = {"$in": list(dict.fromkeys(ors))}
                return out
            continue
        field = _keyed_field(name, keyed)
        if field is None:
            continue
        got = translate(field, cond)
        if got is None:
            continue
        ks, exact = got
        out = {k: v for k, v in flt.items() if not (exact and k == name)}
        out[KEYS] = ks
        return out
    nested = flt.get("$and")
    if isinstance(nested, list):
        for i, part in enumerate(nested):
            if isinstance(part, dict):
                driven = _drive_one(part, keyed)
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


def drive(keyed: frozenset[str], parts: Sequence[Doc]) -> list[Doc]:
    """``parts`` (ANDed, in order of preference) with one conjunct rewritten to drive ``ks``.

    The first part that can drive wins: the search planner's chosen driver comes first
    (``server.search.query.split_for_index`` already ranked it), the access filter after.
    """
    if any("_id" in p for p in parts):
        return list(parts)
    for i, part in enumerate(parts):
        driven = _drive_one(part, keyed)
        if driven is not None:
            return [*parts[:i], driven, *parts[i + 1 :]]
    return list(parts)


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
