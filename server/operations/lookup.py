"""``CodeSystem/$lookup`` and ``CodeSystem/[id]/$lookup`` (HL7's CodeSystem-lookup).

Thin: find the code system (the instance, or by ``system``/``coding.system`` from the guide or
the store; SNOMED CT is answered from what the guide states of it), then the pure
``profiles.terminology_ops.lookup_code``. docs/terminology.md has the contract.
"""

from __future__ import annotations

from typing import Any

from profiles.terminology import SCT
from profiles.terminology_ops import TerminologyError, lookup_code
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.operations.terminology_support import by_canonical, exactly_one, fhir_error, instance


def _system_and_code(call: Invocation) -> tuple[str | None, str]:
    p = call.params
    if exactly_one(call, "code", "coding") == "coding":
        if p.first("system") is not None:
            raise FhirError(400, "invalid", "a coding carries its own system; drop 'system'")
        coding = p.first("coding")
        code = coding.get("code")
        if not isinstance(code, str) or not code:
            raise FhirError(400, "invalid", "the coding has no code")
        system = coding.get("system")
        return (system if isinstance(system, str) else None), code
    return p.first("system"), str(p.first("code"))


def lookup_concept(call: Invocation) -> dict[str, Any]:
    system, code = _system_and_code(call)
    version = call.params.first("version")
    cs: dict[str, Any] | None
    if call.level == "instance":
        cs = instance(call, "CodeSystem")
        if system is not None and system != cs.get("url"):
            raise FhirError(
                400, "invalid", f"CodeSystem/{call.rid} is {cs.get('url')}, not {system}"
            )
        system = str(cs.get("url"))
    elif system is None:
        raise FhirError(
            400,
            "required",
            "give the code's system (or a coding with one)",
            expression=["Parameters.parameter('system')"],
        )
    elif system == SCT:
        cs = None  # not a guide code system: what the guide states of SNOMED CT
    else:
        cs = by_canonical(call, "CodeSystem", system, version)
    try:
        return lookup_code(cs, system, code, properties=call.params.all("property"))
    except TerminologyError as exc:
        raise fhir_error(exc) from exc


OPERATION = Operation(load_definition("lookup.json"), lookup_concept)
