"""Shared vocabulary of the second-opinion domain rules (no server imports, by the layering rule).

``resources/`` may import only ``profiles``, so domain hooks cannot raise the server's
``FhirError`` themselves: they raise ``BusinessRuleViolation`` and the server's plugin
(server/second_opinion.py) turns it into a 422 OperationOutcome with code ``business-rule``.
Hooks see the write event through the small ``WriteEventLike`` protocol for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from profiles.conformance import strip_version
from profiles.validator import reference_type

V2_0336 = "http://terminology.hl7.org/CodeSystem/v2-0336"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"

Violation = tuple[str, str]  # (diagnostics, FHIRPath expression)


class BusinessRuleViolation(Exception):
    """A write breaks a domain rule; ``issues`` are (diagnostics, expression) pairs."""

    def __init__(self, issues: list[Violation]) -> None:
        super().__init__("; ".join(d for d, _ in issues))
        self.issues = issues


class WriteEventLike(Protocol):
    """What the domain hooks read from ``server.hooks.WriteEvent``."""

    interaction: str
    resource_type: str
    resource_id: str
    resource: dict[str, Any] | None
    previous: dict[str, Any] | None
    repository: Any


Hook = Callable[[Any], None]
# (hook point name as in server.hooks.HookPoint values, hook): the thin registration table.
HookTable = list[tuple[str, Hook]]


def codings(concepts: Any) -> list[dict[str, Any]]:
    """Every Coding of a CodeableConcept or a list of them."""
    items = concepts if isinstance(concepts, list) else [concepts]
    out: list[dict[str, Any]] = []
    for cc in items:
        if isinstance(cc, dict):
            out.extend(c for c in cc.get("coding", []) if isinstance(c, dict))
    return out


def has_coding(concepts: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in codings(concepts))


def codes_in(concepts: Any, system: str) -> list[str]:
    return [c["code"] for c in codings(concepts) if c.get("system") == system and "code" in c]


def claims(resource: dict[str, Any], profile_url: str) -> bool:
    profiles = (resource.get("meta") or {}).get("profile") or []
    return any(isinstance(p, str) and strip_version(p) == profile_url for p in profiles)


def local_id(reference: Any, resource_type: str) -> str | None:
    """The id of a ``{"reference": "Type/id"}`` pointing at ``resource_type``, else None."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    ref: str = reference["reference"]
    if reference_type(ref) != resource_type:
        return None
    parts = ref.split("/")
    if "_history" in parts:
        return parts[parts.index("_history") - 1]
    return parts[-1]


def references(values: Any, resource_type: str) -> list[str]:
    items: Iterable[Any] = values if isinstance(values, list) else [values]
    return [i for i in (local_id(v, resource_type) for v in items) if i]


def read_current(repository: Any, resource_type: str, rid: str) -> dict[str, Any] | None:
    """The current, not-deleted version through the repository (inside the write's session)."""
    stored = repository.current(resource_type, rid)
    if stored is None or stored.deleted:
        return None
    resource = stored.resource
    return resource if isinstance(resource, dict) else None
