"""``$import``'s definition (the CapabilityStatement lists it); its route is server/rest/bulk_import.py.

Why the route is not this registry's handler: the body is NDJSON, not Parameters, so the POST is
served by its own route, included before the generic operation routes. What reaches this
handler is a call the route does not take (none: GET and other methods are refused by the
generic router before any handler runs, since ``$import`` affects state)."""

from __future__ import annotations

from typing import Any

from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition


def _not_here(call: Invocation) -> dict[str, Any]:
    raise FhirError(
        415,
        "not-supported",
        "$import takes NDJSON: POST it with Content-Type application/fhir+ndjson",
    )


OPERATION = Operation(load_definition("import.json"), _not_here)
