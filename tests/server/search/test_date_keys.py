"""A date ``eq`` search drives on the ``@lo`` range it implies (``types.date.build``) instead of
``@eq`` keys: that range must hold every value ``@eq`` matches, whatever the precisions and
time zones of the stored value and of the query."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.search.index import extract_index, search_keys
from server.search.keys import KSEP
from server.search.types.date import extract, parse
from tests.server.search.conftest import ids

STORED: list[Any] = [
    "2024",
    "2024-01",
    "2024-01-10",
    "2024-01-10T09:10Z",
    "2024-01-10T09:10:00Z",
    "2024-01-10T23:30:00-02:00",
    "2024-01-11T00:30:00+05:30",
    "2024-01-10T09:10:00.123+14:00",
    "2023-12-31T20:00:00-12:00",
    "2024-12-31T23:59:59.999Z",
    "2024-02-29",
    {"start": "2024-01-10", "end": "2024-01-12"},
    {"start": "2024-01-10T09:00:00Z", "end": "2024-01-10T09:30:00Z"},
    {"start": "2024-01"},
    {"end": "2024-01-10"},
]
QUERIES = [
    "2024",
    "2024-01",
    "2024-01-10",
    "2024-01-11",
    "2023-12-31",
    "2024-12-31",
    "2024-01-10T09:10",
    "2024-01-10T09:10:00",
    "2024-01-10T09:10Z",
    "2024-01-10T09:10+02:00",
    "2024-01-10T07:10:00-02:00",
    "2024-01-11T01:30:00Z",
    "2024-01-10T20:00:00-05:00",
    "2024-01-10T09:10:00.123+14:00",
]


@pytest.mark.parametrize("value", STORED, ids=str)
def test_every_eq_match_starts_within_the_query_unit(value: Any) -> None:
    idx = extract("d", [value])
    for q in QUERIES:
        _, r, key = parse(q)
        if key in idx.get("d@eq", []):
            assert any(r.lo <= lo <= r.hi for lo in idx["d@lo"]), (value, q)


def test_the_property_is_not_vacuous() -> None:
    matches = sum(parse(q)[2] in extract("d", [v]).get("d@eq", []) for v in STORED for q in QUERIES)
    assert matches >= 30


def test_precision_keys_stay_in_idx_but_are_not_index_keys() -> None:
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "effectiveDateTime": "2024-01-10T09:10:00Z",
    }
    idx = extract_index("Observation", obs)
    assert "2024-01-10" in idx["date@eq"]
    fields = {k.partition(KSEP)[0] for k in search_keys("Observation", idx)}
    assert {"date@lo", "date@hi", "code+date@lo"} <= fields
    assert not {f for f in fields if f.endswith("@eq")}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("Observation?date=2020-02", ["Observation/o2"]),
        ("Observation?date=2020-01-02,2021-06", ["Observation/o1", "Observation/o3"]),
        ("Observation?date=2020-01-02T12:00+02:00", ["Observation/o1"]),  # 10:00Z
        ("Observation?date=2020-01-01", ["Observation/o4"]),  # 2019-12-31T23:30-02:00
        ("Observation?code=2345-7&date=2020-02", ["Observation/o2"]),  # code+date@lo
        (
            "Observation?code=http://loinc.org|2345-7&date=2020",
            ["Observation/o1", "Observation/o2", "Observation/o4"],  # o4: 01:30Z, Jan 1
        ),
        ("Observation?date=2019-06-01", []),  # long1 starts that day but lasts a year
        ("Observation?date=2019", []),
        ("Observation?date=ne2020-01&code=2345-7", ["Observation/o2"]),
    ],
)
def test_eq_search(data_client: TestClient, url: str, expected: list[str]) -> None:
    r = data_client.get(f"/fhir/{url}")
    assert r.status_code == 200, r.text
    assert sorted(ids(r.json())) == expected
