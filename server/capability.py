"""The CapabilityStatement, generated from the resource registry (never hand-written per type).

Other packages contribute their parts (SMART security, operations, conditional interactions)
through ``contributors`` so the statement always says what the running server really does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from profiles.conformance import IMPLEMENTATION_GUIDE
from resources.registry import FHIR_VERSION, resource_types, search_params_for

Contributor = Callable[[dict[str, Any]], None]

TYPE_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]


def build_capability(
    base: str, software_version: str, contributors: list[Contributor]
) -> dict[str, Any]:
    resources = []
    for rtype in resource_types():
        params = search_params_for(rtype)
        resources.append(
            {
                "type": rtype,
                "interaction": [{"code": c} for c in TYPE_INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "searchParam": [
                    {"name": p.code, "definition": p.url, "type": p.type} for p in params.values()
                ],
            }
        )
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "publisher": "Consilium",
        "kind": "instance",
        "software": {"name": "Consilium", "version": software_version},
        "implementation": {"description": "Consilium second-opinion FHIR server", "url": base},
        "fhirVersion": FHIR_VERSION,
        # The guide that ties our profiles, terminology and search parameters together.
        "implementationGuide": [IMPLEMENTATION_GUIDE],
        "format": ["application/fhir+json", "json"],
        "patchFormat": [],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "history-system"}],
            }
        ],
    }
    for contribute in contributors:
        contribute(statement)
    return statement
