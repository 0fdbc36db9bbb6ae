"""Element-wise re-check of two-sided ranges on multikey fields (pure).

MongoDB evaluates ``{"idx.name": {"$gte": "ada", "$lt": "ada\\U0010ffff"}}`` on an array by
letting *different* elements satisfy each bound, so ``["beta", "zulu"]`` would match ``c``. The
index range scan is still the right access path; this re-check on the projected ``idx`` values
drops such false positives. It only understands the operators our translators generate.
"""

from __future__ import annotations

import re
from typing import Any

from server.search.types import Filter


def values(doc: dict[str, Any], path: str) -> list[Any]:
    if path == "_id":
        return [doc.get("_id")]
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict):
            return []
        cur = cur.get(part)
    if cur is None:
        return []
    return cur if isinstance(cur, list) else [cur]


def _cmp(op: str, a: Any, b: Any) -> bool:
    try:
        if op == "$gt":
            return bool(a > b)
        if op == "$gte":
            return bool(a >= b)
        if op == "$lt":
            return bool(a < b)
        if op == "$lte":
            return bool(a <= b)
    except TypeError:
        return False
    return False


def _element(value: Any, cond: Any) -> bool:
    if not isinstance(cond, dict):
        return bool(value == cond)
    for op, arg in cond.items():
        if op in ("$gt", "$gte", "$lt", "$lte"):
            if not _cmp(op, value, arg):
                return False
        elif op == "$eq":
            if value != arg:
                return False
        elif op == "$in":
            if value not in arg:
                return False
        elif op == "$regex":
            if not (isinstance(value, str) and re.search(arg, value)):
                return False
        else:
            return True  # operators evaluated as a whole below
    return True


def _field(values: list[Any], cond: Any) -> bool:
    if cond is None:  # ``{f: null}``: index values are never null, so this means "absent"
        return not values
    if isinstance(cond, dict):
        if "$exists" in cond:
            return bool(values) == bool(cond["$exists"])
        if "$nin" in cond:
            return not any(v in cond["$nin"] for v in values)
        if "$ne" in cond:
            return all(v != cond["$ne"] for v in values)
        if "$not" in cond:
            return not _field(values, cond["$not"])
    return any(_element(v, cond) for v in values)


def matches(frag: Filter, doc: dict[str, Any]) -> bool:
    for key, cond in frag.items():
        if key == "$or":
            if not any(matches(f, doc) for f in cond):
                return False
        elif key == "$and":
            if not all(matches(f, doc) for f in cond):
                return False
        elif key == "$nor":
            if any(matches(f, doc) for f in cond):
                return False
        elif not _field(values(doc, key), cond):
            return False
    return True


def fields(frag: Filter) -> set[str]:
    out: set[str] = set()
    for key, cond in frag.items():
        if key in ("$or", "$and", "$nor"):
            for f in cond:
                out |= fields(f)
        else:
            out.add(key)
    return out
