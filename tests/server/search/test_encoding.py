"""Table-driven tests of the value encodings shared by extraction and queries (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from server.search.index import extract_index
from server.search.residual import matches
from server.search.text import (
    normalize,
    parse_date,
    parse_number,
    query_date_key,
    sortable_number,
    split_unescaped,
    unescape,
)


@pytest.mark.parametrize(
    ("raw", "lo", "hi", "keys"),
    [
        ("1970", "1970-01-01T00:00:00.000Z", "1970-12-31T23:59:59.999Z", ("1970",)),
        ("1970-03", "1970-03-01T00:00:00.000Z", "1970-03-31T23:59:59.999Z", ("1970", "1970-03")),
        ("2024-02", "2024-02-01T00:00:00.000Z", "2024-02-29T23:59:59.999Z", ("2024", "2024-02")),
        (
            "1970-03-15",
            "1970-03-15T00:00:00.000Z",
            "1970-03-15T23:59:59.999Z",
            ("1970", "1970-03", "1970-03-15"),
        ),
        (
            "2020-01-01T10:00:00+02:00",
            "2020-01-01T08:00:00.000Z",
            "2020-01-01T08:00:00.999Z",
            ("2020", "2020-01", "2020-01-01", "2020-01-01T08:00", "2020-01-01T08:00:00"),
        ),
        (
            "2019-12-31T23:30:00-02:00",
            "2020-01-01T01:30:00.000Z",
            "2020-01-01T01:30:00.999Z",
            ("2020", "2020-01", "2020-01-01", "2020-01-01T01:30", "2020-01-01T01:30:00"),
        ),
        (
            "2020-01-01T10:00Z",
            "2020-01-01T10:00:00.000Z",
            "2020-01-01T10:00:59.999Z",
            ("2020", "2020-01", "2020-01-01", "2020-01-01T10:00"),
        ),
        (
            "2020-01-01T10:00:00.123Z",
            "2020-01-01T10:00:00.123Z",
            "2020-01-01T10:00:00.123Z",
            ("2020", "2020-01", "2020-01-01", "2020-01-01T10:00", "2020-01-01T10:00:00"),
        ),
    ],
)
def test_date_ranges(raw: str, lo: str, hi: str, keys: tuple[str, ...]) -> None:
    r = parse_date(raw)
    assert r is not None
    assert (r.lo, r.hi, r.keys) == (lo, hi, keys)


@pytest.mark.parametrize(
    "raw", ["", "19", "1970-13", "1970-02-30", "soon", "1970-01-01T25:00Z", "1970/01"]
)
def test_bad_dates(raw: str) -> None:
    assert parse_date(raw) is None


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("1970", "1970"),
        ("1970-03-15", "1970-03-15"),
        ("2020-01-01T00:30:00+01:00", "2019-12-31T23:30:00"),
    ],
)
def test_query_date_key(raw: str, key: str) -> None:
    assert query_date_key(raw) == key


@pytest.mark.parametrize(
    ("raw", "low", "high"),
    [
        ("100", "99.5", "100.5"),
        ("100.0", "99.95", "100.05"),
        ("1e2", "50", "150"),
        ("-0.5", "-0.55", "-0.45"),
        ("100.00", "99.995", "100.005"),
        ("0.0000", "-0.00005", "0.00005"),
        ("66.899999999999991", "66.8999999999999905", "66.8999999999999915"),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567889.5",
            "123456789012345678901234567890.5",
        ),
    ],
)
def test_number_implicit_precision(raw: str, low: str, high: str) -> None:
    """Exact decimals: no binary rounding, even beyond 28 digits (Decimal's default context)."""
    n = parse_number(raw)
    assert n is not None
    assert n.low == Decimal(low) and n.high == Decimal(high)


@pytest.mark.parametrize("raw", ["", "abc", "1,5", "nan", "inf", "--1"])
def test_bad_numbers(raw: str) -> None:
    assert parse_number(raw) is None


def test_sortable_numbers_keep_numeric_order() -> None:
    values = [-1e300, -5.5, -1.0, -0.0001, 0.0, 1e-9, 0.5, 1.0, 2.0, 10.0, 1e300]
    assert sorted(values, key=sortable_number) == values


def test_sortable_numbers_keep_exact_decimal_order() -> None:
    """Neighbours a double cannot tell apart, negatives sharing a prefix, integers past 2**53."""
    texts = [
        "-123456789012345678901234567890",
        "-0.123",
        "-0.12",
        "-1E-30",
        "0",
        "1E-30",
        "66.89999999999999",
        "66.899999999999991",
        "66.8999999999999915",
        "9007199254740993",
        "123456789012345678901234567889",
        "123456789012345678901234567890",
    ]
    values = [Decimal(t) for t in texts]
    assert sorted(values, key=sortable_number) == values
    assert len({sortable_number(v) for v in values}) == len(values)


@pytest.mark.parametrize(("a", "b"), [("1.5", "1.50"), ("100", "1E+2"), ("0", "-0.000")])
def test_sortable_number_is_the_value_not_the_precision(a: str, b: str) -> None:
    assert sortable_number(Decimal(a)) == sortable_number(Decimal(b))


@pytest.mark.parametrize(
    ("raw", "sep", "parts"),
    [
        ("a,b", ",", ["a", "b"]),
        (r"a\,b,c", ",", [r"a\,b", "c"]),
        (r"s|c\|d", "|", ["s", r"c\|d"]),
        (r"a\\,b", ",", [r"a\\", "b"]),
        (r"x$y\$z", "$", ["x", r"y\$z"]),
    ],
)
def test_split_unescaped(raw: str, sep: str, parts: list[str]) -> None:
    assert split_unescaped(raw, sep) == parts


def test_unescape() -> None:
    assert unescape(r"a\,b\|c\$d\\e") == r"a,b|c$d\e"


@pytest.mark.parametrize(
    ("raw", "norm"), [("  Éloïse  MÜLLER ", "eloise muller"), ("Straße", "strasse")]
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize(raw) == norm


@pytest.mark.parametrize(
    ("frag", "doc", "expected"),
    [
        ({"idx.n": {"$gte": "c", "$lt": "d"}}, {"idx": {"n": ["beta", "zulu"]}}, False),
        ({"idx.n": {"$gte": "c", "$lt": "d"}}, {"idx": {"n": ["beta", "cat"]}}, True),
        ({"idx.n": "x"}, {"idx": {"n": ["x", "y"]}}, True),
        ({"idx.n": {"$in": ["q", "y"]}}, {"idx": {"n": ["x", "y"]}}, True),
        ({"idx.n": {"$nin": ["y"]}}, {"idx": {"n": ["x", "y"]}}, False),
        ({"idx.n": {"$exists": False}}, {"idx": {}}, True),
        ({"$or": [{"idx.n": "a"}, {"idx.m": "b"}]}, {"idx": {"m": ["b"]}}, True),
        ({"_id": {"$in": ["1"]}}, {"_id": "1"}, True),
        ({"idx.v": {"$not": {"$gte": 1.0, "$lt": 2.0}}}, {"idx": {"v": [1.5]}}, False),
    ],
)
def test_residual_matches_element_wise(
    frag: dict[str, Any], doc: dict[str, Any], expected: bool
) -> None:
    assert matches(frag, doc) is expected


def test_extraction_of_a_patient() -> None:
    idx = extract_index(
        "Patient",
        {
            "resourceType": "Patient",
            "id": "p",
            "identifier": [{"system": "urn:x", "value": "1"}],
            "name": [{"family": "Müller", "given": ["Jürgen"]}],
            "telecom": [{"system": "email", "value": "j@x.org"}],
            "birthDate": "1970",
            "generalPractitioner": [{"reference": "http://h/fhir/Practitioner/9/_history/2"}],
            "managingOrganization": {"reference": "Organization/o", "identifier": {"value": "7"}},
        },
    )
    assert idx["identifier"] == ["urn:x|1", "1"]
    assert idx["name"] == ["muller", "jurgen"] and idx["name@exact"] == ["Müller", "Jürgen"]
    assert idx["email"] == ["email|j@x.org", "j@x.org"]
    assert idx["birthdate@eq"] == ["1970"]
    assert idx["general-practitioner"] == ["http://h/fhir/Practitioner/9"]
    assert idx["organization"] == ["Organization/o"] and idx["organization@id"] == ["|7", "7"]
    assert idx["@patient"] == ["Patient/p"]


def test_extraction_of_observation_compartment_and_compounds() -> None:
    idx = extract_index(
        "Observation",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1-1"}]},
            "subject": {"reference": "Patient/p"},
            "effectivePeriod": {"start": "2020-01-01", "end": "2020-01-20"},
        },
    )
    assert idx["@patient"] == ["Patient/p"]
    assert "Patient/p\x1ffinal" in idx["patient+status"]
    assert idx["date@eq"] == ["2020", "2020-01"]
    assert idx["date@lo"] == ["2020-01-01T00:00:00.000Z"]
    assert idx["date@hi"] == ["2020-01-20T23:59:59.999Z"]
