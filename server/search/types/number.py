"""number: prefixes eq ne lt gt le ge sa eb ap, with FHIR's implicit precision range for eq.

``eq 5.4`` means [5.35, 5.45). Two-sided ranges on a multikey field are re-checked per element
by the executor (``server.search.residual``) because MongoDB may satisfy each bound with a
different array element.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from server.search.text import NumberValue, parse_number, unescape
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


def to_float(node: Any) -> float | None:
    if isinstance(node, bool) or node is None:
        return None
    if isinstance(node, (int, float, Decimal)):
        return float(node)
    try:
        return float(Decimal(str(node)))
    except (InvalidOperation, ValueError):
        return None


def extract(code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    vals = [v for v in (to_float(n) for n in nodes) if v is not None]
    return {code: list(dict.fromkeys(vals))} if vals else {}


def bounds(prefix: str, n: NumberValue) -> dict[str, Any]:
    """The MongoDB comparison for ``prefix n`` (``ne`` is returned as ``$not``)."""
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
    delta = abs(v) * 0.1 or (n.high - n.low)
    return {"$gte": v - delta, "$lte": v + delta}


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
        frags.append({field(code): bounds(prefix, n)})
    return any_of(frags)
