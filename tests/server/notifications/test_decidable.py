"""Which search plans the residual matcher decides on one document exactly as the search does
(pure); the rest go to the database (restricted to the written ``_id``)."""

from __future__ import annotations

from typing import Any

import pytest

from server.notifications.outbox import decidable


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"idx.status": "final"}, True),
        ({"idx.status": {"$in": ["final", "amended"]}}, True),
        ({"idx.status": {"$nin": ["final"]}}, True),
        ({"idx.subject": None}, True),
        ({"idx.owner": {"$exists": True}}, True),
        ({"idx.date@hi": {"$gte": "2020-01-01T00:00:00.000Z"}}, True),
        ({"idx.name": {"$gte": "ada", "$lt": "ada\U0010ffff"}}, True),
        ({"idx.code": {"$not": {"$in": ["a"]}}}, True),
        ({"$or": [{"idx.a": "x"}, {"idx.b": "y"}]}, True),
        ({"_id": "abc"}, True),
        ({"idx.name": {"$regex": "ada"}}, False),  # Python's re is not MongoDB's PCRE
        ({"idx.value": {"$gt": 5}}, False),  # BSON orders mixed types differently
        ({"idx.status": {"$in": [1, 2]}}, False),
        ({"idx.status": {"$exists": True, "$ne": "x"}}, False),
        ({"idx.a": {"$elemMatch": {"$eq": "x"}}}, False),
        ({"resource.status": "final"}, False),  # only _id and idx fields
        ({"$where": "1"}, False),
        ({"$or": [{"idx.a": "x"}, {"idx.b": {"$regex": "y"}}]}, False),
    ],
)
def test_decidable(flt: dict[str, Any], expected: bool) -> None:
    assert decidable(flt) is expected
