"""``ConceptMap/$translate`` and ``ConceptMap/[id]/$translate`` (HL7's ConceptMap-translate).

Thin: the map named by ``url`` or the instance, else every guide map with a group from the
code's system; then the pure ``profiles.terminology_ops.translate`` (whose ICD-10 rule is
``profiles.terminology.icd10_match``, the one the eligibility check uses).
docs/terminology.md has the contract.
"""

from __future__ import annotations

from typing import Any

from profiles.conformance import conformance_resources, strip_version
from profiles.terminology_ops import translate
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.operations.terminology_support import exactly_one, target


def _source(call: Invocation) -> tuple[str, str]:
    p = call.params
    if exactly_one(call, "code", "coding") == "coding":
        coding = p.first("coding")
        if p.first("system") is not None:
            raise FhirError(400, "invalid", "a coding carries its own system; drop 'system'")
        system, code = coding.get("system"), coding.get("code")
    else:
        system, code = p.first("system"), p.first("code")
    if not isinstance(system, str) or not isinstance(code, str) or not code:
        raise FhirError(
            400,
            "required",
            "give code and system (or a coding with both)",
            expression=["Parameters.parameter('system')"],
        )
    return system, code


def _maps(call: Invocation, system: str) -> list[dict[str, Any]]:
    if call.level == "instance" or call.params.first("url") is not None:
        maps = [target(call, "ConceptMap", "url", "conceptMapVersion")]
    else:
        maps = [
            r
            for r in conformance_resources()
            if r["resourceType"] == "ConceptMap"
            and any(g.get("source") == system for g in r.get("group", []))
        ]
    source = call.params.first("source")
    if source is not None:
        maps = [
            m
            for m in maps
            if strip_version(str(m.get("sourceUri") or m.get("sourceCanonical") or "")) == source
        ]
    return maps


def translate_code(call: Invocation) -> dict[str, Any]:
    system, code = _source(call)
    return translate(
        _maps(call, system),
        system=system,
        code=code,
        target_system=call.params.first("targetsystem"),
        target=call.params.first("target"),
    )


OPERATION = Operation(load_definition("translate.json"), translate_code)
