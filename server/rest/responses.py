"""Shared response shapes for writes and reads (headers per http.html)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from server.deps import prefer_return
from server.errors import info_outcome
from server.formats import fhir_response
from server.repository import Stored
from server.timeutil import http_date


def version_headers(stored: Stored, base: str | None = None) -> dict[str, str]:
    headers = {"ETag": stored.etag, "Last-Modified": http_date(stored.last_updated)}
    if base is not None:
        headers["Location"] = (
            f"{base}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
        )
    return headers


def write_response(
    request: Request, stored: Stored, *, status: int, base: str, message: str
) -> Response:
    """Honour ``Prefer: return=minimal|representation|OperationOutcome`` on a write."""
    headers = version_headers(stored, base)
    choice = prefer_return(request)
    if choice == "minimal":
        return fhir_response(request, None, status=status, headers=headers)
    if choice == "OperationOutcome":
        return fhir_response(request, info_outcome(message), status=status, headers=headers)
    return fhir_response(request, stored.resource, status=status, headers=headers)
