"""Value set membership and code system look-ups over our own definitions (no terminology server).

Three-valued on purpose: ``True`` (in the value set), ``False`` (certainly not), ``None`` (cannot
tell without a terminology server, e.g. a SNOMED CT ``is-a`` filter on a code that is not the
filter's root). The validator turns ``None`` into a warning, never into a rejection: refusing a
legitimate SNOMED descendant because we cannot expand SNOMED would be worse than letting a
human review it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from profiles.conformance import CS_CONDITIONS, lookup

Membership = bool | None
_IS_A_OPS = ("is-a", "descendent-of", "=")


def _walk(
    concepts: list[dict[str, Any]], parents: tuple[str, ...] = ()
) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    for c in concepts:
        yield c, parents
        yield from _walk(c.get("concept", []), (*parents, c["code"]))


def concept(system: str, code: str) -> dict[str, Any] | None:
    """The concept ``code`` of our code system ``system`` (None if unknown system or code)."""
    cs = lookup(system, "CodeSystem")
    if cs is None:
        return None
    for c, _ in _walk(cs.get("concept", [])):
        if c.get("code") == code:
            return c
    return None


def ancestors(system: str, code: str) -> tuple[str, ...]:
    cs = lookup(system, "CodeSystem")
    if cs is None:
        return ()
    for c, parents in _walk(cs.get("concept", [])):
        if c.get("code") == code:
            return parents
    return ()


def property_values(system: str, code: str, prop: str) -> list[Any]:
    """The values of property ``prop`` on a concept (``value[x]`` unwrapped)."""
    c = concept(system, code)
    out: list[Any] = []
    for p in c.get("property", []) if c else []:
        if p.get("code") == prop:
            out.extend(v for k, v in p.items() if k.startswith("value"))
    return out


def codes(system: str) -> list[str]:
    cs = lookup(system, "CodeSystem")
    return [c["code"] for c, _ in _walk(cs.get("concept", []))] if cs else []


def _include_contains(inc: dict[str, Any], system: str, code: str) -> Membership:
    if inc.get("valueSet"):
        results = [in_value_set(u, system, code) for u in inc["valueSet"]]
        if all(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if inc.get("system") != system:
        return False
    if "concept" in inc:
        return any(c.get("code") == code for c in inc["concept"])
    ours = lookup(system, "CodeSystem") is not None
    if "filter" in inc:
        for f in inc["filter"]:
            if f.get("property") != "concept" or f.get("op") not in _IS_A_OPS:
                return None
            root = f.get("value")
            if code == root and f.get("op") != "descendent-of":
                continue
            if ours:
                if root not in ancestors(system, code):
                    return False
                continue
            return None  # an external hierarchy (SNOMED): only the root itself is decidable
        return True
    if ours:
        return code in codes(system)
    return None  # a whole external code system: any code may be valid


def in_value_set(url: str, system: str | None, code: str | None) -> Membership:
    """Is ``system|code`` in the value set ``url``? ``None`` when it cannot be decided here.

    A missing system is only acceptable for a ``code`` element, where the caller passes the
    system the value set implies (see ``implied_systems``).
    """
    vs = lookup(url, "ValueSet")
    if vs is None or not code or not system:
        return None
    compose = vs.get("compose", {})
    undecided = False
    for inc in compose.get("include", []):
        got = _include_contains(inc, system, code)
        if got is True:
            for exc in compose.get("exclude", []):
                if _include_contains(exc, system, code) is True:
                    return False
            return True
        if got is None:
            undecided = True
    return None if undecided else False


def implied_systems(url: str) -> list[str]:
    """The code systems a value set draws on (to check a bare ``code`` element)."""
    vs = lookup(url, "ValueSet")
    if vs is None:
        return []
    return [i["system"] for i in vs.get("compose", {}).get("include", []) if i.get("system")]


@dataclass(frozen=True)
class CoveredMatch:
    """Which covered serious condition a coded diagnosis is, and how we know.

    ``via``: ``guide`` (the insurer's own code), ``map`` (a ConceptMap of the guide, e.g.
    ICD-10), ``hierarchy`` (a SNOMED CT descendant of a covered concept, from the shipped
    subset of the hierarchy). ``source`` is the ``system|code`` that matched.
    """

    condition: str
    via: str
    source: str


def covered_condition(system: str | None, code: str | None) -> CoveredMatch | None:
    """The covered condition ``system|code`` denotes, or None when it is not (or not known to be)
    a covered condition."""
    if system == CS_CONDITIONS and code and concept(CS_CONDITIONS, code) is not None:
        return CoveredMatch(code, "guide", f"{system}|{code}")
    return None


def default_specialty(condition: str) -> dict[str, Any] | None:
    """The ``default-specialty`` Coding of a covered condition (routing to an expert)."""
    values = property_values(CS_CONDITIONS, condition, "default-specialty")
    return dict(values[0]) if values and isinstance(values[0], dict) else None
