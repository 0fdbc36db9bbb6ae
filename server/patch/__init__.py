"""PATCH formats: JSON Patch (RFC 6902) and FHIRPath Patch (a Parameters resource).

``patcher`` checks the whole patch document up front (a malformed patch is a 400 before any
database work) and returns a pure function ``current resource -> patched copy`` for
``Repository.patch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.errors import FhirError
from server.formats import PATCH_JSON
from server.patch.fhirpathpatch import apply_fhirpath_patch, parse_parameters
from server.patch.jsonpatch import apply_patch, validate_patch

Patcher = Callable[[dict[str, Any]], Any]
PATCH_FORMATS = (PATCH_JSON, "application/fhir+json")


def patcher(media: str, body: Any, resource_type: str) -> Patcher:
    if media == PATCH_JSON:
        ops = validate_patch(body)
        return lambda resource: apply_patch(resource, ops)
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        parse_parameters(body, resource_type)
        return lambda resource: apply_fhirpath_patch(resource, body)
    raise FhirError(
        415 if not isinstance(body, dict) else 400,
        "not-supported",
        "PATCH takes a JSON Patch (application/json-patch+json) or a FHIRPath Patch "
        "Parameters resource (application/fhir+json)",
    )
