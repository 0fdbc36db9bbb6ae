"""``GET /metadata``: public, no token needed (SMART discovery depends on it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.capability import build_capability
from server.deps import BaseDep, StateDep
from server.formats import fhir_response

router = APIRouter()


@router.get("/metadata")
def metadata(request: Request, base: BaseDep, state: StateDep) -> Response:
    statement = build_capability(base, state.version, state.capability_contributors)
    mode = request.query_params.get("mode")
    if mode == "terminology":
        from server.errors import FhirError

        raise FhirError(404, "not-supported", "this server has no terminology capabilities")
    return fhir_response(request, statement)
