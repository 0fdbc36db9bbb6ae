"""uri: exact match, ``:below`` (prefix range) and ``:above`` (the value's own prefixes, ``$in``).

Canonical URLs are also stored without their ``|version`` so ``url=`` finds every version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.search.text import prefix_range, unescape
from server.search.types import Filter, QueryError, any_of, field, strings

MODIFIERS = ("missing", "below", "above", "not")


def extract(code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    out: list[str] = []
    for node in nodes:
        for s in strings(node):
            out.append(s)
            if "|" in s:
                out.append(s.split("|", 1)[0])
    return {code: list(dict.fromkeys(out))} if out else {}


def above(value: str) -> list[str]:
    """Every stored uri that ``value`` is below: its path prefixes at '/' boundaries."""
    out = [value]
    cut = value
    while "/" in cut.rstrip("/"):
        cut = cut.rstrip("/").rsplit("/", 1)[0]
        if cut.endswith(":/") or cut.endswith(":"):
            break
        out.append(cut)
    return out


def build(code: str, modifier: str | None, values: Sequence[str]) -> Filter:
    frags: list[Filter] = []
    for raw in values:
        value = unescape(raw)
        if not value:
            raise QueryError("empty uri")
        if modifier is None or modifier == "not":
            frags.append({field(code): value})
        elif modifier == "below":
            frags.append({field(code): prefix_range(value)})
        elif modifier == "above":
            frags.append({field(code): {"$in": above(value)}})
        else:
            raise QueryError(f"modifier :{modifier} is not supported on uri parameters")
    if modifier == "not":
        return {field(code): {"$nin": [f[field(code)] for f in frags]}}
    return any_of(frags)
