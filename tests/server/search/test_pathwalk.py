"""Compiled dotted paths must select exactly what fhirpathpy selects (pure, table-driven)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models

from bench.datagen import resources as generated
from server import fhirjson
from server.search import fhirpath
from server.search.index import indexable_params
from server.search.pathwalk import compile_path

SEED = Path(__file__).resolve().parents[3] / "seed" / "data"


def corpus() -> list[dict[str, Any]]:
    """Demo and generated resources as the server holds them: parsed by ``fhirjson.loads``
    (decimals as ``Decimal``, which is also what fhirpathpy turns a Quantity's float into)."""
    out: list[dict[str, Any]] = []
    for path in sorted(SEED.glob("*.json")):
        out += [e["resource"] for e in fhirjson.loads(path.read_text())["entry"]]
    made = itertools.islice(generated(600), 600)
    return out + [fhirjson.loads(json.dumps(r)) for r in made]


def simple_branches(resource_type: str) -> list[str]:
    found = []
    for param in indexable_params(resource_type).values():
        assert param.expression is not None
        for part in fhirpathpy_branches(param.expression, resource_type):
            if compile_path(part) is not None:
                found.append(part)
    return found


def fhirpathpy_branches(expression: str, resource_type: str) -> list[str]:
    parts = []
    for part in fhirpath.split_union(expression):
        part = fhirpath._strip_outer(part)
        if part.startswith(("Resource.", "DomainResource.")):
            part = resource_type + part[part.index(".") :]
        if part.lstrip("(").split(".")[0].split(" ")[0] == resource_type and ".where(" not in part:
            parts.append(part)
    return parts


@pytest.mark.parametrize(
    ("expression", "compiled"),
    [
        ("Patient.name.family", True),
        ("Observation.effective", True),  # choice: effectiveDateTime, effectivePeriod, ...
        ("Observation.component.value", True),
        ("Observation.value.as(Quantity)", True),  # a cast of a choice: valueQuantity
        ("Observation.value as Quantity", True),
        ("(Observation.value as CodeableConcept).text", True),
        ("Observation.component.value as Quantity", True),
        ("Observation", True),  # a composite's base: the resource itself
        ("Observation.value as Money", False),  # not one of the choice's types
        ("Observation.subject as Reference", False),  # not a choice element
        ("(Observation.value as string).text", False),  # a step below a primitive
        ("Patient.name.where(use='official')", False),
        ("Observation.effective.start", False),  # a step after a choice: left to fhirpathpy
        ("patient.name", False),
    ],
)
def test_what_compiles(expression: str, compiled: bool) -> None:
    assert (compile_path(expression) is not None) is compiled


def test_choice_elements_resolve_like_fhirpath() -> None:
    obs = {"resourceType": "Observation", "effectivePeriod": {"start": "2026-01-01"}}
    walker = compile_path("Observation.effective")
    assert walker is not None
    assert walker(obs) == fp_compile("Observation.effective", models["r4"])(obs)


def test_compiled_paths_match_fhirpathpy_on_demo_and_generated_data() -> None:
    checked = 0
    for resource in corpus():
        rtype = resource["resourceType"]
        for part in simple_branches(rtype):
            walker = compile_path(part)
            assert walker is not None
            try:
                expected = fp_compile(part, models["r4"])(resource)
            except ValueError:
                continue  # fhirpathpy's `as` on several items raises (see the next test)
            assert walker(resource) == expected, (part, resource.get("id"))
            checked += 1
    assert checked > 5000


def test_a_cast_over_several_items_casts_each_where_fhirpathpy_raises() -> None:
    bp = {
        "resourceType": "Observation",
        "component": [
            {"code": {"text": "systolic"}, "valueQuantity": {"value": 142}},
            {"code": {"text": "diastolic"}, "valueQuantity": {"value": 91}},
            {"code": {"text": "note"}, "valueString": "seated"},
        ],
    }
    with pytest.raises(ValueError):
        fp_compile("Observation.component.value as Quantity", models["r4"])(bp)
    walker = compile_path("Observation.component.value as Quantity")
    assert walker is not None
    assert walker(bp) == [{"value": 142}, {"value": 91}]


def test_casts_are_compiled_for_observation_values() -> None:
    casts = [p for p in simple_branches("Observation") if " as " in p or ".as(" in p]
    assert "Observation.value as Quantity" in casts
    assert "(Observation.value as CodeableConcept).text" in casts


def test_composite_components_match_fhirpathpy_on_demo_and_generated_data() -> None:
    checked = 0
    for resource in corpus():
        rtype = resource["resourceType"]
        for param in indexable_params(rtype).values():
            if param.type != "composite" or param.expression is None:
                continue
            for node in fhirpath.evaluate(rtype, param.expression, resource):
                for _, expression in param.components:
                    rewritten = fhirpath._CHOICE.sub(
                        lambda m: "value" + m.group(1)[0].upper() + m.group(1)[1:], expression
                    )
                    expected = fp_compile(rewritten, models["r4"])(node)
                    assert fhirpath.evaluate_on(node, expression) == expected, (
                        expression,
                        resource.get("id"),
                    )
                    checked += 1
    assert checked > 500
