"""Stage 2: typed clauses → one MongoDB filter (pure: chains are resolved through callbacks).

The filter is kept *flat* (``{deleted: False, "idx.a": …, "idx.b": …}``) because that is the
shape MongoDB-compatible planners (and SecantusDB's in particular) serve from an index; pairs
with a compound field (``patient+status``, ``code+date@lo`` … see ``index.py``) are rewritten
to one range on that field. Two-sided ranges on multikey fields are also returned as
``residual`` fragments that the executor re-checks element by element.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from resources.registry import search_params_for
from server.errors import FhirError
from server.search.index import compound_name, compounds, is_indexed
from server.search.model import Clause, SortKey, Step
from server.search.text import SEP, STRING_TOP
from server.search.types import (
    NEVER,
    Filter,
    QueryError,
    composite,
    date,
    missing,
    number,
    quantity,
    reference,
    string,
    token,
    uri,
)
from server.search.types import field as idx_field

# (type, filter) -> matching ids;  (type, filter, reference code) -> referenced "Type/id" keys
Resolver = Callable[[str, Filter], list[str]]
RefResolver = Callable[[str, Filter, str], list[str]]
LOWER = ("$gt", "$gte")
UPPER = ("$lt", "$lte")


@dataclass
class Plan:
    filter: Filter
    residual: list[Filter] = field(default_factory=list)


# Translators of the types whose filter needs only (code, modifier, values).
BUILDERS: dict[str, Callable[[str, str | None, Sequence[str]], Filter]] = {
    "token": token.build,
    "string": string.build,
    "date": date.build,
    "number": number.build,
    "quantity": quantity.build,
    "uri": uri.build,
}
# The index field whose absence means ``:missing=true`` (dates store their range as @lo/@hi).
MISSING_FIELD = {"date": "@lo"}


def clause_filter(clause: Clause) -> Filter:
    """The filter for a clause's final parameter (on ``clause.on_type``), ignoring its path."""
    values, mod, code = clause.values, clause.modifier, clause.code
    if code == "_id":
        ids = [token.key_of(v) for v in values]
        if any(not isinstance(i, str) for i in ids):
            raise QueryError("_id takes ids")
        if mod == "not":
            return {"_id": {"$nin": ids}}
        if mod == "missing":
            return {} if values[0] == "false" else dict(NEVER)
        return {"_id": ids[0] if len(ids) == 1 else {"$in": ids}}
    p = clause.param
    if p is None:
        raise QueryError(f"unknown parameter {code!r}")
    if mod == "missing":  # the same for every type: is the parameter's index field absent?
        return missing(code, values[0] if len(values) == 1 else "", MISSING_FIELD.get(p.type, ""))
    if p.type in BUILDERS:
        return BUILDERS[p.type](code, mod, values)
    if p.type == "reference":
        return reference.build(code, mod, values, p.target)
    if p.type == "composite":
        return composite.build(code, mod, values, p)
    raise QueryError(f"parameter type {p.type} is not searchable")


def and_merge(filters: Sequence[Filter]) -> Filter:
    """AND of filters, flat where field names do not collide (index-friendly), else ``$and``."""
    flat: Filter = {}
    extra: list[Filter] = []
    for f in filters:
        for k, v in f.items():
            if k == "$and":
                extra.extend(v)
            elif k in flat or (k.startswith("$") and k not in ("$or", "$nor")):
                extra.append({k: v})
            else:
                flat[k] = v
    if extra:
        flat["$and"] = extra
    return flat


def _level_types(base: str, path: Sequence[Step], final_code: str) -> list[list[str]]:
    levels = [[base]]
    for step in path:
        if step.target:
            levels.append([step.target])
            continue
        current = levels[-1][0]
        p = search_params_for(current).get(step.code)
        targets = [t for t in (p.target if p else ()) if search_params_for(t)]
        levels.append(targets)
    last = levels[-1]
    levels[-1] = [t for t in last if final_code == "_id" or final_code in search_params_for(t)]
    return levels


def chained_filter(base: str, clause: Clause, resolve: Resolver, referenced: RefResolver) -> Filter:
    """Resolve a clause with a chain/_has path into a filter on ``base``."""
    levels = _level_types(base, clause.path, clause.code)
    filters: dict[str, Filter] = {}
    for t in levels[-1]:
        p = None if clause.code == "_id" else search_params_for(t).get(clause.code)
        c = Clause(clause.name, clause.code, p, clause.modifier, clause.values, (), t)
        filters[t] = clause_filter(c)
    for k in range(len(clause.path) - 1, -1, -1):
        step = clause.path[k]
        here = levels[k][0]
        if step.reverse:
            keys: list[str] = []
            for t, f in filters.items():
                keys += referenced(t, f, step.code)
            ids = [r.split("/", 1)[1] for r in keys if r.startswith(here + "/")]
            filters = {here: {"_id": {"$in": list(dict.fromkeys(ids))}}}
        else:
            refs: list[str] = []
            for t, f in filters.items():
                refs += [f"{t}/{i}" for i in resolve(t, f)]
            filters = {here: {idx_field(step.code): {"$in": refs}}}
    return filters.get(base, dict(NEVER))


def _eq_values(v: Any) -> list[str] | None:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict) and set(v) == {"$in"} and all(isinstance(x, str) for x in v["$in"]):
        return list(v["$in"])
    return None


def _combine(a_vals: list[str], b: Any) -> Any:
    b_vals = _eq_values(b)
    if b_vals is not None:
        keys = [f"{x}{SEP}{y}" for x in a_vals for y in b_vals]
        if len(keys) > 200:
            return None
        return keys[0] if len(keys) == 1 else {"$in": keys}
    if len(a_vals) != 1 or not isinstance(b, dict) or not b:
        return None
    if not all(op in LOWER + UPPER and isinstance(x, str) for op, x in b.items()):
        return None
    prefix = a_vals[0] + SEP
    out = {op: prefix + x for op, x in b.items()}
    if not any(op in out for op in LOWER):
        out["$gte"] = prefix
    if not any(op in out for op in UPPER):
        out["$lt"] = prefix + STRING_TOP
    return out


def use_compounds(resource_type: str, frags: list[Filter]) -> list[Filter]:
    """Rewrite pairs of one-field fragments into their compound field when one is indexed."""
    single = {next(iter(f)): i for i, f in enumerate(frags) if len(f) == 1}
    used: set[int] = set()
    out: list[Filter] = []
    for a, b in compounds(resource_type):
        fa, fb = idx_field(a), idx_field(b)
        if fa not in single or fb not in single or not is_indexed(resource_type, f"{a}+{b}"):
            continue
        ia, ib = single[fa], single[fb]
        if ia in used or ib in used:
            continue
        a_vals = _eq_values(frags[ia][fa])
        combined = _combine(a_vals, frags[ib][fb]) if a_vals else None
        if combined is None:
            continue
        used |= {ia, ib}
        out.append({idx_field(compound_name(a, b)): combined})
    return out + [f for i, f in enumerate(frags) if i not in used]


def needs_recheck(frag: Filter) -> bool:
    for k, v in frag.items():
        if k in ("$or", "$and", "$nor"):
            if any(needs_recheck(x) for x in v):
                return True
        elif isinstance(v, dict) and any(op in v for op in LOWER) and any(op in v for op in UPPER):
            return True
    return False


def _date_windows(
    resource_type: str, clauses: Sequence[Clause], frags: list[Filter]
) -> list[Filter]:
    """Add the implied ``@day`` window of bounded date ranges (see ``types.date.window``)."""
    codes = {
        c.code for c in clauses if not c.path and c.param is not None and c.param.type == "date"
    }
    extra: list[Filter] = []
    for code in sorted(codes):
        if not is_indexed(resource_type, f"{code}@day"):
            continue
        implied = date.window(code, frags)
        if implied is not None:
            extra.append(implied)
    return extra + frags


_UNSELECTIVE = ("status", "gender", "active", "category", "clinical-status", "intent")


def _driver_rank(resource_type: str, frag: Filter) -> int | None:
    """How well one fragment can drive an index scan (lower is better; None = it cannot)."""
    if len(frag) != 1:
        return None
    name, cond = next(iter(frag.items()))
    if name == "$or":  # executed as a union of index scans
        ranks = [_driver_rank(resource_type, b) for b in cond]
        worst = max((r for r in ranks if r is not None), default=None)
        return None if worst is None or None in ranks else worst + 1
    if name == "_id":
        return 0 if _eq_values(cond) is not None else None
    if name.startswith("$") or not is_indexed(resource_type, name.removeprefix("idx.")):
        return None
    code = name.removeprefix("idx.").split("@")[0]
    if "+" in code:
        base = 1
    elif code in _UNSELECTIVE:
        base = 6
    else:
        base = 2
    if cond is None:  # :missing=true — an index scan on the null key, rarely selective
        return 7
    if isinstance(cond, (str, int, float)):
        return base
    if (
        not isinstance(cond, dict)
        or not cond
        or not all(op in ("$in", *LOWER, *UPPER) for op in cond)
    ):
        return None
    if "$in" in cond:
        return base + 1 if len(cond) == 1 else None
    two_sided = any(op in cond for op in LOWER) and any(op in cond for op in UPPER)
    return base + (2 if two_sided else 3)


def split_for_index(resource_type: str, frags: list[Filter]) -> tuple[Filter, list[Filter]]:
    """(database filter, fragments to re-check in Python).

    The database gets the one fragment that best drives an index scan; the other fragments are
    checked on the projected ``idx`` values of its candidates. Planners only serve flat,
    single-field (or compound-prefix) shapes from an index — SecantusDB's strictly so — while
    the candidate documents are materialized and filtered either way, so this costs nothing
    and turns "two indexed clauses" into an index scan instead of a collection scan.
    """
    ranked = [
        (r, i) for i, f in enumerate(frags) if (r := _driver_rank(resource_type, f)) is not None
    ]
    if len(frags) <= 1 or not ranked:
        return and_merge(frags), [f for f in frags if needs_recheck(f)]
    _, best = min(ranked)
    driver = frags[best]
    rest = [f for i, f in enumerate(frags) if i != best]
    return driver, rest + ([driver] if needs_recheck(driver) else [])


def build(
    resource_type: str,
    clauses: Sequence[Clause],
    resolve: Resolver,
    referenced: RefResolver,
    extra: Sequence[Filter] = (),
) -> Plan:
    frags: list[Filter] = list(extra)
    for clause in clauses:
        try:
            f = (
                chained_filter(resource_type, clause, resolve, referenced)
                if clause.path
                else clause_filter(clause)
            )
        except QueryError as exc:
            raise FhirError(400, "invalid", f"{clause.name}: {exc}") from exc
        # a flat multi-field fragment is an AND: split it so each part can drive or be checked
        frags += [{k: v} for k, v in f.items()] if "$or" not in f and "$nor" not in f else [f]
    frags = _date_windows(resource_type, clauses, frags)
    frags = use_compounds(resource_type, frags)
    db_filter, residual = split_for_index(resource_type, frags)
    return Plan(db_filter, residual)


def sort_spec(resource_type: str, keys: Sequence[SortKey]) -> list[tuple[str, int]]:
    """MongoDB sort for ``_sort`` (dates sort by start ascending, by end descending)."""
    spec: list[tuple[str, int]] = []
    params = search_params_for(resource_type)
    for k in keys:
        direction = -1 if k.descending else 1
        if k.code == "_id":
            spec.append(("_id", direction))
            continue
        if k.code == "_lastUpdated":
            spec.append(("ts", direction))
            continue
        p = params.get(k.code)
        if p is None:
            continue
        suffix = ("@hi" if k.descending else "@lo") if p.type == "date" else ""
        spec.append((idx_field(k.code, suffix), direction))
    if not any(f == "_id" for f, _ in spec):
        spec.append(("_id", 1))
    return spec
