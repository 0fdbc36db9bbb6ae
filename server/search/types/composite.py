"""composite: ``code-value-quantity=http://loinc.org|1234-5$gt5.4`` and friends.

Each base node yields keys ``<first component><RS><second component>`` stored under ``<code>``:
the first component is a token key, the second is a token key, normalized string, date start
or sortable number (with and without its unit), so the whole composite is one equality or one
range on one indexed field. Only two-component parameters are supported (all of R4's
Observation and most others).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from resources.registry import SearchParam, search_parameters
from server.search.fhirpath import evaluate_on
from server.search.text import (
    SEP,
    STRING_TOP,
    normalize,
    prefix_range,
    split_unescaped,
    unescape,
)
from server.search.types import Filter, QueryError, any_of, field
from server.search.types import date as date_type
from server.search.types import number as number_type
from server.search.types import quantity as quantity_type
from server.search.types import token as token_type

RS = "\x1e"
NUM = "\x1d"  # marks a unit-less number, so it never sorts among "<unit><SEP>…" keys
MODIFIERS = ("missing",)


@cache
def _by_url() -> dict[str, SearchParam]:
    out: dict[str, SearchParam] = {}
    for params in search_parameters().values():
        for p in params.values():
            out.setdefault(p.url, p)
    return out


def component_types(param: SearchParam) -> list[str]:
    by_url = _by_url()
    return [by_url[u].type if u in by_url else "token" for u, _ in param.components]


def _encode(kind: str, nodes: list[Any]) -> list[str]:
    out: list[str] = []
    for node in nodes:
        if kind == "token":
            out += token_type.encode(node)[0]
        elif kind == "string":
            out += [normalize(s) for s in ([node] if isinstance(node, str) else [])]
        elif kind == "date":
            out += [r.lo for r in date_type.ranges(node)]
        elif kind in ("quantity", "number"):
            if isinstance(node, dict):
                v = number_type.encode(node.get("value"))
                if v is not None:
                    out.append(NUM + v)
                    out += [k + SEP + v for k in quantity_type.unit_keys(node)]
            else:
                f = number_type.encode(node)
                if f is not None:
                    out.append(NUM + f)
        elif kind == "reference" and isinstance(node, dict) and node.get("reference"):
            out.append(str(node["reference"]))
    return out


def extract_param(param: SearchParam, code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    kinds = component_types(param)
    if len(kinds) != 2:
        return {}
    keys: list[str] = []
    for node in nodes:
        first = _encode(kinds[0], evaluate_on(node, param.components[0][1]))
        second = _encode(kinds[1], evaluate_on(node, param.components[1][1]))
        keys += [a + RS + b for a in first for b in second]
    return {code: list(dict.fromkeys(keys))} if keys else {}


def _second(kind: str, prefix_key: str, raw: str) -> Any:
    if kind == "token":
        key = token_type.key_of(raw)
        if isinstance(key, dict):
            raise QueryError("a composite token component needs a code")
        return prefix_key + key
    if kind == "string":
        return prefix_range(prefix_key + normalize(unescape(raw)))
    if kind == "date":
        prefix, r, _key = date_type.parse(raw)
        lo, hi = prefix_key + r.lo, prefix_key + r.hi
        table = {
            "eq": {"$gte": lo, "$lte": hi},
            "gt": {"$gt": hi},
            "sa": {"$gt": hi},
            "ge": {"$gte": lo},
            "lt": {"$lt": lo},
            "eb": {"$lt": lo},
            "le": {"$lte": hi},
        }
        if prefix not in table:
            raise QueryError(f"prefix {prefix} is not supported in composite dates")
        cmp = dict(table[prefix])
        cmp.setdefault("$gte", prefix_key)
        cmp.setdefault("$lt", prefix_key + STRING_TOP)
        return cmp
    if kind in ("quantity", "number"):
        parts = split_unescaped(raw, "|")
        prefix, n = number_type.parse(parts[0])
        cmp = number_type.bounds(prefix, n)
        unit = NUM
        if len(parts) == 3 and (parts[1] or parts[2]):
            s, c = unescape(parts[1]), unescape(parts[2])
            unit = (f"{s}|{c}" if s else c) + SEP
        return quantity_type.prefixed_bounds(prefix_key + unit, cmp)
    if kind == "reference":
        return prefix_key + unescape(raw)
    raise QueryError(f"composite component type {kind} is not supported")


def build(code: str, modifier: str | None, values: Sequence[str], param: SearchParam) -> Filter:
    if modifier is not None:
        raise QueryError(f"modifier :{modifier} is not supported on composite parameters")
    kinds = component_types(param)
    if len(kinds) != 2:
        raise QueryError(f"composite {code} has {len(kinds)} components; only 2 are supported")
    frags: list[Filter] = []
    for raw in values:
        parts = split_unescaped(raw, "$")
        if len(parts) != 2:
            raise QueryError(f"composite value {raw!r} needs exactly one unescaped '$'")
        first = token_type.key_of(parts[0]) if kinds[0] == "token" else unescape(parts[0])
        if isinstance(first, dict):
            raise QueryError("a composite token component needs a code")
        frags.append({field(code): _second(kinds[1], first + RS, parts[1])})
    return any_of(frags)
