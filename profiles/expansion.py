"""``ValueSet/$expand`` over the guide's definitions, as a pure function (ValueSet in, expanded
ValueSet out), and the pieces the other terminology operations share (``terminology_ops``).

Why beside ``terminology.py`` and not in it: that module answers one question for the
validator and the eligibility rules (is this code in that value set, which covered condition is
it); the operations build their answers on top of it, and all of it in one file would pass the
house limit of ~600 lines. Every membership, hierarchy and ICD-10 rule is ``terminology.py``'s;
nothing here re-implements one.

No terminology server: we enumerate our own CodeSystems completely, and SNOMED CT only as far as
the shipped hierarchy subset (``definitions/snomed``) reaches. An expansion that depends on a
SNOMED ``is-a`` filter is therefore *partial*: every code listed is a member, but SNOMED holds
more. We return it anyway and mark it with the R4 core extension ``valueset-unclosed`` (the
listed codes are useful, and a 422 would hide them); a whole external code system (``all of
LOINC``) cannot be enumerated at all → ``TerminologyError`` 422 ``too-costly``; a filter we do
not implement → 422 ``not-supported``.

Errors are ``TerminologyError`` (status + OperationOutcome issue type); ``profiles`` imports
nothing of the server, so the operation modules turn them into ``FhirError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from profiles import definitions_dir
from profiles.conformance import conformance_resources, lookup
from profiles.terminology import (
    SCT,
    include_contains,
    snomed_hierarchy,
    snomed_subsumes,
    walk_concepts,
)

Resource = dict[str, Any]
Resolver = Callable[[str, str], Resource | None]  # (canonical url, resource type) → resource
UNCLOSED = "http://hl7.org/fhir/StructureDefinition/valueset-unclosed"
MAX_NESTING = 8  # include.valueSet chains (and cycles) stop here
_HIERARCHY_OPS = ("is-a", "descendent-of")


class TerminologyError(Exception):
    """The operation cannot answer: ``status`` (HTTP) and ``code`` (OperationOutcome issue type).

    404 ``not-found``: unknown value set, code system, map or code; 400 ``invalid``: bad
    paging or missing input; 422 ``not-supported`` / ``too-costly``: a definition we cannot
    evaluate without a terminology server."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# ------------------------------------------------------------------------------ displays
@cache
def _snomed_displays() -> dict[str, str]:
    """Every SNOMED display the guide states: the hierarchy subset, value set concept lists,
    map targets and the covered conditions' ``snomed`` property (first one wins)."""
    out: dict[str, str] = {}
    doc = json.loads((definitions_dir() / "snomed" / "hierarchy-subset.json").read_text("utf-8"))
    for code, c in doc["concepts"].items():
        if isinstance(c.get("display"), str):
            out.setdefault(code, c["display"])
    for res in conformance_resources():
        rtype = res.get("resourceType")
        if rtype == "ValueSet":
            for inc in res.get("compose", {}).get("include", []):
                if inc.get("system") == SCT:
                    for c in inc.get("concept", []):
                        if c.get("display"):
                            out.setdefault(c["code"], c["display"])
        elif rtype == "ConceptMap":
            for group in res.get("group", []):
                if group.get("target") == SCT:
                    for el in group.get("element", []):
                        for t in el.get("target", []):
                            if t.get("code") and t.get("display"):
                                out.setdefault(t["code"], t["display"])
        elif rtype == "CodeSystem":
            for c, _ in walk_concepts(res.get("concept", [])):
                for p in c.get("property", []):
                    v = p.get("valueCoding")
                    if isinstance(v, dict) and v.get("system") == SCT and v.get("display"):
                        out.setdefault(v["code"], v["display"])
    return out


def snomed_display(code: str) -> str | None:
    """The display the guide gives a SNOMED concept (None: the guide does not know it)."""
    return _snomed_displays().get(code)


# ------------------------------------------------------------------------------- entries
@dataclass(frozen=True)
class Entry:
    """One code of an expansion (``ValueSet.expansion.contains``)."""

    system: str
    code: str
    display: str | None = None
    version: str | None = None
    abstract: bool = False
    inactive: bool = False
    designation: tuple[Resource, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.system, self.code)

    def matches(self, text: str) -> bool:
        needle = text.casefold()
        return needle in self.code.casefold() or needle in (self.display or "").casefold()

    def to_json(self, designations: bool) -> Resource:
        out: Resource = {"system": self.system}
        if self.version:
            out["version"] = self.version
        if self.abstract:
            out["abstract"] = True
        if self.inactive:
            out["inactive"] = True
        out["code"] = self.code
        if self.display:
            out["display"] = self.display
        if designations and self.designation:
            out["designation"] = [dict(d) for d in self.designation]
        return out


def prop(concept: Resource, name: str) -> Any:
    for p in concept.get("property", []):
        if p.get("code") == name:
            return next((v for k, v in p.items() if k.startswith("value")), None)
    return None


def entry_of(cs: Resource, concept: Resource) -> Entry:
    status = prop(concept, "status")
    return Entry(
        cs["url"],
        concept["code"],
        concept.get("display"),
        cs.get("version"),
        abstract=prop(concept, "notSelectable") is True,
        inactive=status in ("retired", "deprecated", "inactive"),
        designation=tuple(concept.get("designation", [])),
    )


def resolver(resolve: Resolver | None) -> Resolver:
    return resolve if resolve is not None else lookup


@dataclass
class _Expansion:
    entries: list[Entry] = field(default_factory=list)
    complete: bool = True

    def add(self, items: Iterable[Entry]) -> None:
        seen = {e.key for e in self.entries}
        for e in items:
            if e.key not in seen:
                seen.add(e.key)
                self.entries.append(e)


def _listed(inc: Resource, system: str, cs: Resource | None) -> list[Entry]:
    """An include's explicit concept list: the display it states, else the code system's."""
    out = []
    for c in inc.get("concept", []):
        code = c.get("code")
        if not isinstance(code, str):
            continue
        base = None
        if cs is not None:
            base = next(
                (x for x, _ in walk_concepts(cs.get("concept", [])) if x.get("code") == code), None
            )
        if base is not None and cs is not None:
            e = entry_of(cs, base)
        else:
            e = Entry(system, code, snomed_display(code) if system == SCT else None)
        display = c.get("display") or e.display
        designation = tuple(c.get("designation", [])) or e.designation
        out.append(Entry(e.system, code, display, e.version, e.abstract, e.inactive, designation))
    return out


def _filtered_ours(cs: Resource, filters: list[Resource]) -> list[Entry]:
    """Our code system's concepts that pass every filter (hierarchy = nesting in ``concept``)."""
    out = []
    for c, parents in walk_concepts(cs.get("concept", [])):
        if all(_passes(c, parents, f) for f in filters):
            out.append(entry_of(cs, c))
    return out


def _passes(concept: Resource, parents: tuple[str, ...], f: Resource) -> bool:
    name, op, value = f.get("property"), f.get("op"), f.get("value")
    code = concept.get("code")
    if name == "concept" and op == "is-a":
        return code == value or value in parents
    if name == "concept" and op == "descendent-of":
        return value in parents
    if name == "concept" and op == "=":
        return code == value
    if op == "=" and isinstance(name, str):
        got = prop(concept, name)
        if isinstance(got, dict):
            got = got.get("code")
        return str(got).lower() == str(value).lower() if isinstance(got, bool) else got == value
    raise TerminologyError(
        422, "not-supported", f"value set filter {name} {op} {value} is not supported"
    )


def _filtered_snomed(filters: list[Resource]) -> tuple[list[Entry], bool]:
    """SNOMED filters from the shipped subset; (entries, complete)."""
    candidates: set[str] | None = None
    complete = True
    for f in filters:
        prop, op, root = f.get("property"), f.get("op"), f.get("value")
        if prop != "concept" or op not in (*_HIERARCHY_OPS, "=") or not isinstance(root, str):
            raise TerminologyError(
                422,
                "not-supported",
                f"SNOMED CT filter {prop} {op} {root} needs a terminology server",
            )
        if op == "=":
            found = {root}
        else:
            found = {
                c for c in snomed_hierarchy() if c != root and snomed_subsumes(root, c) is True
            }
            if op == "is-a":
                found.add(root)
            complete = False  # SNOMED holds descendants the subset does not list
        candidates = found if candidates is None else candidates & found
    codes = sorted(candidates or ())
    return [Entry(SCT, c, snomed_display(c)) for c in codes], complete


def _system_part(inc: Resource, resolve: Resolver) -> tuple[list[Entry], bool]:
    system = inc["system"]
    cs = resolve(system, "CodeSystem")
    if "concept" in inc:
        return _listed(inc, system, cs), True
    filters = list(inc.get("filter", []))
    if cs is not None:
        if cs.get("content") not in (None, "complete"):
            raise TerminologyError(
                422, "not-supported", f"code system {system} is not held in full here"
            )
        return _filtered_ours(cs, filters), True
    if system == SCT and filters:
        return _filtered_snomed(filters)
    if filters:
        raise TerminologyError(
            422, "not-supported", f"filters on {system} need a terminology server"
        )
    raise TerminologyError(
        422,
        "too-costly",
        f"all of {system} cannot be enumerated here (no terminology server holds it)",
    )


def _include(inc: Resource, resolve: Resolver, depth: int) -> tuple[list[Entry], bool]:
    entries: list[Entry] | None = None
    complete = True
    if inc.get("system"):
        entries, complete = _system_part(inc, resolve)
    for url in inc.get("valueSet", []):
        vs = resolve(url, "ValueSet")
        if vs is None:
            raise TerminologyError(422, "not-found", f"included value set {url} is not known")
        nested = _expand_compose(vs, resolve, depth + 1)
        complete = complete and nested.complete
        if entries is None:
            entries = nested.entries
        else:
            keys = {e.key for e in nested.entries}
            entries = [e for e in entries if e.key in keys]
    return entries or [], complete


def _expand_compose(vs: Resource, resolve: Resolver, depth: int = 0) -> _Expansion:
    if depth > MAX_NESTING:
        raise TerminologyError(
            422, "too-costly", f"value sets nest deeper than {MAX_NESTING} (a cycle?)"
        )
    compose = vs.get("compose") or {}
    out = _Expansion()
    for inc in compose.get("include", []):
        entries, complete = _include(inc, resolve, depth)
        out.add(entries)
        out.complete = out.complete and complete
    excludes = compose.get("exclude", [])
    if excludes:
        out.entries = [
            e
            for e in out.entries
            if not any(include_contains(x, e.system, e.code) is True for x in excludes)
        ]
    return out


def _check_paging(count: int | None, offset: int | None) -> None:
    if count is not None and count < 0:
        raise TerminologyError(400, "invalid", f"count must be 0 or more, got {count}")
    if offset is not None and offset < 0:
        raise TerminologyError(400, "invalid", f"offset must be 0 or more, got {offset}")


def expand(
    vs: Resource,
    *,
    timestamp: str,
    filter: str | None = None,
    count: int | None = None,
    offset: int | None = None,
    include_designations: bool = False,
    resolve: Resolver | None = None,
) -> Resource:
    """``ValueSet/$expand``: the value set (without ``compose``) with a flat ``expansion``.

    ``filter``: case-insensitive substring of the code or display; ``total`` counts the
    filtered codes before paging (``offset``, ``count``). A partial expansion (SNOMED ``is-a``
    beyond the shipped subset) carries ``valueset-unclosed`` = true.
    """
    _check_paging(count, offset)
    if vs.get("resourceType") != "ValueSet":
        raise TerminologyError(400, "invalid", "$expand needs a ValueSet")
    if "compose" not in vs and "expansion" in vs:
        raise TerminologyError(422, "not-supported", "the value set has no compose to expand")
    got = _expand_compose(vs, resolver(resolve))
    entries = [e for e in got.entries if filter is None or e.matches(filter)]
    start = offset or 0
    page = entries[start:] if count is None else entries[start : start + count]
    params: list[Resource] = []
    if filter is not None:
        params.append({"name": "filter", "valueString": filter})
    if offset is not None:
        params.append({"name": "offset", "valueInteger": offset})
    if count is not None:
        params.append({"name": "count", "valueInteger": count})
    if include_designations:
        params.append({"name": "includeDesignations", "valueBoolean": True})
    expansion: Resource = {}
    if not got.complete:
        expansion["extension"] = [{"url": UNCLOSED, "valueBoolean": True}]
    expansion["timestamp"] = timestamp
    expansion["total"] = len(entries)
    expansion["offset"] = start
    if params:
        expansion["parameter"] = params
    if page:
        expansion["contains"] = [e.to_json(include_designations) for e in page]
    out = {k: v for k, v in vs.items() if k not in ("compose", "expansion", "text", "meta")}
    out["expansion"] = expansion
    return out
