"""Decimal ↔ BSON Decimal128 without pymongo's bit-by-bit loops (the read path decodes every
stored decimal).

pymongo's ``Decimal128(Decimal)`` and ``to_decimal()`` walk the coefficient one bit at a time
inside a decimal context: tens of microseconds per number, paid for every decimal of every
resource read. Both directions here are a few integer operations on the IEEE 754-2008 BID
layout (sign bit, 14-bit biased exponent, 113-bit coefficient); anything outside the canonical
finite range (NaN, infinities, more than 34 digits, the "11" combination form) falls back to
pymongo, which raises or decodes it exactly as before.
"""

from __future__ import annotations

import struct
from decimal import Context, Decimal

from bson.decimal128 import Decimal128

_BIAS = 6176
_MAX_EXPONENT = 6111
_MAX_COEFFICIENT = 10**34 - 1  # above: non-canonical, read as zero by the standard
_LOW = (1 << 64) - 1
_HIGH_COEFFICIENT = (1 << 49) - 1
_SIGN = 1 << 63
_UNPACK = struct.Struct("<QQ").unpack
# Holds every finite Decimal128 value exactly (34 digits, its exponent range): no rounding.
_CTX = Context(prec=34, Emax=6144, Emin=-6143)


def to_bson(value: Decimal) -> Decimal128:
    """``value`` as Decimal128, significand and exponent kept (``100.00`` stays ``100.00``)."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or not -_BIAS <= exponent <= _MAX_EXPONENT:
        return Decimal128(value)
    if len(digits) > 34:
        return Decimal128(value)
    coefficient = int(value.copy_abs().scaleb(-exponent, _CTX))
    high = ((exponent + _BIAS) << 49) | (coefficient >> 64) | (_SIGN if sign else 0)
    # The documented (high bits, low bits) form; pymongo's annotation omits it.
    return Decimal128((high, coefficient & _LOW))  # type: ignore[arg-type]


# Decoded values by their 16 BID bytes: amounts, units and probabilities repeat across resources,
# and a Decimal is immutable, so one instance may serve every read (bounded; cleared when full).
_DECODED: dict[bytes, Decimal] = {}
_DECODED_MAX = 8192


def from_bson(value: Decimal128) -> Decimal:
    """The exact ``Decimal`` a Decimal128 holds."""
    bid = value.bid
    found = _DECODED.get(bid)
    if found is None:
        found = _decode(value, bid)
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[bid] = found
    return found


def _decode(value: Decimal128, bid: bytes) -> Decimal:
    low, high = _UNPACK(bid)
    if (high >> 61) & 3 == 3:  # NaN, infinities, or the non-canonical "11" form
        return value.to_decimal()
    coefficient = ((high & _HIGH_COEFFICIENT) << 64) | low
    if coefficient > _MAX_COEFFICIENT:
        return value.to_decimal()
    exact = Decimal(coefficient).scaleb(((high >> 49) & 0x3FFF) - _BIAS, _CTX)
    return exact.copy_negate() if high & _SIGN else exact
