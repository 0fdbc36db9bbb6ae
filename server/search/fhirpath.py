"""FHIRPath evaluation of search parameter expressions (fhirpathpy, compiled once per type).

Why a wrapper: the official expressions are unions over many resource types
(``AllergyIntolerance.code | Condition.code | ...``) and use ``where(resolve() is Patient)``,
which fhirpathpy cannot evaluate. We keep only the union branches that start at the resource
type being indexed and turn ``where(resolve() is X)`` into a reference-type filter applied in
Python, which also makes extraction several times faster.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models

from resources.registry import is_resource_type
from server.search.pathwalk import compile_path, compile_relative, element_keys

_RESOLVE = re.compile(r"\.where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)\s*$")
_LEADING = re.compile(r"^\(*\s*([A-Za-z]+)")
# ``Type.element`` then only steps that turn an empty collection into an empty one (FHIRPath:
# ``{}.child``, ``{}.where(x)``, ``{}.as(T)``, ``{} as T``, ``{}[0]`` are all ``{}``), unlike
# ``exists()``, ``empty()``, ``count()``, ``and``, ``!=``...: the whole expression then selects
# nothing when the resource lacks the element, and fhirpathpy's interpreter need not run.
_EMPTY_IF_ABSENT = re.compile(
    r"^\(?[A-Z][A-Za-z]+\.([a-z][A-Za-z0-9]*)"
    r"(?:\.[a-z][A-Za-z0-9]*|\.where\([^()]*\)|\.as\([A-Za-z]+\)| as [A-Za-z]+|\[\d+\]|\))*$"
)
_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
_TOKEN = re.compile(r"(\.?)\s*([A-Za-z_][A-Za-z0-9_]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "xor", "implies", "is", "as", "div", "mod", "in", "contains", "true", "false"}
)
_TYPE_OPERATORS = frozenset({"is", "as", "ofType"})
Evaluator = Callable[..., list[Any]]


@dataclass(frozen=True)
class Branch:
    fn: Evaluator
    target: str | None  # only references to this type (from where(resolve() is X))
    # For an interpreted branch whose result without one element is known: the JSON keys that
    # hold that element (None: always evaluate) and that result.
    needs: tuple[str, ...] | None = None
    absent: tuple[Any, ...] = ()


def needed_keys(resource_type: str, expression: str) -> tuple[str, ...] | None:
    """The keys of which ``resource`` must hold one for ``expression`` to select anything
    (``_EMPTY_IF_ABSENT``); None when the expression may select something regardless."""
    m, lead = _EMPTY_IF_ABSENT.match(expression), _LEADING.match(expression)
    if m is None or lead is None or lead.group(1) != resource_type:
        return None
    return element_keys(resource_type, m.group(1))


def read_element(resource_type: str, expression: str) -> str | None:
    """The one element ``expression`` reads when it reaches the resource only as
    ``resource_type.<element>`` (no bare identifier or function on the root, no ``%``/``$``
    variables): its result on a resource without that element is then a constant."""
    text = _LITERAL.sub("''", expression)
    if any(c in text for c in "%$`"):
        return None
    element: str | None = None
    tokens = list(_TOKEN.finditer(text))
    for i, m in enumerate(tokens):
        dot, name, call = m.groups()
        previous = tokens[i - 1].group(2) if i else ""
        if dot or (name in _KEYWORDS and not call) or previous in _TYPE_OPERATORS:
            continue  # a member or method of what precedes it, an operator, a type name
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if (
            name != resource_type
            or call
            or following is None
            or following.start() != m.end()
            or not following.group(1)
            or following.group(3)
        ):
            return None  # a bare identifier or function reads the root itself
        if element not in (None, following.group(2)):
            return None
        element = following.group(2)
    return element


def _when_absent(
    resource_type: str, expression: str, fn: Evaluator
) -> tuple[tuple[str, ...] | None, tuple[Any, ...]]:
    """(``Branch.needs``, ``Branch.absent``) of an interpreted branch."""
    needs = needed_keys(resource_type, expression)
    if needs is not None:
        return needs, ()
    element = read_element(resource_type, expression)
    if element is None:
        return None, ()
    try:
        absent = tuple(fn({"resourceType": resource_type}))
    except Exception:
        return None, ()
    if not all(v is None or isinstance(v, bool | int | float | str) for v in absent):
        return None, ()  # only immutable results are shared between resources
    return element_keys(resource_type, element), absent


def split_union(expr: str) -> list[str]:
    """Split on top-level ``|`` (outside parentheses and string literals)."""
    parts: list[str] = []
    depth, quote = 0, False
    cur: list[str] = []
    for c in expr:
        if c == "'" and (not cur or cur[-1] != "\\"):
            quote = not quote
        elif not quote and c == "(":
            depth += 1
        elif not quote and c == ")":
            depth -= 1
        elif not quote and depth == 0 and c == "|":
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def _strip_outer(p: str) -> str:
    while p.startswith("(") and p.endswith(")"):
        depth = 0
        for i, c in enumerate(p):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(p) - 1:
                return p
        p = p[1:-1].strip()
    return p


@cache
def branches(resource_type: str, expression: str) -> tuple[Branch, ...]:
    out: list[Branch] = []
    for part in split_union(expression):
        part = _strip_outer(part)
        lead = _LEADING.match(part)
        head = lead.group(1) if lead else ""
        if (
            is_resource_type(head)
            and head != resource_type
            and head not in ("Resource", "DomainResource")
        ):
            continue
        target = None
        m = _RESOLVE.search(part)
        if m:
            target = m.group(1)
            part = part[: m.start()]
        if head in ("Resource", "DomainResource"):
            part = resource_type + part[len(head) :]
        fn: Evaluator | None = compile_path(part)  # plain paths: a dict walk, same result
        needs: tuple[str, ...] | None = None
        absent: tuple[Any, ...] = ()
        if fn is None:
            try:
                fn = fp_compile(part, models["r4"])
            except Exception:  # noqa: S112 - an unsupported expression indexes nothing
                continue
            needs, absent = _when_absent(resource_type, part, fn)
        out.append(Branch(fn, target, needs, absent))
    return tuple(out)


def evaluate(resource_type: str, expression: str, resource: dict[str, Any]) -> list[Any]:
    """Every node the expression selects in ``resource`` (reference-type filters applied)."""
    nodes: list[Any] = []
    for branch in branches(resource_type, expression):
        if branch.needs is not None and not any(k in resource for k in branch.needs):
            found = list(branch.absent)  # what it selects without the element it reads
        else:
            try:
                found = branch.fn(resource)
            except Exception:  # noqa: S112 - fhirpathpy raises on odd data; index what we can
                continue
        if branch.target:
            found = [n for n in found if reference_type(n) == branch.target]
        nodes.extend(found)
    return nodes


def evaluate_on(node: Any, expression: str) -> list[Any]:
    """Evaluate a relative expression (composite components) on one node."""
    try:
        fn = _compiled_relative(expression)
        result: list[Any] = fn(node)
    except Exception:
        return []
    return result


_CHOICE = re.compile(r"\bvalue\.as\((\w+)\)")


@cache
def _compiled_relative(expression: str) -> Evaluator:
    # On a bare sub-node fhirpathpy has no type context to resolve ``value`` to ``valueQuantity``.
    expression = _CHOICE.sub(lambda m: "value" + m.group(1)[0].upper() + m.group(1)[1:], expression)
    walk = compile_relative(expression) or _union_of_relatives(expression)
    if walk is not None:
        return walk
    fn: Evaluator = fp_compile(expression, models["r4"])
    return fn


def _union_of_relatives(expression: str) -> Evaluator | None:
    """``valueDateTime | valuePeriod``: each branch a plain relative walk, results in order."""
    parts = split_union(expression)
    walks = [compile_relative(p) for p in parts]
    if len(parts) < 2 or any(w is None for w in walks):
        return None
    return lambda node: [n for w in walks if w is not None for n in w(node)]


def reference_type(node: Any) -> str | None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            parts = ref.split("/_history/")[0].rstrip("/").split("/")
            if len(parts) >= 2 and is_resource_type(parts[-2]):
                return parts[-2]
        t = node.get("type")
        if isinstance(t, str):
            return t
    return None
