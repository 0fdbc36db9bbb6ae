"""The ``ks`` keys and the rewrite of a query's driving conjunct (pure; see server/search/keys.py)."""

from __future__ import annotations

from typing import Any

import pytest

from server.search.index import extract_index, search_keys
from server.search.keys import (
    BUCKETS,
    KSEP,
    KSEP_NEXT,
    KeyLayout,
    Window,
    drive,
    elem_match,
    key,
    keys_of,
    translate,
    walks_live,
    window_keys,
    window_of,
)
from server.search.text import STRING_TOP

KEYED = frozenset({"family", "code", "date@lo", "patient+status", "@patient"})
F = "family" + KSEP


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("oka", (F + "oka", True)),
        ({"$eq": "oka"}, (F + "oka", True)),
        ({"$in": ["a", "b"]}, ({"$in": [F + "a", F + "b"]}, True)),
        ({"$gte": "oka", "$lt": "okb"}, ({"$gte": F + "oka", "$lt": F + "okb"}, True)),
        # closed forms: > k is >= k + NUL, <= k is < k + NUL (SecantusDB walks the equal keys)
        ({"$gt": "m"}, ({"$gte": F + "m\x00", "$lt": "family" + KSEP_NEXT}, True)),
        ({"$lte": "m"}, ({"$lt": F + "m\x00", "$gte": F}, True)),
        ({"$gt": "a", "$gte": "b"}, ({"$gte": F + "b", "$lt": "family" + KSEP_NEXT}, True)),
        ({"$exists": True}, ({"$gte": F, "$lt": "family" + KSEP_NEXT}, True)),
        ({"$regex": "ka"}, ({"$gte": F, "$lt": "family" + KSEP_NEXT}, False)),
        (None, None),
        ({"$exists": False}, None),
        ({"$nin": ["a"]}, None),
        ({"$not": {"$gte": "a"}}, None),
        ({"$in": []}, None),
        ({"$in": ["a", 1]}, None),
        ({"$gte": 5}, None),
        (5, None),
    ],
)
def test_translate(cond: Any, expected: Any) -> None:
    assert translate("family", cond) == expected


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        # the planner's driver is replaced by its exact key condition
        ([{"idx.family": "oka"}, {}], [{"ks": F + "oka"}, {}]),
        # only the first drivable conjunct drives; the rest stay for the database to filter
        (
            [{"idx.family": "oka", "idx.code": "x"}, {}],
            [{"idx.code": "x", "ks": F + "oka"}, {}],
        ),
        # not keyed (the field has no keys) or not drivable: left as it is
        ([{"idx.other": "x"}, {}], [{"idx.other": "x"}, {}]),
        ([{"idx.family": None}, {}], [{"idx.family": None}, {}]),
        # a superset drive keeps the original condition
        (
            [{"idx.family": {"$regex": "ka"}}, {}],
            [{"idx.family": {"$regex": "ka"}, "ks": {"$gte": F, "$lt": "family" + KSEP_NEXT}}, {}],
        ),
        # the access filter drives when the search has nothing to drive with
        (
            [{"idx.family": None}, {"idx.@patient": {"$in": ["Patient/1"]}}],
            [{"idx.family": None}, {"ks": {"$in": ["@patient" + KSEP + "Patient/1"]}}],
        ),
        # an OR of equalities is one $in of keys
        (
            [{"$or": [{"idx.family": "a"}, {"idx.code": {"$in": ["b", "c"]}}]}, {}],
            [{"ks": {"$in": [F + "a", "code" + KSEP + "b", "code" + KSEP + "c"]}}, {}],
        ),
        # an OR with a range stays (executed as a union of scans upstream)
        (
            [{"$or": [{"idx.family": "a"}, {"idx.code": {"$gte": "b"}}]}, {}],
            [{"$or": [{"idx.family": "a"}, {"idx.code": {"$gte": "b"}}]}, {}],
        ),
        # an _id anywhere: the _id index is better, nothing is rewritten
        ([{"idx.family": "oka"}, {"_id": "p1"}], [{"idx.family": "oka"}, {"_id": "p1"}]),
        # inside $and
        (
            [{"$and": [{"idx.family": "a"}, {"idx.family": {"$gte": "a"}}]}, {}],
            [{"$and": [{"idx.family": {"$gte": "a"}}], "ks": F + "a"}, {}],
        ),
    ],
)
def test_drive(parts: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert drive(KeyLayout(KEYED), parts) == (expected, [])


@pytest.mark.parametrize(
    ("query", "walks"),
    [
        ({"deleted": False, "idx.family": None}, True),
        ({"deleted": False, "$and": [{"idx.a": {"$nin": ["x"]}}]}, True),
        ({"deleted": False, "ks": "x", "idx.family": None}, False),
        ({"deleted": False}, False),
        ({"deleted": False, "idx.family": None, "acl.owners": "o"}, False),
        ({"idx.family": None}, False),
    ],
)
def test_walks_live(query: dict[str, Any], walks: bool) -> None:
    assert walks_live(query) is walks


def test_keys_keep_the_value_order_inside_a_field() -> None:
    values = ["", "a", "a\x1e", "ab", "b", "\U0010fffe"]
    keys = [key("family", v) for v in values]
    assert keys == sorted(keys)
    assert all(F <= k < "family" + KSEP_NEXT for k in keys)
    # a field whose name extends another's never falls inside the shorter one's range
    assert not (F <= key("family@exact", "a") < "family" + KSEP_NEXT)


def test_keys_of_takes_only_text_values_of_keyed_fields() -> None:
    idx = {"family": ["oka", 3], "other": ["x"], "code": ["c"]}
    assert keys_of(KEYED, idx) == [F + "oka", "code" + KSEP + "c"]


def test_a_resource_gets_one_key_per_indexed_value() -> None:
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2020-01-02",
    }
    idx = extract_index("Observation", obs)
    ks = search_keys("Observation", idx)
    assert "code" + KSEP + "http://loinc.org|2345-7" in ks
    assert "subject" + KSEP + "Patient/p1" in ks
    assert "@patient" + KSEP + "Patient/p1" in ks
    assert any(k.startswith("patient+status" + KSEP) for k in ks)
    assert all(isinstance(k, str) for k in ks) and len(ks) == len(set(ks))


# --------------------------------------------------------------------------------- windows
WINDOWED = frozenset({"family", "code"})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"deleted": False, "ks": F + "oka"}, Window("family", "oka", False)),
        (
            {"deleted": False, "ks": {"$gte": F + "ok", "$lt": F + "ok" + STRING_TOP}},
            Window("family", "ok", True),
        ),
        ({"deleted": False, "ks": "date@lo" + KSEP + "2020"}, None),  # not a windowed field
        ({"deleted": False, "ks": F + "oka", "idx.given": "x"}, None),  # a second condition
        ({"ks": F + "oka"}, None),  # deleted documents included
        ({"deleted": False, "ks": {"$gte": F + "a", "$lt": F + "b"}}, None),  # not a prefix
        ({"deleted": False, "ks": {"$in": [F + "a", F + "b"]}}, None),
        ({"deleted": False, "ks": {"$gte": F, "$lt": F + STRING_TOP}}, None),  # empty prefix
    ],
)
def test_window_of(query: dict[str, Any], expected: Window | None) -> None:
    assert window_of(WINDOWED, query) == expected


def test_window_keys_follow_the_windowed_keys_with_the_bucket() -> None:
    ks = [F + "oka", "code" + KSEP + "c", "date@lo" + KSEP + "2020"]
    assert window_keys(WINDOWED, ks, "00ff") == [F + "oka\x1d00ff", "code" + KSEP + "c\x1d00ff"]


def test_a_window_is_a_bucket_range_of_its_key() -> None:
    w = Window("family", "oka", False)
    plain = w.query(16, BUCKETS, elem_match=False)
    assert plain == {"deleted": False, "kw": {"$gte": F + "oka\x1d0010", "$lt": F + "oka\x1d~"}}
    # MongoDB bounds a multikey range at both ends only under $elemMatch
    assert w.query(16, BUCKETS, elem_match=True)["kw"] == {"$elemMatch": plain["kw"]}
    assert w.check(0, 16) == {"ks": F + "oka", "kb": {"$gte": "0000", "$lt": "0010"}}
    every = [F + "oka\x1d" + f"{b:04x}" for b in (0, 15, 16, 0xFFFF)]
    assert [plain["kw"]["$gte"] <= k < plain["kw"]["$lt"] for k in every] == [
        False,
        False,
        True,
        True,
    ]


def test_a_prefix_window_reads_longer_values_apart() -> None:
    longer = Window("family", "ok", True).longer_query()["ks"]
    inside = [F + "oka", F + "ok\x1dx", F + "ok" + "\U0010fffe"]
    assert all(longer["$gte"] <= k < longer["$lt"] for k in inside)
    assert not longer["$gte"] <= F + "ok" < longer["$lt"]  # the prefix itself is windowed


def test_mongodb_gets_ranges_on_keys_under_elem_match() -> None:
    rng = {"$gte": F + "a", "$lt": F + "b"}
    query = {"deleted": False, "ks": rng, "$and": [{"ks": {"$gt": F + "c"}}, {"x": {"$gt": 1}}]}
    assert elem_match(query) == {
        "deleted": False,
        "ks": {"$elemMatch": rng},
        "$and": [{"ks": {"$elemMatch": {"$gt": F + "c"}}}, {"x": {"$gt": 1}}],
    }
    # an equality, $in, or an already wrapped window stays as it is
    same = {"deleted": False, "ks": {"$in": [F + "a"]}, "kw": {"$elemMatch": rng}}
    assert elem_match(same) == same
    assert elem_match({"ks": F + "a"}) == {"ks": F + "a"}


@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
def test_the_closed_form_of_a_bound_keeps_the_same_values(op: str) -> None:
    values = ["", "l", "lz", "m", "m\x00", "m ", "ma", "n", "\U0010fffe"]
    ks, _ = translate("family", {op: "m"})  # type: ignore[misc]
    inside = [v for v in values if ks["$gte"] <= key("family", v) < ks["$lt"]]
    python = {"$gt": "__gt__", "$gte": "__ge__", "$lt": "__lt__", "$lte": "__le__"}[op]
    assert inside == [v for v in values if getattr(v, python)("m")]
