"""Where the R4B (4.3) models of ``fhir.resources`` agree with the R4 (4.0.1) definitions.

Why: the only Python model library is R4B, and R4B changed the structure of some types (Evidence,
EvidenceVariable, … gained, lost or retyped elements), so an R4B model refuses valid R4 content
of those types. ``compare()`` puts every R4 type (``definitions/r4-structure.json``) beside its
R4B model, element by element: JSON name, single vs array, required or not, element type
(primitive, datatype, backbone — recursively), and reports where they differ. A type also differs
when a datatype it uses differs. Nested resources (``contained``, ``Bundle.entry.resource``,
``Parameters.parameter.resource``) are not part of their container's structure: each one is
validated as its own type.

The result is committed as ``definitions/r4b-differences.json`` (``tools/r4b_differences.py``
writes it; a test recomputes and compares it), so a change of either side is a visible diff.
"""

from __future__ import annotations

import json
import types as pytypes
import typing
from functools import cache
from typing import Any

from resources.registry import DEFINITIONS
from resources.structure import structure

DIFFERENCES_FILE = DEFINITIONS / "r4b-differences.json"
# R4B model fields with no R4 element counterpart by design (not data of the resource).
MODEL_ONLY = {"fhir_comments", "resource_type"}
# fhir_core's names for two primitive types, in FHIR's spelling.
PRIMITIVE_ALIASES = {"encodedBytes": "base64Binary", "uuidVersion": "uuid"}


def _r4b_class(name: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(name)
    except (KeyError, ValueError, ImportError):
        return None


def _unwrap(annotation: Any) -> tuple[bool, str]:
    """``(is_list, type name)`` of an R4B field: ``code``, ``boolean``, ``CodeableConcept``…"""
    is_list = False
    ann = annotation
    while True:
        origin = typing.get_origin(ann)
        if origin in (typing.Union, pytypes.UnionType):
            ann = next(a for a in typing.get_args(ann) if a is not type(None))
        elif origin is list:
            is_list, ann = True, typing.get_args(ann)[0]
        elif origin is typing.Annotated:
            meta = type(typing.get_args(ann)[1]).__name__
            name = meta[:1].lower() + meta[1:]
            return is_list, PRIMITIVE_ALIASES.get(name, name)
        else:
            break
    if ann is bool:
        return is_list, "boolean"
    name = str(getattr(ann, "__name__", ann))
    return is_list, name.removesuffix("Type")


def _required(info: Any) -> bool:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return bool(info.is_required() or extra.get("element_required"))


def _compare(r4_name: str, model: Any, out: list[str], seen: set[str]) -> set[str]:
    """Append differences of one R4 type/backbone to ``out``; return the datatypes it uses."""
    s = structure()
    td = s.types[r4_name]
    used: set[str] = set()
    if model is None:
        out.append(f"{r4_name}: no R4B model")
        return used
    fields = {
        f.alias or name: f for name, f in model.model_fields.items() if name not in MODEL_ONLY
    }
    for json_name, el in sorted(td.by_json.items()):
        tname = el.types[json_name]
        path = f"{r4_name}.{json_name}"
        f = fields.get(json_name)
        if f is None:
            out.append(f"{path}: not in R4B")
            continue
        is_list, r4b_type = _unwrap(f.annotation)
        if is_list != el.is_array:
            out.append(f"{path}: max {el.max or '*'} in R4, {'*' if is_list else '1'} in R4B")
        r4_required = el.min > 0 and len(el.types) == 1
        if r4_required != _required(f):
            out.append(f"{path}: min {el.min} in R4, {int(_required(f))} in R4B")
        if tname in s.types and s.types[tname].kind == "backbone":
            if tname not in seen:
                seen.add(tname)
                used |= _compare(tname, _r4b_class(r4b_type), out, seen)
            continue
        if tname in s.types and tname not in ("Resource",):
            used.add(tname)
        expected = "Resource" if tname == "Resource" else tname
        if r4b_type != expected:
            out.append(f"{path}: {tname} in R4, {r4b_type} in R4B")
    r4_names = set(td.by_json) | {f"_{j}" for j in td.by_json}
    for alias in sorted(set(fields) - r4_names):
        out.append(f"{r4_name}.{alias}: only in R4B")
    return used


def compare() -> dict[str, list[str]]:
    """``{R4 resource or datatype: [differences]}`` for every type that differs from R4B."""
    s = structure()
    own: dict[str, list[str]] = {}
    uses: dict[str, set[str]] = {}
    for name, td in s.types.items():
        if td.kind == "backbone" or name in ("Resource", "DomainResource"):
            continue
        out: list[str] = []
        uses[name] = _compare(name, _r4b_class(name), out, set())
        own[name] = out
    differs = {n for n, d in own.items() if d}
    changed = True
    while changed:  # a type differs when a datatype it uses (transitively) differs
        changed = False
        for name, used in uses.items():
            if name not in differs and used & differs:
                differs.add(name)
                changed = True
    return {
        name: own[name] or [f"uses {', '.join(sorted(uses[name] & differs))}, which differ"]
        for name in sorted(differs)
    }


@cache
def differing_types() -> frozenset[str]:
    """The committed list: types that must not be checked with their R4B model."""
    data = json.loads(DIFFERENCES_FILE.read_text(encoding="utf-8"))
    return frozenset(data)


def r4b_agrees(resource_type: str) -> bool:
    return resource_type not in differing_types()
