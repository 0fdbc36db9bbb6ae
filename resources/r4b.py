"""Which R4B (4.3) model checks may follow the R4 (4.0.1) walker, and running them.

Why: the design card binds validation to the ``fhir.resources.R4B`` models, yet the content is
R4, and R4B changed some structures (Evidence, EvidenceVariable, Extension.value[x], …). The R4
walker (``resources.structure``) is the first and authoritative layer; the R4B model is a second
check that must never refuse what R4 allows. So the comparison is **directional**:

* harmful (``refuses-valid-r4``) — an R4 element the model lacks (a whole element or one choice
  type, e.g. ``Extension.valueMeta``), a changed type, single vs array, required in R4B where R4
  is optional, no R4B model at all;
* harmless (``harmless``) — elements or choice types only in R4B, or R4B looser than R4: the R4
  walker already refuses those.

``compare()`` puts every R4 type (``definitions/r4-structure.json``) beside its R4B model,
element by element (backbones recursively; each datatype once, as its own entry). Each harmful
difference becomes a trigger: ``skip-when-present`` (type → JSON names: the model would refuse
only an instance that has one) or ``skip-when-used`` (the model would refuse any instance that
uses the type). The walker marks a resource whose JSON hits a trigger, and that resource skips
the model; all others go through it (``resources.validation``). Primitive differences are triggers
too (``PRIMITIVE_RULES``): the R4B regexes read ``\\s`` as any Unicode whitespace, so some codes
and strings with e.g. U+00A0 are refused (``structure.r4b_string_ok`` says which), and its
base64Binary decodes, so ``a===`` (R4's regex allows it) is refused. R4B's ``enum_values`` on
codes are not enforced by fhir_core, so they are no difference.

Nested resources (``contained``, ``Bundle.entry.resource``, ``Bundle.entry.response.outcome``,
``Parameters.parameter.resource``) are set aside from their container and each goes through the
model of its own type (``set_aside``), so a Bundle's model never judges an entry of a type it
would refuse.

The result is committed as ``definitions/r4b-differences.json`` (``tools/r4b_differences.py``
writes it; ``tests/resources/test_r4b.py`` recomputes and compares it).
"""

from __future__ import annotations

import json
import types as pytypes
import typing
from functools import cache
from typing import Any

from resources.registry import DEFINITIONS, resource_types
from resources.structure import TypeDef, structure

DIFFERENCES_FILE = DEFINITIONS / "r4b-differences.json"
# R4B model fields with no R4 element counterpart by design (not data of the resource).
MODEL_ONLY = {"fhir_comments", "resource_type"}
# fhir_core's names for two primitive types, in FHIR's spelling.
PRIMITIVE_ALIASES = {"encodedBytes": "base64Binary", "uuidVersion": "uuid"}
# Found by probing fhir_core's primitives with valid R4 values; checked per value by the walker.
PRIMITIVE_RULES = [
    "code: R4B's ^[^\\s]+(\\s[^\\s]+)*$ reads \\s as any Unicode whitespace, so a code with "
    "U+00A0 next to a space, at an end or doubled is refused (R4: U+00A0 is a character)",
    "string: R4B's [ \\r\\n\\t\\S]+ (searched, not anchored) "
    "refuses a value made only of Unicode whitespace other than space, TAB, CR, LF",
    "base64Binary: a value R4's regex allows but base64 cannot decode (a===)",
]


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


def _choice_required(info: Any) -> bool:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return extra.get("one_of_many_required") is True


class _Result:
    """Differences of one R4 type, and the triggers they make."""

    def __init__(self) -> None:
        self.refuses: list[str] = []
        self.harmless: list[str] = []
        self.present: dict[str, set[str]] = {}  # walker type name -> JSON names
        self.used: set[str] = set()  # walker type names
        self.seen: set[str] = set()  # backbones compared (some recurse: Questionnaire.item.item)
        self.counted: set[str] = set()  # elements whose cardinality was compared (choices once)

    def on_present(self, td: TypeDef, names: list[str], msg: str) -> None:
        self.refuses.append(msg)
        self.present.setdefault(td.name, set()).update(names)

    def on_used(self, td: TypeDef, msg: str) -> None:
        self.refuses.append(msg)
        self.used.add(td.name)


def _json_names(td: TypeDef, json_name: str) -> list[str]:
    return [json_name, f"_{json_name}"] if f"_{json_name}" in td.fields else [json_name]


def _compare(td: TypeDef, model: Any, res: _Result) -> None:
    """Compare one R4 type or backbone with its R4B model class, into ``res``."""
    s = structure()
    if model is None:
        res.on_used(td, f"{td.name}: no R4B model")
        return
    fields = {
        f.alias or name: f for name, f in model.model_fields.items() if name not in MODEL_ONLY
    }
    for json_name, el in sorted(td.by_json.items()):
        tname = el.types[json_name]
        path = f"{td.name}.{json_name}"
        names = _json_names(td, json_name)
        f = fields.get(json_name)
        if f is None:
            res.on_present(td, names, f"{path}: {tname} in R4, not in R4B")
            continue
        is_list, r4b_type = _unwrap(f.annotation)
        if is_list != el.is_array:
            msg = f"{path}: max {el.max or '*'} in R4, {'*' if is_list else '1'} in R4B"
            res.on_present(td, names, msg)
        if len(el.types) == 1:
            r4b_required, where = _required(f), path
        else:  # a choice: required as a whole (fhir_core's one_of_many_required)
            r4b_required, where = _choice_required(f), f"{td.name}.{el.name}"
        if where not in res.counted:
            res.counted.add(where)
            if r4b_required and el.min == 0:
                res.on_used(td, f"{where}: min 0 in R4, 1 in R4B")
            elif el.min > 0 and not r4b_required:
                res.harmless.append(f"{where}: min {el.min} in R4, 0 in R4B")
        sub = s.types.get(tname)
        if sub is not None and sub.kind == "backbone":
            if is_list == el.is_array and sub.name not in res.seen:  # else a trigger already
                res.seen.add(sub.name)
                _compare(sub, _r4b_class(r4b_type), res)
            continue
        if r4b_type != tname:
            res.on_present(td, names, f"{path}: {tname} in R4, {r4b_type} in R4B")
    r4_names = set(td.by_json) | {f"_{j}" for j in td.by_json}
    for alias in sorted(set(fields) - r4_names):
        res.harmless.append(f"{td.name}.{alias}: only in R4B")


@cache
def compare() -> dict[str, Any]:
    """The directional comparison of every R4 type with R4B, as committed (see module doc)."""
    s = structure()
    types: dict[str, dict[str, list[str]]] = {}
    present: dict[str, set[str]] = {}
    used: set[str] = set()
    for name, td in s.types.items():
        if td.kind == "backbone" or name in ("Resource", "DomainResource"):
            continue
        res = _Result()
        _compare(td, _r4b_class(name), res)
        if res.refuses or res.harmless:
            types[name] = {"refuses-valid-r4": res.refuses, "harmless": res.harmless}
        for k, v in res.present.items():
            present.setdefault(k, set()).update(v)
        used |= res.used
    return {
        "primitives": PRIMITIVE_RULES,
        "skip-when-present": {k: sorted(v) for k, v in sorted(present.items())},
        "skip-when-used": sorted(used),
        "model-used-for": sorted(t for t in resource_types() if t not in used),
        "types": types,
    }


@cache
def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DIFFERENCES_FILE.read_text(encoding="utf-8"))
    return data


def model_used_for(resource_type: str) -> bool:
    """Whether the R4B model checks ``resource_type`` (unless the instance hits a trigger)."""
    return resource_type in committed()["model-used-for"]


@cache
def _holders() -> dict[str, dict[str, str | None]]:
    """Type → {JSON name: None (a nested resource) or the type to descend into}.

    Only the paths that lead to a nested resource: every resource's ``contained``,
    ``Bundle.entry(.resource|.response.outcome)``, ``Parameters.parameter(.part)*.resource``.
    """
    s = structure()
    plan: dict[str, dict[str, str | None]] = {}
    changed = True
    while changed:
        changed = False
        for name, td in s.types.items():
            for key, f in td.fields.items():
                target: str | None
                if f.tname == "Resource":
                    target = None
                elif f.typedef is not None and f.typedef.name in plan:
                    target = f.typedef.name
                else:
                    continue
                if key not in plan.get(name, {}):
                    plan.setdefault(name, {})[key] = target
                    changed = True
    return plan


def set_aside(value: dict[str, Any], type_name: str) -> dict[str, Any]:
    """``value`` without its nested resources (copies only what leads to one; the walker has
    already checked the shapes). Each nested resource is checked by its own model instead."""
    plan = _holders().get(type_name)
    if not plan or not any(k in value for k in plan):
        return value
    out = dict(value)
    for key, sub in plan.items():
        if key not in out:
            continue
        if sub is None:
            del out[key]
        elif type(out[key]) is list:
            out[key] = [set_aside(v, sub) if type(v) is dict else v for v in out[key]]
        elif type(out[key]) is dict:
            out[key] = set_aside(out[key], sub)
    return out


@cache
def model_class(resource_type: str) -> Any:
    return _r4b_class(resource_type)


def _path(root: str, loc: tuple[Any, ...] | list[Any]) -> str:
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(err: Any) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown element"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def model_issues(value: dict[str, Any], resource_type: str, path: str) -> list[tuple[str, str]]:
    """Issues the R4B model finds in one resource (nested ones set aside), as (diagnostics,
    FHIRPath expression) like the walker's; empty when it accepts."""
    from pydantic import ValidationError

    model = model_class(resource_type)
    if model is None:  # not reached: such types are in skip-when-used
        return []
    try:
        model.model_validate(set_aside(value, resource_type))
    except ValidationError as exc:
        return [(_message(e), _path(path, e["loc"])) for e in exc.errors(include_url=False)]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # some validators raise
        return [(f"R4B model: {str(exc)[:500]}", path)]
    return []
