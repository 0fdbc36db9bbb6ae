"""Stage 1: the query string → a typed ``SearchRequest`` (pure; table-driven tests).

Parameter names and modifiers are checked against the registry here, so nothing a client writes
can become a field name later: an unknown parameter, modifier or malformed value is dropped with
a warning (``Prefer: handling=lenient``, the default) or is a 400 (``handling=strict``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from resources.registry import SearchParam, is_resource_type, search_params_for
from server.errors import FhirError, Issue
from server.search import types as type_pkg
from server.search.model import Clause, Include, SearchRequest, SortKey, Step
from server.search.text import split_unescaped
from server.search.types import QueryError, composite, date, number, quantity, reference, token, uri
from server.search.types import string as string_type

MODIFIERS: dict[str, tuple[str, ...]] = {
    "token": token.MODIFIERS,
    "string": string_type.MODIFIERS,
    "date": date.MODIFIERS,
    "reference": reference.MODIFIERS,
    "quantity": quantity.MODIFIERS,
    "number": number.MODIFIERS,
    "uri": uri.MODIFIERS,
    "composite": composite.MODIFIERS,
}
# Accepted and handled elsewhere (formatting) or deliberately not supported but harmless.
PASSTHROUGH = {"_format", "_pretty"}
RESULT_PARAMS = {
    "_sort",
    "_count",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_page",
    "_type",
    "_contained",
    "_containedType",
}
SUMMARY = {"true", "text", "data", "count", "false"}
TOTAL = {"none", "estimate", "accurate"}
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_CHAIN = 3
MAX_VALUES = 200
MAX_CHAINED_CLAUSES = 5  # each one runs its own queries
MAX_INCLUDES = 20


class _Problem(Exception):
    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


def _param(resource_type: str, code: str) -> SearchParam:
    if not _CODE.match(code):
        raise _Problem(f"{code!r} is not a parameter name", "not-supported")
    p = search_params_for(resource_type).get(code)
    if p is None or not p.expression:
        raise _Problem(f"unknown search parameter {code!r} for {resource_type}", "not-supported")
    return p


def _targets(p: SearchParam) -> tuple[str, ...]:
    return tuple(t for t in p.target if is_resource_type(t))


def parse_name(resource_type: str, name: str) -> tuple[tuple[Step, ...], str, str | None, str]:
    """``name`` → (path, final code, modifier, type the final code is on)."""
    path: list[Step] = []
    current = resource_type
    rest = name
    while rest.startswith("_has:"):
        bits = rest.split(":", 3)
        if len(bits) != 4 or not is_resource_type(bits[1]):
            raise _Problem(f"malformed _has parameter {name!r}")
        ref = _param(bits[1], bits[2])
        if ref.type != "reference":
            raise _Problem(f"{bits[1]}.{bits[2]} is not a reference parameter")
        path.append(Step(bits[2], bits[1], reverse=True))
        current, rest = bits[1], bits[3]
    links = rest.split(".")
    if len(links) + len(path) > MAX_CHAIN + 1:
        raise _Problem(f"{name!r} chains more than {MAX_CHAIN} levels")
    for link in links[:-1]:
        code, _, target = link.partition(":")
        ref = _param(current, code)
        if ref.type != "reference":
            raise _Problem(f"{code!r} is not a reference parameter; it cannot be chained")
        targets = _targets(ref)
        if target:
            if not is_resource_type(target) or (targets and target not in targets):
                raise _Problem(f"{target!r} is not a target of {current}.{code}")
            path.append(Step(code, target))
            current = target
        else:
            path.append(Step(code, None))
            current = targets[0] if len(targets) == 1 else ""
    code, _, modifier = links[-1].partition(":")
    if current == "":
        # ambiguous chain target: the final parameter must exist on at least one target
        return tuple(path), code, modifier or None, ""
    p = _param(current, code) if code != "_id" else None
    if p is not None:
        allowed = MODIFIERS.get(p.type, ())
        type_modifier = p.type == "reference" and is_resource_type(modifier)
        if modifier and modifier not in allowed and not type_modifier:
            raise _Problem(f"modifier :{modifier} is not supported on {code}", "not-supported")
    elif modifier and modifier not in ("missing", "not"):
        raise _Problem(f"modifier :{modifier} is not supported on _id", "not-supported")
    return tuple(path), code, modifier or None, current


def _check_values(clause: Clause) -> None:
    """Run the translator once so malformed values are reported at parse time."""
    from server.search.query import clause_filter

    if clause.on_type:
        clause_filter(clause)


def _include(value: str, reverse: bool, iterate: bool) -> Include:
    if value == "*":
        return Include("*", "*", None, iterate, reverse)
    bits = value.split(":")
    if len(bits) not in (2, 3) or not is_resource_type(bits[0]):
        raise _Problem(f"malformed include {value!r}: use Type:param[:TargetType]")
    source, code = bits[0], bits[1]
    if code != "*":
        p = _param(source, code)
        if p.type != "reference":
            raise _Problem(f"{source}:{code} is not a reference parameter")
    target = bits[2] if len(bits) == 3 else None
    if target is not None and not is_resource_type(target):
        raise _Problem(f"{target!r} is not a resource type")
    return Include(source, code, target, iterate, reverse)


def _int(value: str, name: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise _Problem(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def parse(
    resource_type: str,
    items: Iterable[tuple[str, str]],
    *,
    strict: bool = False,
    max_count: int = 1000,
) -> SearchRequest:
    """Parse ``items`` (query or form pairs, in order) for a search on ``resource_type``.

    ``resource_type`` "" means a system search: only the common parameters are known.
    """
    base = resource_type or "Resource"
    req = SearchRequest(resource_type)
    errors: list[Issue] = []
    for name, value in items:
        try:
            _parse_one(req, base, name, value, max_count)
        except (_Problem, QueryError, FhirError) as exc:
            code = exc.code if isinstance(exc, _Problem) else "invalid"
            msg = str(exc) if not isinstance(exc, FhirError) else exc.issues[0].diagnostics
            issue = Issue(code, f"parameter {name!r} ignored: {msg}", "warning", [name])
            errors.append(issue)
    if errors and strict:
        raise FhirError(
            400,
            errors[0].code,
            errors[0].diagnostics,
            issues=[Issue(i.code, i.diagnostics, "error", i.expression) for i in errors],
        )
    req.issues.extend(errors)
    return req


def _parse_one(req: SearchRequest, base: str, name: str, value: str, max_count: int) -> None:
    if name in PASSTHROUGH:
        return
    if name in RESULT_PARAMS or name.split(":")[0] in ("_include", "_revinclude"):
        _result_param(req, name, value, max_count)
        if name not in ("_page",):
            req.echo.append((name, value))
        return
    if value == "":
        return  # FHIR: a parameter with no value is ignored
    path, code, modifier, on_type = parse_name(base, name)
    values = tuple(v for v in split_unescaped(value, ",") if v != "")
    if not values:
        return
    if len(values) > MAX_VALUES:
        raise _Problem(f"more than {MAX_VALUES} values")
    if on_type:
        param = None if code == "_id" else _param(on_type, code)
    else:
        param = None
        if not path or path[-1].reverse:
            raise _Problem(f"cannot resolve {name!r}")
        if code != "_id" and not _CODE.match(code):
            raise _Problem(f"{code!r} is not a parameter name")
    if path and sum(1 for c in req.clauses if c.path) >= MAX_CHAINED_CLAUSES:
        raise _Problem(f"at most {MAX_CHAINED_CLAUSES} chained or _has parameters", "too-costly")
    clause = Clause(name, code, param, modifier, values, path, on_type)
    _check_values(clause)
    req.clauses.append(clause)
    req.echo.append((name, value))


def _result_param(req: SearchRequest, name: str, value: str, max_count: int) -> None:
    if name == "_count":
        req.count = min(_int(value, "_count"), max_count)
    elif name == "_page":
        req.page = value
    elif name == "_total":
        if value not in TOTAL:
            raise _Problem(f"_total must be one of {sorted(TOTAL)}")
        req.total = value
    elif name == "_summary":
        if value not in SUMMARY:
            raise _Problem(f"_summary must be one of {sorted(SUMMARY)}")
        req.summary = value
    elif name == "_elements":
        elems = [e.strip() for e in value.split(",") if e.strip()]
        if not all(
            re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?", e) for e in elems
        ):
            raise _Problem("_elements takes element names")
        req.elements = [e.split(".")[-1] for e in elems]
    elif name == "_sort":
        for key in value.split(","):
            desc = key.startswith("-")
            code = key[1:] if desc else key
            if code not in ("_id", "_lastUpdated", "_score"):
                p = _param(req.resource_type or "Resource", code)
                if p.type == "composite":
                    raise _Problem(f"cannot sort by composite {code!r}")
            if code != "_score":
                req.sort.append(SortKey(code, desc))
    elif name == "_type":
        types = [t for t in value.split(",") if t]
        if not all(is_resource_type(t) for t in types):
            raise _Problem(f"_type lists an unknown resource type: {value!r}")
        req.types = types
    elif name.startswith(("_include", "_revinclude")):
        head, _, mod = name.partition(":")
        if mod not in ("", "iterate", "recurse"):
            raise _Problem(f"unknown modifier :{mod}", "not-supported")
        if len(req.includes) + len(req.revincludes) >= MAX_INCLUDES:
            raise _Problem(f"at most {MAX_INCLUDES} _include/_revinclude", "too-costly")
        inc = _include(value, head == "_revinclude", bool(mod))
        (req.revincludes if head == "_revinclude" else req.includes).append(inc)
    elif name in ("_contained", "_containedType") and value not in ("false", "entry"):
        raise _Problem(f"{name} is not supported", "not-supported")


__all__ = ["parse", "parse_name", "type_pkg"]
