"""The Consilium implementation guide, loaded from the JSON under ``definitions/``.

Why a loader and not Python constants: the same files are the data the validator reads, the
conformance resources ``consilium seed`` stores, and what an implementer downloads. Everything is
read once and cached; callers get copies they can't corrupt the cache through (deepcopy on the
public accessors that hand out whole resources).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from profiles import definitions_dir

BASE = "https://consilium.health/fhir"
# The guide's ImplementationGuide and the reporting Measure are seeded and looked up like the rest.
CONFORMANCE_TYPES = (
    "StructureDefinition",
    "CodeSystem",
    "ValueSet",
    "ConceptMap",
    "ImplementationGuide",
    "Measure",
)

Resource = dict[str, Any]


def canonical(name: str, resource_type: str = "StructureDefinition") -> str:
    return f"{BASE}/{resource_type}/{name}"


PROFILE_REQUEST = canonical("second-opinion-request")
PROFILE_TASK = canonical("second-opinion-task")
PROFILE_REPORT = canonical("second-opinion-report")
PROFILE_COVERAGE = canonical("second-opinion-coverage")
PROFILE_EXPERT = canonical("second-opinion-expert")

CS_OUTCOME = canonical("second-opinion-outcome", "CodeSystem")
CS_BUSINESS_STATUS = canonical("case-business-status", "CodeSystem")
CS_CONDITIONS = canonical("covered-serious-conditions", "CodeSystem")
VS_REJECTION = canonical("case-rejection-reason", "ValueSet")
VS_CONDITIONS = canonical("covered-serious-conditions", "ValueSet")
CS_TRANSITION = canonical("case-transition", "CodeSystem")
CS_COMMUNICATION = canonical("case-communication", "CodeSystem")
EXT_UNEXPLAINED = canonical("unexplained-after-investigations")
CM_ICD10 = canonical("icd10-to-covered-serious-conditions", "ConceptMap")
PROFILE_COORDINATION_TASK = canonical("coordination-task")
CS_COORDINATION = canonical("coordination-service", "CodeSystem")
VS_COORDINATION = canonical("coordination-service", "ValueSet")
CS_DOCUMENT_SECTION = canonical("document-section", "CodeSystem")
CS_STATS = canonical("second-opinion-stats", "CodeSystem")
MEASURE_STATS = canonical("second-opinion-stats", "Measure")
IMPLEMENTATION_GUIDE = canonical("consilium", "ImplementationGuide")


@cache
def _definitions() -> tuple[Resource, ...]:
    folder = definitions_dir()
    out: list[Resource] = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("resourceType") in CONFORMANCE_TYPES:
            out.append(doc)
    return tuple(out)


@cache
def _search_parameters() -> tuple[Resource, ...]:
    folder = definitions_dir() / "search-parameters"
    out: list[Resource] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = json.loads(path.read_text(encoding="utf-8"))
        out.extend(doc if isinstance(doc, list) else [doc])
    return tuple(out)


def conformance_resources() -> list[Resource]:
    """Every IG resource (profiles, code systems, value sets, maps, search parameters)."""
    return [copy.deepcopy(r) for r in (*_definitions(), *_search_parameters())]


@cache
def _by_url() -> dict[str, Resource]:
    return {r["url"]: r for r in _definitions() if isinstance(r.get("url"), str)}


def strip_version(url: str) -> str:
    """``url|1.0`` → ``url``: a canonical may carry a version; we hold one version of each."""
    return url.split("|", 1)[0]


def lookup(url: str, resource_type: str) -> Resource | None:
    """The cached definition (not a copy: callers in this package only read it)."""
    res = _by_url().get(strip_version(url))
    if res is None or res.get("resourceType") != resource_type:
        return None
    return res


def profile_urls() -> frozenset[str]:
    return frozenset(
        u for u, r in _by_url().items() if r.get("resourceType") == "StructureDefinition"
    )


def is_known_profile(url: str) -> bool:
    return strip_version(url) in profile_urls()


def profile_type(url: str) -> str | None:
    sd = lookup(url, "StructureDefinition")
    t = sd.get("type") if sd else None
    return t if isinstance(t, str) else None
