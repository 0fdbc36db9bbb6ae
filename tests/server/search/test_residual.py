"""The Python re-check: which filters it may decide instead of the database, and how."""

from __future__ import annotations

from typing import Any

import pytest

from server.search import residual
from server.search.residual import project

DOC: dict[str, Any] = {
    "_id": "t1",
    "acl": {"orgs": ["clinic-a"], "patients": ["pat-a"], "requests": ["sr-a"]},
    "idx": {"category": ["http://x|lab"]},
}


@pytest.mark.parametrize(
    ("flt", "exact"),
    [
        ({"acl.orgs": "clinic-a"}, True),
        ({"acl.patients": {"$in": ["pat-a", "pat-b"]}}, True),
        ({"acl.patients": {"$in": []}}, True),
        ({"_id": {"$in": ["t1"]}}, True),
        ({"acl.requests.0": {"$exists": True}}, True),
        ({"$or": [{"acl.orgs": "a"}, {"idx.category": {"$in": ["x"]}}]}, True),
        ({"$and": [{"acl.orgs": "a"}, {"acl.patients": "p"}]}, True),
        ({"$or": []}, False),
        ({"acl.orgs": {"$ne": "a"}}, False),
        ({"acl.orgs": {"$regex": "a"}}, False),
        ({"acl.orgs": {"$in": [1]}}, False),
        ({"acl.orgs": {"$in": ["a"], "$exists": True}}, False),
        ({"acl.count": 3}, False),
        ({"acl.orgs": None}, False),
        ({"resource.organization.reference": "Organization/x"}, False),
        ({"acl.nested.deeper": "x"}, False),
        ({"$where": "1"}, False),
        ({"$nor": [{"acl.orgs": "a"}]}, False),
    ],
)
def test_only_filters_decided_exactly_leave_the_database(flt: dict[str, Any], exact: bool) -> None:
    assert residual.exact(flt) is exact


@pytest.mark.parametrize(
    ("flt", "matches"),
    [
        ({"acl.orgs": "clinic-a"}, True),
        ({"acl.orgs": "clinic-b"}, False),
        ({"acl.patients": {"$in": ["pat-b", "pat-a"]}}, True),
        ({"_id": {"$in": []}}, False),
        ({"acl.requests.0": {"$exists": True}}, True),
        ({"acl.requests.1": {"$exists": True}}, False),
        ({"acl.payors": "insurer-x"}, False),
        ({"$or": [{"acl.orgs": "clinic-b"}, {"idx.category": {"$in": ["http://x|lab"]}}]}, True),
        ({"$and": [{"acl.orgs": "clinic-a"}, {"acl.patients": "pat-b"}]}, False),
    ],
)
def test_access_filters_are_decided_like_mongodb(flt: dict[str, Any], matches: bool) -> None:
    assert residual.matches(flt, DOC) is matches


def test_projection_carries_checked_fields_without_path_collisions() -> None:
    checks = [{"acl.requests.0": {"$exists": True}, "acl.patients": {"$in": ["p"]}}]
    assert project({"_id": 1, "acl": 1}, checks) == {"_id": 1, "acl": 1}
    assert project({"_id": 1, "idx.code": 1}, checks) == {
        "_id": 1,
        "acl.patients": 1,
        "acl.requests": 1,
        "idx.code": 1,
    }
