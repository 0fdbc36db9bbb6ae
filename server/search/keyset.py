"""Sort keys for keyset paging (pure): a row's key, key order, and which sorts are pageable.

A row's key is its sort values in ``sort`` order, ``_id`` last (``query.sort_spec`` always ends
with it), each value taken as MongoDB sorts an array: its minimum for an ascending key, its
maximum for a descending one; a missing value is ``None`` and sorts first ascending, last
descending. ``compare_keys`` reproduces that order in Python, so a page can continue "after the
last row" without the database holding a result set. It is exact only for values whose Python
order equals their BSON order: strings (UTF-8 byte order equals code-point order), numbers and
``Decimal`` of one kind, datetimes. ``keyset_pageable`` names the parameter types whose index
values are of those kinds; other sorts page by the stored result set instead (docs/paging.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from resources.registry import search_params_for
from server.search import residual
from server.search.model import SortKey

Doc = dict[str, Any]
Key = list[Any]
Sort = Sequence[tuple[str, int]]

# Index values of these parameter types are strings (dates as fixed-width UTC text) or
# Decimals: Python orders them as MongoDB does.
KEYSET_TYPES = frozenset({"string", "token", "reference", "uri", "date", "number"})


def keyset_pageable(resource_type: str, keys: Sequence[SortKey]) -> bool:
    """Whether every ``_sort`` key of ``resource_type`` can be keyset-paged exactly."""
    params = search_params_for(resource_type)
    for k in keys:
        if k.code in ("_id", "_lastUpdated"):
            continue
        p = params.get(k.code)
        if p is not None and p.type not in KEYSET_TYPES:
            return False  # unknown codes are dropped by sort_spec, so they do not matter
    return True


def sort_value(doc: Doc, field: str, direction: int) -> Any:
    """The value MongoDB sorts ``doc`` by on ``field``: min (ascending) / max of an array."""
    values = [v for v in residual.values(doc, field) if v is not None]
    if not values:
        return None
    return min(values) if direction > 0 else max(values)


def key_of(doc: Doc, sort: Sort) -> Key:
    return [sort_value(doc, f, d) for f, d in sort]


def compare_keys(a: Key, b: Key, sort: Sort) -> int:
    """-1, 0, 1 as ``a`` comes before, with, after ``b`` in ``sort`` order (nulls first)."""
    for (_, direction), va, vb in zip(sort, a, b, strict=True):
        if va == vb:
            continue
        if va is None or vb is None:
            less = va is None
        else:
            try:
                less = va < vb
            except TypeError:
                less = str(va) < str(vb)
        return (-1 if less else 1) * direction
    return 0


def comparator(sort: Sort) -> Callable[[Doc, Doc], int]:
    """Documents in MongoDB's ``sort`` order (for ``functools.cmp_to_key``)."""

    def compare(a: Doc, b: Doc) -> int:
        return compare_keys(key_of(a, sort), key_of(b, sort), sort)

    return compare
