"""One translator per search parameter type: write-time encoding and read-time filters.

Each module exposes ``extract(code, nodes) -> {idx field: [values]}`` (what a resource stores)
and ``build(code, modifier, values) -> filter`` (a MongoDB filter fragment, pure, no I/O). The
two live side by side because they must agree on the encoding. ``values`` are the OR'd values
of one parameter occurrence, still escaped (``\\,`` was already split on).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Filter = dict[str, Any]
NEVER: Filter = {"_id": {"$in": []}}


class QueryError(ValueError):
    """A malformed value or unsupported modifier (ignored with a warning, or 400 if strict)."""


def field(code: str, suffix: str = "") -> str:
    return f"idx.{code}{suffix}"


def any_of(fragments: Sequence[Filter]) -> Filter:
    """OR of fragments; equalities on one field collapse to ``$in`` (index friendly)."""
    if not fragments:
        return dict(NEVER)
    if len(fragments) == 1:
        return fragments[0]
    fields = {next(iter(f)) for f in fragments if len(f) == 1}
    if len(fields) == 1 and all(len(f) == 1 for f in fragments):
        name = fields.pop()
        vals: list[Any] = []
        for f in fragments:
            v = f[name]
            if isinstance(v, dict) and set(v) == {"$in"}:
                vals.extend(v["$in"])
            elif isinstance(v, dict):
                break
            else:
                vals.append(v)
        else:
            return {name: {"$in": list(dict.fromkeys(vals))}}
    return {"$or": list(fragments)}


def missing(code: str, modifier_value: str, suffix: str = "") -> Filter:
    if modifier_value not in ("true", "false"):
        raise QueryError(f":missing takes true or false, got {modifier_value!r}")
    # ``{f: null}`` (absent, since index values are never null) is served by the field's index;
    # ``$exists: false`` is a collection scan on SecantusDB and a full index walk on MongoDB.
    if modifier_value == "true":
        return {field(code, suffix): None}
    return {field(code, suffix): {"$exists": True}}


def strings(node: Any) -> list[str]:
    """Primitive string content of a node (fhirpathpy may hand back non-str primitives)."""
    if node is None or isinstance(node, (dict, list)):
        return []
    if isinstance(node, bool):
        return ["true" if node else "false"]
    s = str(node)
    return [s] if s else []
