"""number: prefixes eq ne lt gt le ge sa eb ap, with FHIR's implicit precision range for eq.

``eq 5.4`` means [5.35, 5.45), computed exactly on the decimal as written (``eq100.00`` is
[99.995, 100.005)). Stored values and bounds are ``sortable_number`` text, whose order is the
exact numeric order (a double would merge 66.899999999999991 with its neighbours). Two-sided
ranges on a multikey field are re-checked per element by the executor
(``server.search.residual``) because MongoDB may satisfy each bound with a different array
element.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from server.search.text import (
    EXACT,
    STRING_TOP,
    NumberValue,
    exact_decimal,
    parse_number,
    sortable_number,
    unescape,
)
from server.search.types import Filter, QueryError, any_of, field

MODIFIERS = ("missing",)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_PREFIX = re.compile(r"^([a-z]{2})(?=[0-9+\-.])")


def split_prefix(value: str) -> tuple[str, str]:
    m = _PREFIX.match(value)
    if m:
        if m.group(1) not in PREFIXES:
            raise QueryError(f"unknown prefix {m.group(1)!r}")
        return m.group(1), value[2:]
    return "eq", value


def to_decimal(node: Any) -> Decimal | None:
    """A resource's number exactly (``Decimal`` as parsed; floats of older data by their text)."""
    if isinstance(node, bool) or node is None:
        return None
    if isinstance(node, (int, float, Decimal)):
        d = exact_decimal(node)
    else:
        try:
            d = Decimal(str(node))
        except (InvalidOperation, ValueError):
            return None
    return d if d.is_finite() else None


def encode(node: Any) -> str | None:
    """The stored index value of a number node (None when it is no number)."""
    d = to_decimal(node)
    if d is None:
        return None
    try:
        return sortable_number(d)
    except ValueError:
        return None


def extract(code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    vals = [v for v in (encode(n) for n in nodes) if v is not None]
    return {code: list(dict.fromkeys(vals))} if vals else {}


def bounds(prefix: str, n: NumberValue) -> dict[str, Any]:
    """The numeric comparison for ``prefix n`` (``ne`` is returned as ``$not``), exact Decimals;
    ``encoded`` turns it into a filter on stored values."""
    v = n.value
    if prefix == "eq":
        return {"$gte": n.low, "$lt": n.high}
    if prefix == "ne":
        return {"$not": {"$gte": n.low, "$lt": n.high}}
    if prefix in ("gt", "sa"):
        return {"$gt": v}
    if prefix in ("lt", "eb"):
        return {"$lt": v}
    if prefix == "ge":
        return {"$gte": v}
    if prefix == "le":
        return {"$lte": v}
    # ap: within 10% of the value (search.html leaves the margin to the server), or within the
    # implicit precision range for zero.
    delta = EXACT.multiply(v.copy_abs(), Decimal("0.1")) or EXACT.subtract(n.high, n.low)
    return {"$gte": EXACT.subtract(v, delta), "$lte": EXACT.add(v, delta)}


def encoded(cmp: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``cmp`` on ``<prefix><sortable number>`` text: the bare stored values when ``prefix`` is
    empty, unit-qualified keys (quantity, composite) otherwise, bounded to that prefix."""
    if "$not" in cmp:
        return {"$not": encoded(cmp["$not"], prefix)}
    out: dict[str, Any] = {op: prefix + sortable_number(v) for op, v in cmp.items()}
    if prefix:
        if not any(op in out for op in ("$gt", "$gte")):
            out["$gte"] = prefix
        if not any(op in out for op in ("$lt", "$lte")):
            out["$lt"] = prefix + STRING_TOP
    return out


def parse(raw: str) -> tuple[str, NumberValue]:
    prefix, rest = split_prefix(unescape(raw))
    n = parse_number(rest)
    if n is None:
        raise QueryError(f"{raw!r} is not a number")
    return prefix, n


def build(code: str, modifier: str | None, values: Sequence[str]) -> Filter:
    if modifier is not None:
        raise QueryError(f"modifier :{modifier} is not supported on number parameters")
    frags: list[Filter] = []
    for raw in values:
        prefix, n = parse(raw)
        frags.append({field(code): encoded(bounds(prefix, n))})
    return any_of(frags)
