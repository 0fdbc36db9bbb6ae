"""Element-wise re-check of two-sided ranges on multikey fields (pure).

MongoDB evaluates ``{"idx.name": {"$gte": "ada", "$lt": "ada\\U0010ffff"}}`` on an array by
letting *different* elements satisfy each bound, so ``["beta", "zulu"]`` would match ``c``. The
index range scan is still the right access path; this re-check on the projected ``idx`` values
drops such false positives. It only understands the operators our translators generate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from server.search.types import Filter


def values(doc: dict[str, Any], path: str) -> list[Any]:
    if path == "_id":
        return [doc.get("_id")]
    cur: Any = doc
    for part in path.split("."):
        if isinstance(cur, list) and part.isdigit():  # ``acl.requests.0``: an array position
            cur = cur[int(part)] if int(part) < len(cur) else None
        elif isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return []
    if cur is None:
        return []
    return cur if isinstance(cur, list) else [cur]


# Paths whose values are flat arrays of scalars, where Python's walk equals MongoDB's.
_FLAT_PATH = re.compile(r"^(_id|acl\.[A-Za-z_]+(\.[0-9]+)?|idx\.[^.$]+)$")


def exact(frag: Filter) -> bool:
    """Whether ``matches`` decides ``frag`` exactly as MongoDB does, so it may stand in for it.

    Deliberately narrow: string equality, ``$in`` of strings and ``$exists`` on plain fields,
    under ``$and``/``$or``. Anything else (other operators, non-string values whose BSON
    ordering differs from Python's) must stay in the database filter.
    """
    for key, cond in frag.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                return False
            if not all(isinstance(f, dict) and exact(f) for f in cond):
                return False
        elif not _FLAT_PATH.match(key):
            return False
        elif isinstance(cond, dict):
            if "$exists" in cond and len(cond) > 1:
                return False
            for op, arg in cond.items():
                if op == "$in":
                    if not isinstance(arg, list) or not all(isinstance(v, str) for v in arg):
                        return False
                elif op == "$exists":
                    if not isinstance(arg, bool):
                        return False
                else:
                    return False
            if not cond:
                return False
        elif not isinstance(cond, str):
            return False
    return True


def projected(fields_: set[str]) -> set[str]:
    """Projection paths that carry ``fields_``: array positions are cut off, because MongoDB
    reads ``a.0`` in a projection as a field named "0" of the array's sub-documents."""
    out: set[str] = set()
    for f in fields_:
        parts = f.split(".")
        cut = next((i for i, p in enumerate(parts) if p.isdigit()), len(parts))
        out.add(".".join(parts[:cut]))
    return out


def project(projection: dict[str, int], checks: Sequence[Filter | None]) -> dict[str, int]:
    """``projection`` plus the fields ``checks`` read, without MongoDB path collisions."""
    wanted = set(projection)
    for c in checks:
        if c:
            wanted |= projected(fields(c))
    keep = {f for f in wanted if not any(f.startswith(o + ".") for o in wanted)}
    return dict.fromkeys(sorted(keep), 1)


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
