"""``ValueSet/$expand`` and ``ValueSet/[id]/$expand`` (HL7's ValueSet-expand, a subset).

Thin: find the value set (``terminology_support.target``, or a ``valueSet`` given in the
request), expand it with the pure ``profiles.expansion.expand``. Read-only, so GET works:
``GET /ValueSet/$expand?url=…&filter=card&count=10``. docs/terminology.md has the contract.
"""

from __future__ import annotations

from typing import Any

from profiles.expansion import TerminologyError, expand
from resources.validation import ResourceInvalid, validate_resource
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.operations.terminology_support import fhir_error, target
from server.repository import invalid
from server.timeutil import fhir_instant, now


def _value_set(call: Invocation) -> dict[str, Any]:
    given = call.params.first("valueSet")
    if given is None:
        return target(call, "ValueSet", "url", "valueSetVersion")
    if call.level == "instance" or call.params.first("url") is not None:
        raise FhirError(
            400,
            "invalid",
            "give the value set once: a valueSet resource, a url, or the instance in the URL",
            expression=["Parameters.parameter('valueSet')"],
        )
    try:  # a bare body is not checked by the Parameters model: check it as a write would
        validate_resource(given, "ValueSet")
    except ResourceInvalid as exc:
        raise invalid(exc) from exc
    return dict(given)


def expand_value_set(call: Invocation) -> dict[str, Any]:
    vs = _value_set(call)
    p = call.params
    try:
        return expand(
            vs,
            timestamp=fhir_instant(now()),
            filter=p.first("filter"),
            count=p.first("count"),
            offset=p.first("offset"),
            include_designations=bool(p.first("includeDesignations")),
        )
    except TerminologyError as exc:
        raise fhir_error(exc) from exc


OPERATION = Operation(load_definition("expand.json"), expand_value_set)
