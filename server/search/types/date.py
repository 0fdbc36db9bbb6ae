"""date: every value is the range it denotes (``1970`` = the whole year, in UTC).

Stored as fixed-width UTC text: ``<code>@lo`` (range starts), ``<code>@hi`` (inclusive ends) and
``<code>@eq`` (the precision keys — ``1970``, ``1970-03``, ``1970-03-15`` … — of every calendar
unit that wholly contains the value). Then each prefix is one index-friendly comparison:

- ``eq`` → the value lies within the query's unit: one equality on ``@eq``, checked on the
  candidates of the ``@lo`` range it implies (``@eq`` is not an index key: ``build``);
- ``gt``/``sa``/``ge``/``lt``/``eb``/``le`` → one bound on ``@hi`` or ``@lo``;
- ``ne`` → not ``eq``; ``ap`` → overlap with the range widened by 10% of its distance to now.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from server.search.text import DateRange, iso, parse_date, query_date_key, span, unescape
from server.search.types import Filter, QueryError, any_of, field, strings

MODIFIERS = ("missing",)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_PREFIX = re.compile(r"^([a-z]{2})(?=\d)")


def ranges(node: Any) -> list[DateRange]:
    if isinstance(node, dict):
        if "start" in node or "end" in node:  # Period
            lo = parse_date(str(node["start"])) if node.get("start") else None
            hi = parse_date(str(node["end"])) if node.get("end") else None
            r = span(lo, hi)
            return [r] if r else []
        if "event" in node:  # Timing
            return [r for e in node.get("event") or [] if (r := parse_date(str(e)))]
        return []
    out: list[DateRange] = []
    for s in strings(node):
        r = parse_date(s)
        if r is not None:
            out.append(r)
    return out


def extract(code: str, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    rs = [r for n in nodes for r in ranges(n)]
    if not rs:
        return {}
    out: dict[str, list[Any]] = {
        code + "@lo": sorted({r.lo for r in rs}),
        code + "@hi": sorted({r.hi for r in rs}),
    }
    keys = sorted({k for r in rs for k in r.keys})
    if keys:
        out[code + "@eq"] = keys
    out[code + "@day"] = sorted({d for r in rs for d in days(r.low, r.high)})
    return out


LONG = "~"  # the @day key of values longer than MAX_DAYS (sorts after every date)
MAX_DAYS = 62


def days(low: datetime, high: datetime) -> list[str]:
    """UTC days touched by [low, high), or ``[LONG]`` beyond ``MAX_DAYS`` days."""
    first = low.astimezone(UTC).date()
    last = (high - timedelta(milliseconds=1)).astimezone(UTC).date()
    n = (last - first).days
    if n < 0 or n >= MAX_DAYS:
        return [LONG]
    return [(first + timedelta(days=i)).isoformat() for i in range(n + 1)]


def window(code: str, frags: Sequence[Filter]) -> Filter | None:
    """An index-friendly ``@day`` candidate filter implied by a bounded date range.

    With a lower bound (``ge/gt`` on ``@hi``, ``sa`` on ``@lo``) and an upper bound (``lt/le``
    on ``@lo``, ``eb`` on ``@hi``) on the same parameter, every match touches a day in between
    (or is a long value): one ``$in`` on ``@day`` then narrows the candidates, and the original
    bounds are re-checked.
    """
    lo, hi = field(code, "@lo"), field(code, "@hi")
    lower: str | None = None
    upper: str | None = None
    for f in frags:
        if len(f) != 1:
            continue
        ((name, cond),) = f.items()
        if not isinstance(cond, dict):
            continue
        for op, v in cond.items():
            if not isinstance(v, str):
                continue
            if (name == hi and op in ("$gt", "$gte")) or (name == lo and op == "$gt"):
                lower = v if lower is None else max(lower, v)
            if (name == lo and op in ("$lt", "$lte")) or (name == hi and op == "$lt"):
                upper = v if upper is None else min(upper, v)
    if lower is None or upper is None:
        return None
    a, b = parse_date(lower), parse_date(upper)
    if a is None or b is None or b.low < a.low:
        return {field(code, "@day"): {"$in": []}}
    touched = days(a.low, b.low + timedelta(milliseconds=1))
    if touched == [LONG]:
        return None
    return {field(code, "@day"): {"$in": [*touched, LONG]}}


def parse(raw: str) -> tuple[str, DateRange, str]:
    # an unencoded "+" in a query string arrives as a space: "T12:00 02:00" means "+02:00"
    value = re.sub(r"(T[\d:.]+) (\d{2}:\d{2})$", r"\1+\2", unescape(raw))
    m = _PREFIX.match(value)
    prefix = "eq"
    if m:
        prefix, value = m.group(1), value[2:]
        if prefix not in PREFIXES:
            raise QueryError(f"unknown prefix {prefix!r}")
    r = parse_date(value)
    key = query_date_key(value)
    if r is None or key is None:
        raise QueryError(f"{raw!r} is not a FHIR date/dateTime")
    return prefix, r, key


def condition(code: str, prefix: str, r: DateRange, key: str) -> Filter:
    lo, hi = field(code, "@lo"), field(code, "@hi")
    if prefix == "eq":
        return {field(code, "@eq"): key}
    if prefix == "ne":
        return {field(code, "@eq"): {"$ne": key}, lo: {"$exists": True}}
    if prefix in ("gt", "sa"):
        return {hi if prefix == "gt" else lo: {"$gt": r.hi}}
    if prefix in ("lt", "eb"):
        return {lo if prefix == "lt" else hi: {"$lt": r.lo}}
    if prefix == "ge":
        return {hi: {"$gte": r.lo}}
    if prefix == "le":
        return {lo: {"$lte": r.hi}}
    now = datetime.now(UTC)
    gap = abs((now - r.low).total_seconds()) * 0.1
    return {
        lo: {"$lte": iso(r.high + timedelta(seconds=gap))},
        hi: {"$gte": iso(r.low - timedelta(seconds=gap))},
    }


def build(code: str, modifier: str | None, values: Sequence[str]) -> Filter:
    """The values' OR; for ``eq`` values also the range of ``@lo`` they imply.

    Why the implied range: ``@eq`` values are stored in ``idx`` but are not index keys (each
    value has one per calendar unit that contains it, and ``code+date@eq`` doubled them: 15 of
    a lab Observation's keys). A value within a query's unit starts within it, so every ``eq``
    match has an ``@lo`` in ``[first start, last end]`` of the units asked for: that range
    drives the index scan (alone, or as ``code+date@lo``), and ``@eq`` decides exactly.
    """
    if modifier is not None:
        raise QueryError(f"modifier :{modifier} is not supported on date parameters")
    parsed = [parse(raw) for raw in values]
    out = any_of([condition(code, *p) for p in parsed])
    if parsed and all(prefix == "eq" for prefix, _, _ in parsed):
        lo = field(code, "@lo")
        out = {
            **out,
            lo: {"$gte": min(r.lo for _, r, _ in parsed), "$lte": max(r.hi for _, r, _ in parsed)},
        }
    return out
