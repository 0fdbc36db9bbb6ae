"""``ValueSet/$validate-code`` and ``ValueSet/[id]/$validate-code`` (HL7's ValueSet-validate-code).

Thin: find the value set, check the one code / coding / codeableConcept with the pure
``profiles.terminology_ops.validate_code`` (membership is ``profiles.terminology``'s, the same
answer the profile validator gets). docs/terminology.md has the contract.
"""

from __future__ import annotations

from typing import Any

from profiles.terminology_ops import TerminologyError, validate_code
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.operations.terminology_support import exactly_one, fhir_error, target


def validate_value_set_code(call: Invocation) -> dict[str, Any]:
    p = call.params
    given = exactly_one(call, "code", "coding", "codeableConcept")
    if given != "code" and (p.first("system") or p.first("display")):
        raise FhirError(
            400,
            "invalid",
            "system and display go with code; a coding or codeableConcept carries its own",
        )
    vs = target(call, "ValueSet", "url", "valueSetVersion")
    try:
        return validate_code(
            vs,
            code=p.first("code"),
            system=p.first("system"),
            display=p.first("display"),
            coding=p.first("coding"),
            codeable_concept=p.first("codeableConcept"),
        )
    except TerminologyError as exc:
        raise fhir_error(exc) from exc


OPERATION = Operation(load_definition("validate-code.json"), validate_value_set_code)
