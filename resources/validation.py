"""Validation of incoming resources: R4 (4.0.1) first and authoritative, then the R4B models.

Layer 1, every type (``resources.structure``, one pass over the JSON):

* FHIR JSON rules (json.html, datatypes.html#string): no null (except as a primitive array's
  placeholder), no empty strings, arrays or objects, and no control characters below U+0020
  other than TAB, CR and LF in any string. Everything else Unicode allows (U+00A0, U+2028,
  emoji…) is accepted.
* The R4 StructureDefinitions: unknown elements, JSON types, cardinality, choice-type
  exclusivity, required-binding codes, primitive formats, calendar dates, integer ranges;
  nested resources (``contained``, ``Bundle.entry.resource``, ``Parameters.parameter.resource``)
  each as their own type.

Layer 2, when layer 1 found nothing: the ``fhir.resources.R4B`` model (the design card's
validator) of each resource — the top one and each nested one separately, by its own type, with
its own nested resources set aside (``resources.r4b.set_aside``). It runs only where it cannot
refuse valid R4: a resource is skipped when the walk found a type, element or value in it that
``definitions/r4b-differences.json`` (``resources/r4b.py``) says R4B refuses although R4 allows
it (e.g. an Extension with ``valueMeta``, R4 Evidence elements, MedicinalProduct, a string with
U+00A0). Its errors become the same (diagnostics, FHIRPath expression) issues. ``validate_resource``
returns which resources each layer covered (``Checked``), so that is observable, not assumed.

Speed: the model costs ~0.25 ms per resource (about 0.35 s per MB of lab results, where the
R4 walk takes ~0.1 s), so a resource holding more than ``R4B_NESTED_LIMIT`` nested resources (a
large collection Bundle) has only itself checked by the model; its nested resources get the R4
walk alone, and ``Checked.r4b_skipped`` says so. Writes of single resources, and each entry of a
batch or transaction (validated as it is processed), always get both layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from resources.r4b import model_issues
from resources.registry import is_resource_type
from resources.structure import walk

# Above this many nested resources the R4B model checks only the container (see module doc).
R4B_NESTED_LIMIT = 500
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}\Z")  # \Z: "$" would allow a final newline


class ResourceInvalid(Exception):
    """Raised with ``issues``: a list of (diagnostics, expression) pairs."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(d for d, _ in issues))
        self.issues = issues


@dataclass(frozen=True)
class Checked:
    """What ``validate_resource`` applied: the R4 walk always, the R4B model where listed."""

    r4b: tuple[str, ...]  # FHIRPath of each resource the R4B model checked
    r4b_skipped: tuple[tuple[str, str, str], ...]  # (resource, element, why R4B would refuse)


def validate_resource(resource: Any, resource_type: str) -> Checked:
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
    issues, walked = walk(resource, resource_type)
    if issues:
        raise ResourceInvalid(issues)
    checked: list[str] = []
    skipped: list[tuple[str, str, str]] = []
    if len(walked) - 1 > R4B_NESTED_LIMIT:
        why = f"more than {R4B_NESTED_LIMIT} nested resources: the R4 walk alone, for speed"
        skipped += [(w.path, w.path, why) for w in walked[1:]]
        walked = walked[:1]
    for w in walked:
        if w.r4b_skip:
            skipped.append((w.path, *w.r4b_skip[0]))
            continue
        issues += model_issues(w.value, w.rtype, w.path)
        checked.append(w.path)
    if issues:
        raise ResourceInvalid(issues[:100])
    return Checked(tuple(checked), tuple(skipped))
