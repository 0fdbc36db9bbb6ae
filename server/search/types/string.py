"""string: case- and accent-insensitive "starts with" by default, ``:exact``, ``:contains``.

Stored normalized under ``<code>`` (every part of a HumanName/Address separately, so
``name=ada`` finds a given name) and verbatim under ``<code>@exact``. A prefix query is a
``$gte/$lt`` range on the normalized key (an index range scan); ``:contains`` needs a regex
built with ``re.escape`` so user text never becomes a pattern.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from server.search.text import normalize, prefix_range, unescape
from server.search.types import Filter, QueryError, any_of, field, strings

MODIFIERS = ("missing", "exact", "contains")
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def parts(node: Any) -> list[str]:
    if not isinstance(node, dict):
        return strings(node)
    out: list[str] = []
    keys: tuple[str, ...] = _NAME_PARTS if ("family" in node or "given" in node) else _ADDRESS_PARTS
    if not any(k in node for k in keys):
        keys = ("text", "display", "value", "name")
    for k in keys:
        v = node.get(k)
        for item in v if isinstance(v, list) else [v]:
            out += strings(item)
    return out


def extract(code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    exact: list[str] = []
    for node in nodes:
        exact += parts(node)
    if not exact:
        return {}
    norm = [n for n in (normalize(s) for s in exact) if n]
    out: dict[str, list[Any]] = {code + "@exact": list(dict.fromkeys(exact))}
    if norm:
        out[code] = list(dict.fromkeys(norm))
    return out


def build(code: str, modifier: str | None, values: Sequence[str]) -> Filter:
    frags: list[Filter] = []
    for raw in values:
        value = unescape(raw)
        if modifier == "exact":
            # the normalized key is implied by the exact one and is indexed: it drives the scan
            frags.append({field(code): normalize(value), field(code, "@exact"): value})
            continue
        norm = normalize(value)
        if not norm:
            raise QueryError("empty string value")
        if modifier == "contains":
            frags.append({field(code): {"$regex": re.escape(norm)}})
        elif modifier is None:
            frags.append({field(code): prefix_range(norm)})
        else:
            raise QueryError(f"modifier :{modifier} is not supported on string parameters")
    return any_of(frags)
