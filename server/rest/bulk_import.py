"""``POST [base]/$import``: NDJSON in the request body, imported as ``consilium import`` does.

Why a body and not the Bulk Data Import draft's kick-off with input URLs: the server would have
to fetch URLs a client names (a server-side request forgery surface) and run jobs that outlive
the request. Insurers' rosters and clinics' record sets fit in a request (``CONSILIUM_MAX_BODY_
BYTES``, 10 MB by default; larger loads use the command, docs/import.md), and the client gets
the per-line outcome in the response.

Every line is the caller's own ``PUT [type]/[id]`` (server/bulk/load.py): the access hook checks
the caller's scopes and party on each write, exactly as for a REST PUT, so a clinic's token can
import only what it could PUT. Lines are imported in transactions of ``_batch`` (default 500,
at most 1,000); a failing line is reported and never partly stored, the others are imported.
The response is an OperationOutcome: one ``information`` issue with the counts, one ``error``
issue per failed line (its line number, the status and text a PUT of it would get). Status 200
when the request was processed, whatever the lines' fate (like a batch Bundle); 400/413/415
when the request itself is unusable.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from auth.audit import AuditFacts
from resources.registry import is_resource_type
from server.bulk.load import DEFAULT_BATCH, Failure, Importer, ImportResult
from server.bulk.ndjson import Line
from server.deps import RepoDep, StateDep
from server.errors import FhirError
from server.formats import fhir_response
from server.timeutil import fhir_instant, now

router = APIRouter()
NDJSON_TYPES = frozenset({"application/fhir+ndjson", "application/ndjson", "application/x-ndjson"})
MAX_BATCH = 1000
SOURCE = "body"
MAX_ISSUES = 1000  # failed lines reported one by one; beyond, counted


def _lines(body: bytes) -> list[Line]:
    return [
        Line(SOURCE, n, text) for n, text in enumerate(body.split(b"\n"), start=1) if text.strip()
    ]


def _types(request: Request) -> list[str] | None:
    raw = [t.strip() for v in request.query_params.getlist("_type") for t in v.split(",")]
    wanted = [t for t in raw if t]
    unknown = [t for t in wanted if not is_resource_type(t)]
    if unknown:
        raise FhirError(400, "invalid", f"_type names no resource type: {', '.join(unknown)}")
    return wanted or None


def _batch(request: Request) -> int:
    raw = request.query_params.get("_batch")
    if raw is None:
        return DEFAULT_BATCH
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH:
        raise FhirError(400, "invalid", f"_batch must be a whole number from 1 to {MAX_BATCH}")
    return int(raw)


def _failure_issue(failure: Failure) -> dict[str, Any]:
    first = (failure.outcome.get("issue") or [{}])[0]
    return {
        "severity": "error",
        "code": first.get("code", "processing"),
        "diagnostics": f"line {failure.line}: {failure.status} {failure.text}",
    }


def outcome(result: ImportResult) -> dict[str, Any]:
    summary = (
        f"imported {result.imported} ({result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged), skipped {result.skipped}, "
        f"failed {len(result.failures)}, in {result.batches} transactions"
    )
    issues = [{"severity": "information", "code": "informational", "diagnostics": summary}]
    issues += [_failure_issue(f) for f in result.failures[:MAX_ISSUES]]
    if len(result.failures) > MAX_ISSUES:
        more = len(result.failures) - MAX_ISSUES
        issues.append(
            {"severity": "error", "code": "too-costly", "diagnostics": f"{more} more failed lines"}
        )
    return {"resourceType": "OperationOutcome", "issue": issues}


@router.post("/$import")
async def import_ndjson(request: Request, repo: RepoDep, state: StateDep) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in NDJSON_TYPES:
        raise FhirError(
            415,
            "not-supported",
            "$import takes NDJSON: Content-Type application/fhir+ndjson, one resource per line",
        )
    types, batch = _types(request), _batch(request)
    lines = _lines(await request.body())
    if not lines:
        raise FhirError(400, "required", "the NDJSON body holds no resource")
    principal = repo.security.principal
    client = request.client
    writer = AuditFacts(
        "update",
        0,
        fhir_instant(now()),
        client_id=principal.client_id if principal is not None else None,
        user=getattr(principal, "user", None),
        source_ip=client[0] if client else None,
        request_id=getattr(request.state, "request_id", None),
    )
    audit = state.audit_writer.submit if state.audit_writer is not None else None
    importer = Importer(repo, state.settings, batch=batch, types=types, audit=audit, writer=writer)
    result = await run_in_threadpool(importer.run, lines, len(lines))
    return fhir_response(request, outcome(result))
