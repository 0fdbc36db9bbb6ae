"""Structural validation of incoming resources against the FHIR R4 (4.0.1) definitions.

Both layers run in one pass over the JSON (``resources.structure``), R4 for every type:

1. FHIR JSON rules (json.html, datatypes.html#string): no null (except as a primitive array's
   placeholder), no empty strings, arrays or objects, and no control characters below U+0020
   other than TAB, CR and LF in any string. Everything else Unicode allows (U+00A0, U+2028,
   emoji…) is accepted.
2. The R4 StructureDefinitions: unknown elements, JSON types, cardinality, choice-type
   exclusivity, required-binding codes, primitive formats, calendar dates, integer ranges;
   nested resources (``contained``, ``Bundle.entry.resource``, ``Parameters.parameter.resource``)
   each as their own type.

The R4B models of ``fhir.resources`` are not used: ``resources/r4b.py`` compares them with R4 and
finds that no R4 type's structure agrees whole (Extension.value[x] itself differs, and Evidence,
EvidenceVariable, … differ outright; ``definitions/r4b-differences.json``), while layer 2 carries
every check they made. Errors come back as a list of issues with a FHIRPath ``expression`` so a
client can find the bad element.
"""

from __future__ import annotations

import re
from typing import Any

from resources.registry import is_resource_type
from resources.structure import structure_issues

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}\Z")  # \Z: "$" would allow a final newline


class ResourceInvalid(Exception):
    """Raised with ``issues``: a list of (diagnostics, expression) pairs."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(d for d, _ in issues))
        self.issues = issues


def validate_resource(resource: Any, resource_type: str) -> None:
    """Raise ``ResourceInvalid`` unless ``resource`` is a valid R4 ``resource_type``."""
    if not isinstance(resource, dict):
        raise ResourceInvalid([("the body must be a JSON object holding a FHIR resource", "")])
    actual = resource.get("resourceType")
    if not isinstance(actual, str) or not is_resource_type(actual):
        raise ResourceInvalid([(f"unknown or missing resourceType: {actual!r}", "resourceType")])
    if actual != resource_type:
        raise ResourceInvalid(
            [
                (
                    f"resourceType {actual!r} does not match the URL type {resource_type!r}",
                    "resourceType",
                )
            ]
        )
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not ID_PATTERN.match(rid)):
        raise ResourceInvalid([("id must match [A-Za-z0-9-.]{1,64}", f"{resource_type}.id")])
    issues = structure_issues(resource, resource_type)
    if issues:
        raise ResourceInvalid(issues)
