"""JSON Patch (RFC 6902) and JSON Pointer (RFC 6901): table-driven, mostly from the RFCs."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import FhirError
from server.patch.jsonpatch import apply_patch, parse_pointer

CASES: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    (
        "A.1 add object member",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
    ),
    (
        "A.2 add array element",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    (
        "A.3 remove member",
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
    ),
    (
        "A.4 remove array element",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A.5 replace",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A.6 move member",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7 move array element",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8 test success",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A.10 add nested member",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A.16 add array value",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    (
        "A.14 ~ escape ordering",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
    ),
    ("escaped slash", {"a/b": 1}, [{"op": "replace", "path": "/a~1b", "value": 2}], {"a/b": 2}),
    (
        "copy",
        {"a": {"b": 1}},
        [{"op": "copy", "from": "/a", "path": "/c"}],
        {"a": {"b": 1}, "c": {"b": 1}},
    ),
    (
        "replace whole document",
        {"a": 1},
        [{"op": "replace", "path": "", "value": {"b": 2}}],
        {"b": 2},
    ),
    (
        "test object ignores key order",
        {"a": {"x": 1, "y": 2}},
        [{"op": "test", "path": "/a", "value": {"y": 2, "x": 1}}],
        {"a": {"x": 1, "y": 2}},
    ),
]


@pytest.mark.parametrize(("name", "doc", "patch", "expected"), CASES, ids=[c[0] for c in CASES])
def test_apply(name: str, doc: Any, patch: list[dict[str, Any]], expected: Any) -> None:
    assert apply_patch(doc, patch) == expected


FAILURES: list[tuple[str, Any, Any, int]] = [
    ("A.9 test failure", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], 422),
    (
        "A.12 add to nonexistent target",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        422,
    ),
    (
        "A.15 string vs number",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": "10"}],
        422,
    ),
    ("1 is not true", {"a": True}, [{"op": "test", "path": "/a", "value": 1}], 422),
    ("A.13 unknown op", {}, [{"op": "bogus", "path": "/a"}], 400),
    ("missing value", {}, [{"op": "add", "path": "/a"}], 400),
    ("missing from", {}, [{"op": "move", "path": "/a"}], 400),
    ("pointer without slash", {}, [{"op": "remove", "path": "a"}], 400),
    ("bad escape", {"a": 1}, [{"op": "remove", "path": "/a~2"}], 400),
    ("not a list", {}, {"op": "add"}, 400),
    ("remove missing", {"a": 1}, [{"op": "remove", "path": "/b"}], 422),
    ("index out of range", {"a": [1]}, [{"op": "add", "path": "/a/5", "value": 1}], 422),
    ("leading zero index", {"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}], 422),
    ("move into own child", {"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], 422),
    ("replace missing", {"a": 1}, [{"op": "replace", "path": "/b", "value": 2}], 422),
]


@pytest.mark.parametrize(("name", "doc", "patch", "status"), FAILURES, ids=[c[0] for c in FAILURES])
def test_failures(name: str, doc: Any, patch: Any, status: int) -> None:
    with pytest.raises(FhirError) as info:
        apply_patch(doc, patch)
    assert info.value.status == status


def test_failed_patch_leaves_input_untouched() -> None:
    doc = {"a": [1, 2]}
    with pytest.raises(FhirError):
        apply_patch(
            doc, [{"op": "remove", "path": "/a/0"}, {"op": "test", "path": "/a/0", "value": 9}]
        )
    assert doc == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("", []),
        ("/", [""]),
        ("/a~1b", ["a/b"]),
        ("/m~0n", ["m~n"]),
        ("/~01", ["~1"]),
        ("/a/0", ["a", "0"]),
    ],
)
def test_pointer(pointer: str, tokens: list[str]) -> None:
    assert parse_pointer(pointer) == tokens
