"""quantity: ``[prefix]number|system|code`` (or ``number||unit``, or a bare number).

Stored twice: the bare values under ``<code>`` (a unit-less query), and unit-qualified keys
``system|code<SEP><sortable number>`` / ``code<SEP>…`` / ``unit<SEP>…`` under ``<code>@u``, so a
query with units is a range on one indexed string field. Units are not converted (no UCUM
canonicalization): ``5 mg`` does not match ``0.005 g``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.search.text import SEP, split_unescaped, unescape
from server.search.types import Filter, QueryError, any_of, field, strings
from server.search.types.number import bounds, encode, encoded, parse

MODIFIERS = ("missing",)


def unit_keys(node: dict[str, Any]) -> list[str]:
    system = strings(node.get("system"))
    code = strings(node.get("code"))
    unit = strings(node.get("unit"))
    keys: list[str] = []
    if code:
        keys.append(f"{system[0] if system else ''}|{code[0]}")
        keys.append(code[0])
    if unit:
        keys.append(unit[0])
    return list(dict.fromkeys(keys))


def extract(code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    values: list[str] = []
    units: list[str] = []
    for node in nodes:
        if isinstance(node, dict):
            v = encode(node.get("value"))
            if v is None:
                continue
            values.append(v)
            units += [k + SEP + v for k in unit_keys(node)]
        else:
            f = encode(node)
            if f is not None:
                values.append(f)
    out: dict[str, list[Any]] = {}
    if values:
        out[code] = list(dict.fromkeys(values))
    if units:
        out[code + "@u"] = list(dict.fromkeys(units))
    return out


def prefixed_bounds(prefix: str, cmp: dict[str, Any]) -> dict[str, Any]:
    """Translate numeric bounds into bounds on ``<prefix><sortable number>`` strings."""
    return encoded(cmp, prefix)


def unit_bounds(unit_key: str, cmp: dict[str, Any]) -> dict[str, Any]:
    return prefixed_bounds(unit_key + SEP, cmp)


def build(code: str, modifier: str | None, values: Sequence[str]) -> Filter:
    if modifier is not None:
        raise QueryError(f"modifier :{modifier} is not supported on quantity parameters")
    frags: list[Filter] = []
    for raw in values:
        parts = split_unescaped(raw, "|")
        if len(parts) not in (1, 3):
            raise QueryError(f"quantity {raw!r} must be number or number|system|code")
        prefix, n = parse(parts[0])
        cmp = bounds(prefix, n)
        if len(parts) == 1 or not (parts[1] or parts[2]):
            frags.append({field(code): encoded(cmp)})
            continue
        system, unit = unescape(parts[1]), unescape(parts[2])
        key = f"{system}|{unit}" if system else unit
        frags.append({field(code, "@u"): unit_bounds(key, cmp)})
    return any_of(frags)
