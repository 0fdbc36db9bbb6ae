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
from server.search import fhirpath
from server.search.index import indexable_params
from server.search.pathwalk import compile_path

SEED = Path(__file__).resolve().parents[3] / "seed" / "data"


def corpus() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(SEED.glob("*.json")):
        out += [e["resource"] for e in json.loads(path.read_text())["entry"]]
    return out + list(itertools.islice(generated(600), 600))


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
        if part.split(".")[0] == resource_type and ".where(" not in part:
            parts.append(part)
    return parts


@pytest.mark.parametrize(
    ("expression", "compiled"),
    [
        ("Patient.name.family", True),
        ("Observation.effective", True),  # choice: effectiveDateTime, effectivePeriod, ...
        ("Observation.component.value", True),
        ("Observation.value.as(Quantity)", False),
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
            expected = fp_compile(part, models["r4"])(resource)
            assert walker(resource) == expected, (part, resource.get("id"))
            checked += 1
    assert checked > 5000
