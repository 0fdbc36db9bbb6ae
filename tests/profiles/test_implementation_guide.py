"""The guide's ImplementationGuide lists every definition file, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from profiles import definitions_dir
from profiles.conformance import IMPLEMENTATION_GUIDE, conformance_resources, lookup
from resources.validation import validate_resource

IG_FILE = "ImplementationGuide-consilium.json"
# Not a FHIR resource: the curated SNOMED CT hierarchy slice (profiles/README.md).
NOT_RESOURCES = {"snomed/hierarchy-subset.json"}
# R4B-shaped topics, referenced by canonical only: R4 has no SubscriptionTopic resource.
NOT_R4_TYPES = {"SubscriptionTopic"}


def _ig() -> dict[str, Any]:
    ig = lookup(IMPLEMENTATION_GUIDE, "ImplementationGuide")
    assert ig is not None
    return ig


def _file_keys() -> set[str]:
    """``Type/id`` of every resource in every JSON file under definitions/ (recursive)."""
    root = definitions_dir()
    keys: set[str] = set()
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root).as_posix()
        if rel in NOT_RESOURCES or rel == IG_FILE:
            continue
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        for r in doc if isinstance(doc, list) else [doc]:
            if r["resourceType"] in NOT_R4_TYPES:
                continue
            keys.add(f"{r['resourceType']}/{r['id']}")
    return keys


def test_the_guide_lists_every_definition_file_and_nothing_else() -> None:
    listed = [r["reference"]["reference"] for r in _ig()["definition"]["resource"]]
    assert len(listed) == len(set(listed))
    assert set(listed) == _file_keys()


def test_every_listed_resource_is_a_seeded_conformance_resource() -> None:
    seeded = {f"{r['resourceType']}/{r['id']}" for r in conformance_resources()}
    listed = {r["reference"]["reference"] for r in _ig()["definition"]["resource"]}
    assert listed <= seeded
    assert "ImplementationGuide/consilium" in seeded


def test_the_guide_is_r4_and_valid() -> None:
    ig = _ig()
    assert ig["fhirVersion"] == ["4.0.1"]
    validate_resource(ig, "ImplementationGuide")
