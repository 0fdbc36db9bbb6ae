"""Structural validation of incoming resources against the FHIR R4 (4.0.1) definitions.

Two layers, cheapest first, both R4 for every type:

1. FHIR JSON rules (json.html, datatypes.html#string): no null (except as an array placeholder),
   no empty strings, arrays or objects, and no control characters below U+0020 other than TAB,
   CR and LF in any string. Everything else Unicode allows (U+00A0, U+2028, emoji…) is accepted.
2. The R4 StructureDefinitions (``resources.structure``): unknown elements, JSON types,
   cardinality, choice-type exclusivity, required-binding codes, primitive formats, calendar
   dates, integer ranges; nested resources (``contained``, ``Bundle.entry.resource``,
   ``Parameters.parameter.resource``) each as their own type.

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
# datatypes.html#string: "Strings SHALL NOT contain Unicode character points below 32, except
# for u0009 (horizontal tab), u0010 (carriage return) and u0013 (line feed)".
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class ResourceInvalid(Exception):
    """Raised with ``issues``: a list of (diagnostics, expression) pairs."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(d for d, _ in issues))
        self.issues = issues


def _json_rules(
    value: Any, path: str, issues: list[tuple[str, str]], in_array: bool = False
) -> None:
    """FHIR JSON forbids null (except as an array placeholder), '', [] and {} anywhere, and
    control characters in strings."""
    if value is None:
        if not in_array:
            issues.append(("null is not allowed in FHIR JSON; omit the element", path))
    elif isinstance(value, str):
        if value == "":
            issues.append(("empty strings are not allowed in FHIR JSON", path))
        else:
            bad = CONTROL.search(value)
            if bad:
                issues.append(
                    (
                        f"control character U+{ord(bad.group()):04X} is not allowed in a FHIR "
                        "string (only TAB, CR and LF below U+0020)",
                        path,
                    )
                )
    elif isinstance(value, list):
        if not value:
            issues.append(("empty arrays are not allowed in FHIR JSON", path))
        for i, item in enumerate(value):
            _json_rules(item, f"{path}[{i}]", issues, in_array=True)
    elif isinstance(value, dict):
        if not value:
            issues.append(("empty objects are not allowed in FHIR JSON", path))
        for key, item in value.items():
            _json_rules(item, f"{path}.{key}", issues)


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
    issues: list[tuple[str, str]] = []
    _json_rules(resource, resource_type, issues)
    if issues:
        raise ResourceInvalid(issues)
    issues = structure_issues(resource, resource_type)
    if issues:
        raise ResourceInvalid(issues)
