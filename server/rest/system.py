"""System-level interactions: batch/transaction Bundles (``POST [base]``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server.audit import audit_bundle_entries
from server.bundles.process import process_bundle
from server.deps import BaseDep, RepoDep, StateDep, prefer_return
from server.formats import fhir_response, read_json_body

router = APIRouter()


@router.post("")
async def transaction_or_batch(
    request: Request, repo: RepoDep, base: BaseDep, state: StateDep
) -> Response:
    """A transaction or batch Bundle (http.html#transaction); see server/bundles/."""
    body = await read_json_body(request)
    result = await run_in_threadpool(
        process_bundle, repo, state.settings, body, base, prefer_return(request)
    )
    audit_bundle_entries(request, body, result)
    return fhir_response(request, result)
