"""Pure tests of exact-decimal JSON parsing and writing (``server.fhirjson``)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from server import fhirjson


@pytest.mark.parametrize(
    "text",
    [
        "100.00",
        "0.0000",
        "-0.5",
        "66.899999999999991",
        "0.0000001",
        "123456789012345678901234567890",
        "-0",
        "[1.50,2,-3.000]",
        '{"a":{"b":[0.10]}}',
    ],
)
def test_round_trip_is_text_exact(text: str) -> None:
    assert fhirjson.dumps(fhirjson.loads(text.encode())) == text.encode()


def test_integers_within_int64_stay_ints() -> None:
    assert fhirjson.loads(b"[9223372036854775807,-9223372036854775808,5]") == [
        2**63 - 1,
        -(2**63),
        5,
    ]
    assert all(type(v) is int for v in fhirjson.loads(b"[9223372036854775807,5]"))


def test_integers_beyond_int64_become_decimals() -> None:
    (value,) = fhirjson.loads(b"[9223372036854775808]")
    assert isinstance(value, Decimal) and value == 2**63


@pytest.mark.parametrize(
    "text",
    [
        b"NaN",
        b"Infinity",
        b"[1,]",
        b'"\\ud800"',
        b"1" * 35 + b".0",
        b"1e-7000",
        b"[" * 2000 + b"1.5" + b"]" * 2000,
    ],
)
def test_what_cannot_be_kept_exactly_or_is_not_json_is_refused(text: bytes) -> None:
    with pytest.raises(fhirjson.JsonError):
        fhirjson.loads(text)


@pytest.mark.parametrize("forged", ["\x00123", "\x00" + "0" * 16 + ":1.5", "\x00-"])
def test_a_client_string_cannot_forge_a_number(forged: str) -> None:
    value = {"s": forged, "n": Decimal("1.50")}
    assert json.loads(fhirjson.dumps(value)) == {"s": forged, "n": 1.5}


def test_same_tells_precision_apart() -> None:
    assert not fhirjson.same({"v": Decimal("1.5")}, {"v": Decimal("1.50")})
    assert fhirjson.same({"v": Decimal("1.5"), "w": 1}, {"w": 1, "v": Decimal("1.5")})


def test_copy_is_deep_and_keeps_decimals() -> None:
    original = {"a": [{"v": Decimal("1.50")}]}
    clone = fhirjson.copy(original)
    clone["a"][0]["v"] = Decimal("2")
    assert original == {"a": [{"v": Decimal("1.50")}]}
