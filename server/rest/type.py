"""Type-level interactions: create (and, through the search engine, search)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server.deps import BaseDep, RepoDep, check_type
from server.formats import read_json_body
from server.rest.responses import write_response

router = APIRouter()


@router.post("/{resource_type}")
async def create(resource_type: str, request: Request, repo: RepoDep, base: BaseDep) -> Response:
    check_type(resource_type)
    body = await read_json_body(request)
    stored = await run_in_threadpool(repo.create, resource_type, body)
    return write_response(
        request, stored, status=201, base=base, message=f"created {resource_type}/{stored.id}"
    )
