"""The pure key order of keyset paging (server/search/keyset.py): MongoDB's sort, in Python."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from server.search.keyset import compare_keys, key_of, keyset_pageable, sort_value
from server.search.model import SortKey


@pytest.mark.parametrize(
    ("doc", "field", "direction", "expected"),
    [
        ({"idx": {"family": ["b", "a", "c"]}}, "idx.family", 1, "a"),  # ascending: the minimum
        ({"idx": {"family": ["b", "a", "c"]}}, "idx.family", -1, "c"),  # descending: the maximum
        ({"idx": {}}, "idx.family", 1, None),  # missing
        ({"idx": {"family": []}}, "idx.family", 1, None),
        ({"idx": {"family": [None, "x"]}}, "idx.family", 1, "x"),
        ({"_id": "p1"}, "_id", 1, "p1"),
        ({"idx": {"n": [Decimal("2.5"), Decimal("10")]}}, "idx.n", 1, Decimal("2.5")),
    ],
)
def test_sort_value_is_what_mongodb_sorts_by(
    doc: dict[str, Any], field: str, direction: int, expected: Any
) -> None:
    assert sort_value(doc, field, direction) == expected


ASC = [("idx.family", 1), ("_id", 1)]
DESC = [("idx.family", -1), ("_id", 1)]


@pytest.mark.parametrize(
    ("a", "b", "sort", "expected"),
    [
        (["a", "p1"], ["b", "p0"], ASC, -1),
        (["a", "p1"], ["a", "p0"], ASC, 1),  # tie broken by _id
        (["a", "p1"], ["a", "p1"], ASC, 0),
        ([None, "p9"], ["a", "p0"], ASC, -1),  # nulls first ascending
        ([None, "p9"], ["a", "p0"], DESC, 1),  # and last descending
        (["b", "p0"], ["a", "p0"], DESC, -1),
        ([Decimal("10"), "p0"], [Decimal("9"), "p0"], ASC, 1),  # numbers by value, not text
        (["Z", "p0"], ["a", "p0"], ASC, -1),  # code-point order, as BSON compares UTF-8 bytes
    ],
)
def test_compare_keys(
    a: list[Any], b: list[Any], sort: list[tuple[str, int]], expected: int
) -> None:
    assert compare_keys(a, b, sort) == expected


def test_key_of_takes_every_sort_field_in_order() -> None:
    doc = {"_id": "p1", "idx": {"family": ["x", "b"], "gender": ["male"]}}
    assert key_of(doc, [("idx.gender", 1), ("idx.family", -1), ("_id", 1)]) == ["male", "x", "p1"]


@pytest.mark.parametrize(
    ("resource_type", "codes", "expected"),
    [
        ("Patient", ["family", "-birthdate", "gender"], True),  # string, date, token
        ("Patient", ["_id", "_lastUpdated"], True),
        ("Observation", ["value-quantity"], False),  # quantity: result-set fallback
        ("Observation", ["code-value-quantity"], False),  # composite
        ("Patient", ["no-such-param"], True),  # dropped by sort_spec
    ],
)
def test_keyset_pageable(resource_type: str, codes: list[str], expected: bool) -> None:
    keys = [SortKey(c.lstrip("-"), c.startswith("-")) for c in codes]
    assert keyset_pageable(resource_type, keys) is expected
