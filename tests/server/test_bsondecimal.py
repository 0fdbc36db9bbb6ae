"""The fast Decimal128 codec agrees bit for bit with pymongo's reference implementation."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from bson.decimal128 import Decimal128

from server.bsondecimal import from_bson, to_bson

EDGES = [
    "0",
    "-0",
    "0.0000",
    "-0E+5",
    "100.00",
    "1.50",
    "-0.5",
    "66.899999999999991",
    "1E+2",
    "1.0E+3",
    "1E-6176",
    "-0E-6176",
    "9" * 34,
    "-" + "9" * 34 + "E+6111",
    "9" * 34 + "E-6176",
    "1234567890123456789012345678.901234",
    "123456789012345678901234567890",
    "9223372036854775808",
]


def _random_values(count: int) -> list[str]:
    rng = random.Random(20261202)
    out = []
    for _ in range(count):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 34)))
        out.append(f"{rng.choice(['', '-'])}{digits}E{rng.randint(-6176, 6111)}")
    return out


@pytest.mark.parametrize("text", EDGES + _random_values(300))
def test_encoding_matches_pymongo(text: str) -> None:
    assert to_bson(Decimal(text)).bid == Decimal128(Decimal(text)).bid


@pytest.mark.parametrize("text", EDGES + _random_values(300))
def test_decoding_keeps_significand_and_exponent(text: str) -> None:
    value = from_bson(Decimal128(Decimal(text)))
    assert value.as_tuple() == Decimal(text).as_tuple()


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_special_values_fall_back_to_pymongo(text: str) -> None:
    assert str(from_bson(Decimal128(text))) == str(Decimal128(text).to_decimal())


def test_more_digits_than_decimal128_holds_is_refused_as_pymongo_does() -> None:
    with pytest.raises(ArithmeticError):
        to_bson(Decimal("1." + "1" * 40))
