"""FHIR JSON text to Python values and back, keeping every decimal exactly as the client sent it.

Why: FHIR says the precision of a decimal is significant (datatypes.html#decimal, json.html):
``100.00`` is not ``100.0`` and ``66.899999999999991`` is not ``66.89999999999999``. A binary
float keeps neither, so numbers with a fraction or an exponent are parsed into ``Decimal`` (which
keeps significand and exponent), stored as BSON Decimal128 (``server.database``) and written back
as the same digits.

- ``loads``: orjson first (strict JSON: no NaN, no lone surrogates, a depth limit, fast errors);
  when the text can hold a non-integer or a 19+ digit number, the stdlib decoder re-reads it with
  ``parse_float=Decimal``. Integers within int64 stay ``int``; larger ones (BSON has no bigger
  integer) and ``-0`` become ``Decimal``. A number Decimal128 cannot hold exactly (more than 34
  significant digits, an exponent beyond its range) is refused rather than silently rounded, and
  orjson refuses magnitudes beyond a double's (1e309).
- ``dumps``: orjson, with each ``Decimal`` turned into a sentinel string (a NUL, a random
  per-process token, then the number's text) that a bytes substitution turns back into the bare
  number. No client string can hold the token, and the substitution only accepts number text.
- Output text: a decimal sent without an exponent comes back digit for digit. One sent with an
  exponent keeps its value and precision, not its spelling: ``1.50e1`` → ``15.0``, ``1e-7`` →
  ``0.0000001`` (plain notation whenever the last significant digit is at or right of the point)
  and ``1e2`` → ``1E+2``, ``1.0e3`` → ``1.0E+3`` (scientific when it lies left of the point,
  because ``100`` would claim three significant digits).
"""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Any

import orjson

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DECIMAL128_DIGITS = 34
# Decimal128 holds coefficient * 10**exponent with exponent in [-6176, 6111] (IEEE 754-2008).
DECIMAL128_MIN_EXP = -6176
DECIMAL128_MAX_EXP = 6111
# A NUL (which orjson escapes as \u0000) and a per-process random token: no client string can
# spell it, so only the server's own sentinels turn back into numbers.
_TOKEN = secrets.token_hex(8)
SENTINEL = f"\x00{_TOKEN}:"
_SENTINEL_BYTES = b'"\\u0000' + _TOKEN.encode()
_NUMBER_SENTINEL = re.compile(
    re.escape(_SENTINEL_BYTES) + rb':(-?[0-9]+(?:\.[0-9]+)?(?:E[+-][0-9]+)?)"'
)
# Text that may hold a number orjson would not keep exactly: a fraction or an exponent (float),
# a 19+ digit integer (beyond int64), ``-0`` (int 0). False positives (dates, versions in
# strings) only cost a second parse.
_MAY_NEED_EXACT = re.compile(rb"[0-9][.eE]|[0-9]{19}|-0(?![0-9.eE])")


class JsonError(ValueError):
    """The text is not JSON, or holds a number the server cannot store exactly."""


def _decimal(text: str) -> Decimal:
    d = Decimal(text)
    _, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)  # JSON has no NaN/Infinity; orjson refused them already
    if len(digits) > DECIMAL128_DIGITS or not (
        DECIMAL128_MIN_EXP <= exponent <= DECIMAL128_MAX_EXP
    ):
        raise JsonError(
            f"the number {text[:60]} cannot be stored exactly: at most {DECIMAL128_DIGITS} "
            "significant digits and an exponent within ±6000 are supported"
        )
    return d


def _integer(text: str) -> int | Decimal:
    value = int(text)
    if INT64_MIN <= value <= INT64_MAX and text != "-0":
        return value
    return _decimal(text)


_DECODER = json.JSONDecoder(parse_float=_decimal, parse_int=_integer)


def loads(raw: bytes | str) -> Any:
    """Parse JSON text; every non-integer number is a ``Decimal`` holding the digits as sent."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise JsonError(str(exc)) from exc
    data = raw.encode() if isinstance(raw, str) else raw
    if not _MAY_NEED_EXACT.search(data):
        return value
    try:
        return _DECODER.decode(data.decode("utf-8"))
    except RecursionError as exc:  # orjson allows 1024 levels, the stdlib scanner a little less
        raise JsonError("the JSON is nested too deeply") from exc
    except JsonError:
        raise
    except ValueError as exc:  # pragma: no cover - orjson accepted the same text
        raise JsonError(str(exc)) from exc


def number_text(d: Decimal) -> str:
    """The JSON text of a decimal: its digits, plain unless its precision ends left of the point."""
    if not d.is_finite():
        raise TypeError(f"{d} is not a JSON number")
    text = str(d)
    # str() is plain for exponent <= 0 except tiny values ("1E-7"), scientific ("1E+2") for
    # exponent > 0; only the tiny ones need the positional form.
    return format(d, "f") if "E-" in text else text


def _default(value: Any) -> str:
    if isinstance(value, Decimal):
        return SENTINEL + number_text(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any, *, pretty: bool = False, sort_keys: bool = False) -> bytes:
    """orjson's output, with every ``Decimal`` written as its exact number text."""
    option = (orjson.OPT_INDENT_2 if pretty else 0) | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    out = orjson.dumps(value, default=_default, option=option)
    if _SENTINEL_BYTES in out:
        out = _NUMBER_SENTINEL.sub(rb"\1", out)
    return out


def copy(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists, immutable scalars, ``Decimal`` included)."""
    if isinstance(value, dict):
        return {k: copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Whether two values are the same JSON: ``1.5`` and ``1.50`` differ (``==`` says equal)."""
    return bool(a == b) and dumps(a, sort_keys=True) == dumps(b, sort_keys=True)


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number as an exact ``Decimal`` (floats from older data by their shortest text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        d = Decimal(repr(value))
        return d if d.is_finite() else None
    return None
