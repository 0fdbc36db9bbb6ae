"""Type-level interactions: create (plain or conditional), conditional update/delete/patch.

``POST [type]?criteria`` and ``If-None-Exist`` are both conditional creates
(``conditional.create_criteria``); searches live in ``server.rest.search``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

import server.rest.paths  # noqa: F401 - registers the fhirtype/fhirkey path convertors
from server import conditional
from server.deps import BaseDep, RepoDep, StateDep, check_type, parse_if_match, prefer_return
from server.errors import bad_request, info_outcome
from server.formats import JSON_TYPES, PATCH_JSON, check_body_type, fhir_response, read_json_body
from server.patch import patcher
from server.rest.responses import write_response

router = APIRouter()
# Create on the hot path ahead of the other FHIR routes (see server/rest/instance.py): no route
# tried before it in the protected routers matches ``POST /{type}``; the copy in ``router`` keeps
# that router whole.
fast_router = APIRouter()


@fast_router.post("/{resource_type:fhirtype}")
@router.post("/{resource_type:fhirtype}")
async def create(resource_type: str, request: Request, repo: RepoDep, base: BaseDep) -> Response:
    check_type(resource_type)
    criteria = conditional.create_criteria(
        resource_type, request.url.query, request.headers.get("if-none-exist")
    )
    body = await read_json_body(request)
    if criteria is not None:
        stored, created = await run_in_threadpool(
            conditional.conditional_create, repo, resource_type, body, criteria
        )
        return write_response(
            request,
            stored,
            status=201 if created else 200,
            base=base,
            message=f"{'created' if created else 'matched existing'} {resource_type}/{stored.id}",
        )
    stored = await run_in_threadpool(repo.create, resource_type, body)
    return write_response(
        request, stored, status=201, base=base, message=f"created {resource_type}/{stored.id}"
    )


def _criteria(request: Request, interaction: str) -> str:
    query = conditional.criteria_from_url(request.url.query)
    if not query:
        raise bad_request(f"conditional {interaction} needs search criteria: [type]?param=value")
    return query


@router.put("/{resource_type:fhirtype}")
async def conditional_update(
    resource_type: str, request: Request, repo: RepoDep, base: BaseDep
) -> Response:
    check_type(resource_type)
    query = _criteria(request, "update")
    if_match = parse_if_match(request.headers.get("if-match"), "If-Match")
    body = await read_json_body(request)
    stored, created = await run_in_threadpool(
        conditional.conditional_update, repo, resource_type, query, body, if_match=if_match
    )
    return write_response(
        request,
        stored,
        status=201 if created else 200,
        base=base,
        message=f"{'created' if created else 'updated'} {resource_type}/{stored.id}",
    )


@router.delete("/{resource_type:fhirtype}")
def conditional_delete(
    resource_type: str, request: Request, repo: RepoDep, state: StateDep
) -> Response:
    check_type(resource_type)
    query = _criteria(request, "delete")
    if_match = parse_if_match(request.headers.get("if-match"), "If-Match")
    deleted = conditional.conditional_delete(
        repo,
        resource_type,
        query,
        allow_multiple=state.settings.allow_multiple_conditional_delete,
        max_matches=state.settings.max_bundle_entries,
        if_match=if_match,
    )
    headers = {"ETag": deleted[0].etag} if len(deleted) == 1 else {}
    if prefer_return(request) == "OperationOutcome" or not deleted:
        msg = f"deleted {len(deleted)} {resource_type} resource(s)"
        return fhir_response(request, info_outcome(msg), headers=headers)
    return Response(status_code=204, headers=headers)


@router.patch("/{resource_type:fhirtype}")
async def conditional_patch(
    resource_type: str, request: Request, repo: RepoDep, base: BaseDep
) -> Response:
    check_type(resource_type)
    query = _criteria(request, "patch")
    if_match = parse_if_match(request.headers.get("if-match"), "If-Match")
    media = check_body_type(request, {PATCH_JSON, *JSON_TYPES})
    apply = patcher(media, await read_json_body(request, {PATCH_JSON, *JSON_TYPES}), resource_type)
    stored = await run_in_threadpool(
        conditional.conditional_patch, repo, resource_type, query, apply, if_match=if_match
    )
    return write_response(
        request, stored, status=200, base=base, message=f"patched {resource_type}/{stored.id}"
    )
