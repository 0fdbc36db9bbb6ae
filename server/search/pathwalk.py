"""Plain dotted FHIRPath expressions (``Observation.code``, ``Patient.name.family``) compiled to
dictionary walks, so index extraction skips fhirpathpy's interpreter for ~85% of the R4
search-parameter branches (measured: extraction was the largest cost of a write).

Only expressions whose result is provably the same as fhirpathpy's are compiled: every step is a
plain element name, and the element types are followed with fhirpathpy's own R4 model
(``path2Type``, ``choiceTypePaths``, ``pathsDefinedElsewhere``) so choice elements
(``Observation.effective`` → ``effectiveDateTime``/``effectivePeriod``/...) and elements inside
datatypes resolve exactly as the interpreter resolves them. Anything else returns None and the
caller falls back to fhirpathpy. ``tests/server/search/test_pathwalk.py`` checks equality on
every demo and generated resource.

Also compiled (the rest of the cost: Observation's value/component parameters, measured as ~60%
of its extraction time after the plain paths): a cast of a choice element, ``P as T``,
``P.as(T)`` and ``(P as T).rest``, which reads the one JSON key of that type
(``valueQuantity``); the bare resource type (composites' base, ``Observation``); and the
relative paths composites evaluate on a node. One deliberate difference from fhirpathpy: its
``as`` raises on a collection of more than one item (``Observation.component.value as
Quantity`` on a blood pressure's two components), which indexed *nothing*; the walk casts each
item, as the parameter intends (R5 writes these as ``ofType``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from fhirpathpy.models import models

_SIMPLE = re.compile(r"^[A-Z][A-Za-z]+(\.[a-z][A-Za-z0-9]*)+$")
_TYPE_ONLY = re.compile(r"^[A-Z][A-Za-z]+$")
_RELATIVE = re.compile(r"^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*$")
_STEPS = r"(?P<rest>(\.[a-z][A-Za-z0-9]*)*)"
_CAST = [
    re.compile(r"^(?P<path>[A-Z][A-Za-z]+(\.[a-z][A-Za-z0-9]*)+)\s+as\s+(?P<type>[A-Za-z]+)$"),
    re.compile(r"^(?P<path>[A-Z][A-Za-z]+(\.[a-z][A-Za-z0-9]*)+)\.as\((?P<type>[A-Za-z]+)\)$"),
    re.compile(
        r"^\((?P<path>[A-Z][A-Za-z]+(\.[a-z][A-Za-z0-9]*)+)\s+as\s+(?P<type>[A-Za-z]+)\)"
        + _STEPS
        + "$"
    ),
    re.compile(
        r"^\((?P<path>[A-Z][A-Za-z]+(\.[a-z][A-Za-z0-9]*)+)\.as\((?P<type>[A-Za-z]+)\)\)"
        + _STEPS
        + "$"
    ),
]
_MODEL: dict[str, Any] = models["r4"]
_PRIMITIVE_OR_BACKBONE = {"BackboneElement", "Element"}
# FHIR's primitive types (the model's choice lists capitalise them: ``String``, ``DateTime``).
_PRIMITIVES = frozenset(
    [
        "boolean",
        "integer",
        "string",
        "decimal",
        "uri",
        "url",
        "canonical",
        "base64Binary",
        "instant",
        "date",
        "dateTime",
        "time",
        "code",
        "oid",
        "id",
        "markdown",
        "unsignedInt",
        "positiveInt",
        "uuid",
    ]
)

Walker = Callable[[dict[str, Any]], list[Any]]


def _step_keys(context: str, seg: str) -> tuple[tuple[str, ...], str | None] | None:
    """The JSON keys one step reads and the model path of what it lands on (None: last step
    only, e.g. after a choice); None when the walk cannot be proven equal."""
    path = f"{context}.{seg}"
    path = _MODEL["pathsDefinedElsewhere"].get(path, path)
    choices = _MODEL["choiceTypePaths"].get(path)
    if choices:
        return tuple(seg + t[0].upper() + t[1:] for t in choices), None
    target = _MODEL["path2Type"].get(path)
    if target is None or target in _PRIMITIVE_OR_BACKBONE:
        return (seg,), path  # backbone element (or unknown): stay on the element path
    return (seg,), target


def element_keys(resource_type: str, element: str) -> tuple[str, ...]:
    """The JSON keys that can hold ``resource_type.element`` for fhirpathpy: the element's own
    (each ``[x]`` choice spelled out) and their ``_`` twins (a primitive's id/extensions)."""
    step = _step_keys(resource_type, element)
    keys = step[0] if step is not None else (element,)
    return keys + tuple(f"_{k}" for k in keys)


def _walker(steps: list[tuple[str, ...]]) -> Walker:
    def walk(resource: dict[str, Any]) -> list[Any]:
        nodes: list[Any] = [resource]
        for keys in steps:
            found: list[Any] = []
            for node in nodes:
                if not isinstance(node, dict):
                    continue
                for key in keys:
                    value = node.get(key)
                    if value is None:
                        continue
                    if isinstance(value, list):
                        found.extend(v for v in value if v is not None)
                    else:
                        found.append(value)
            nodes = found
            if not nodes:
                break
        return nodes

    return walk


def _steps(context: str | None, segments: list[str]) -> tuple[list[tuple[str, ...]], str | None]:
    """The key steps of ``segments`` from ``context`` and the model path they end on.

    Raises ValueError when a step cannot be proven equal (a step after a choice element)."""
    steps: list[tuple[str, ...]] = []
    for seg in segments:
        if context is None:
            raise ValueError(seg)  # a step after a choice element: leave it to fhirpathpy
        step = _step_keys(context, seg)
        if step is None:
            raise ValueError(seg)
        keys, context = step
        steps.append(keys)
    return steps, context


def _cast(expression: str) -> Walker | None:
    """``P as T`` / ``P.as(T)`` (optionally ``(…).rest``) where P ends on a choice element."""
    for pattern in _CAST:
        m = pattern.match(expression)
        if m is None:
            continue
        head, *segments = m.group("path").split(".")
        try:
            steps, context = _steps(head, segments[:-1])
        except ValueError:
            return None
        if context is None:
            return None
        path = f"{context}.{segments[-1]}"
        path = _MODEL["pathsDefinedElsewhere"].get(path, path)
        wanted = m.group("type")
        typed = [
            t for t in _MODEL["choiceTypePaths"].get(path) or [] if t.lower() == wanted.lower()
        ]
        if len(typed) != 1:
            return None  # not a choice, or not one of its types: leave it to fhirpathpy
        t = typed[0]
        steps.append((segments[-1] + t[0].upper() + t[1:],))
        rest = (m.groupdict().get("rest") or "").split(".")[1:]
        if rest and t[0].lower() + t[1:] in _PRIMITIVES:
            return None  # a step below a primitive (``.text`` of a string): not a model path
        try:
            more, _ = _steps(t, rest)
        except ValueError:
            return None
        return _walker(steps + more)
    return None


@cache
def compile_path(expression: str) -> Walker | None:
    if _TYPE_ONLY.match(expression):
        return lambda resource: [resource] if resource.get("resourceType") == expression else []
    if not _SIMPLE.match(expression):
        return _cast(expression)
    head, *segments = expression.split(".")
    try:
        steps, _ = _steps(head, segments)
    except ValueError:
        return None
    return _walker(steps)


@cache
def compile_relative(expression: str) -> Walker | None:
    """A relative dotted path (``code``, ``valueQuantity``) on a bare node, which has no type
    context: fhirpathpy reads plain keys there, and so does the walk. None for anything else."""
    if not _RELATIVE.match(expression):
        return None
    return _walker([(seg,) for seg in expression.split(".")])
