"""Value set membership and code system look-ups over our own definitions (no terminology server).

Three-valued on purpose: ``True`` (in the value set), ``False`` (certainly not), ``None`` (cannot
tell without a terminology server, e.g. a SNOMED CT ``is-a`` filter on a code that is not the
filter's root). The validator turns ``None`` into a warning, never into a rejection: refusing a
legitimate SNOMED descendant because we cannot expand SNOMED would be worse than letting a
human review it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from profiles import definitions_dir
from profiles.conformance import BASE, CM_ICD10, CS_CONDITIONS, VS_CONDITIONS, lookup

Membership = bool | None
_IS_A_OPS = ("is-a", "descendent-of", "=")
SCT = "http://snomed.info/sct"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")
CM_SNOMED = f"{BASE}/ConceptMap/covered-serious-conditions-to-snomed"
_ICD = re.compile(r"^([A-Z][0-9][0-9A-Z])(?:\.([0-9A-Z]{1,4}))?$")
_NO_MATCH = ("unmatched", "disjoint")


@cache
def _hierarchy() -> dict[str, tuple[str, ...]]:
    """SNOMED code → its parents within the shipped subset (``definitions/snomed``).

    Not a FHIR resource and not seeded: a curated slice of SNOMED CT so the common descendants of
    our is-a roots are decidable without a terminology server."""
    path = definitions_dir() / "snomed" / "hierarchy-subset.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {k: tuple(v.get("parents", [])) for k, v in doc["concepts"].items()}


def snomed_subsumes(root: str, code: str) -> Membership:
    """Is ``code`` ``root`` or a descendant of it? ``None`` when the subset does not know ``code``.

    Any parent path reaching ``root`` is enough (SNOMED is a polyhierarchy)."""
    if code == root:
        return True
    tree = _hierarchy()
    if code not in tree:
        return None
    seen: set[str] = set()
    todo = [code]
    while todo:
        c = todo.pop()
        if c == root:
            return True
        if c not in seen:
            seen.add(c)
            todo.extend(tree.get(c, ()))
    return False


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
            if system == SCT and code != root:
                got = snomed_subsumes(root, code)
                if got is True:
                    continue
                if got is False:
                    return False
            return None  # an external hierarchy (SNOMED): undecidable outside the shipped subset
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
    return value_set_contains(vs, system, code)


def value_set_contains(vs: dict[str, Any], system: str, code: str) -> Membership:
    """``in_value_set`` for a ValueSet resource in hand (e.g. one a client stored); the code
    systems and nested value sets it names are the guide's own."""
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
    if not system or not code:
        return None
    source = f"{system}|{code}"
    if system == CS_CONDITIONS:
        return CoveredMatch(code, "guide", source) if concept(system, code) else None
    if system in ICD10_SYSTEMS:
        got = _icd10_condition(system, code)
        return CoveredMatch(got, "map", source) if got else None
    if system == SCT:
        if code in _snomed_targets():
            return CoveredMatch(_snomed_targets()[code], "map", source)
        for root, condition in _is_a_roots().items():
            if snomed_subsumes(root, code) is True:
                return CoveredMatch(condition, "hierarchy", source)
    return None


def _mapped(target: dict[str, Any]) -> bool:
    return bool(target.get("code")) and target.get("equivalence") not in _NO_MATCH


@cache
def _icd10_map(system: str) -> tuple[tuple[str, str, str, dict[str, Any]], ...]:
    """(category, subdivision, condition, target) of the ICD-10 ConceptMap group for
    ``system``."""
    cm = lookup(CM_ICD10, "ConceptMap") or {}
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    for group in cm.get("group", []):
        if group.get("source") != system:
            continue
        for el in group.get("element", []):
            m = _ICD.match(el["code"])
            if m is None:
                continue
            for t in el.get("target", []):
                if _mapped(t):
                    out.append((m.group(1), m.group(2) or "", t["code"], t))
    return tuple(out)


def _icd10_condition(system: str, code: str) -> str | None:
    got = icd10_match(system, code)
    return str(got[1]["code"]) if got else None


def icd10_match(system: str, code: str) -> tuple[str, dict[str, Any]] | None:
    """(the mapped element code, its target) of the ICD-10 ConceptMap group for ``code``.

    A mapped code covers itself and its subcodes: ICD-10 is positional, so ``C18`` covers
    ``C18.7`` and ``N18.5`` does not cover ``N18.4``. The most specific mapping wins."""
    m = _ICD.match(code.strip().upper())
    if m is None:
        return None
    cat, sub = m.group(1), m.group(2) or ""
    rows = _icd10_map(system)
    hits = [(len(s), c, i) for i, (k, s, c, _) in enumerate(rows) if k == cat and sub.startswith(s)]
    if not hits:
        return None
    k, s, _, target = rows[max(hits)[2]]
    return (f"{k}.{s}" if s else k), dict(target)


@cache
def _snomed_targets() -> dict[str, str]:
    """SNOMED concept → guide code, read backwards from covered-serious-conditions-to-snomed."""
    cm = lookup(CM_SNOMED, "ConceptMap") or {}
    out: dict[str, str] = {}
    for group in cm.get("group", []):
        if group.get("target") != SCT:
            continue
        for el in group.get("element", []):
            for t in el.get("target", []):
                if _mapped(t):
                    out.setdefault(t["code"], el["code"])
    return out


@cache
def _is_a_roots() -> dict[str, str]:
    """The SNOMED is-a roots of the covered value set → guide code. Proxies included by exact
    code have no filter, so they never gain descendants."""
    vs = lookup(VS_CONDITIONS, "ValueSet") or {}
    out: dict[str, str] = {}
    for inc in vs.get("compose", {}).get("include", []):
        if inc.get("system") != SCT:
            continue
        for f in inc.get("filter", []):
            root = f.get("value")
            if f.get("op") == "is-a" and root in _snomed_targets():
                out[root] = _snomed_targets()[root]
    return out


def default_specialty(condition: str) -> dict[str, Any] | None:
    """The ``default-specialty`` Coding of a covered condition (routing to an expert)."""
    values = property_values(CS_CONDITIONS, condition, "default-specialty")
    return dict(values[0]) if values and isinstance(values[0], dict) else None


# The building blocks the terminology operations (expansion.py, terminology_ops.py) reuse.
def walk_concepts(
    concepts: list[dict[str, Any]],
) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Every concept of a nested ``concept`` list with its ancestors' codes, outermost first
    (a CodeSystem's hierarchy is its nesting)."""
    return _walk(concepts)


def include_contains(inc: dict[str, Any], system: str, code: str) -> Membership:
    """Does one ``compose.include`` (or ``exclude``) clause hold ``system|code``?"""
    return _include_contains(inc, system, code)


def snomed_hierarchy() -> dict[str, tuple[str, ...]]:
    """The shipped SNOMED CT subset: code → its nearest parents within the subset."""
    return _hierarchy()
