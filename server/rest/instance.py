"""Instance-level interactions: read, vread, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

import server.rest.paths  # noqa: F401 - registers the fhirtype/fhirkey path convertors
from server.deps import (
    BaseDep,
    RepoDep,
    StateDep,
    check_id,
    check_type,
    parse_etag,
    parse_if_match,
    prefer_return,
)
from server.errors import bad_request, info_outcome
from server.formats import JSON_TYPES, PATCH_JSON, check_body_type, fhir_response, read_json_body
from server.integrity import cascade_delete, parse_cascade
from server.patch import patcher
from server.rest.responses import version_headers, write_response
from server.timeutil import parse_http_date

router = APIRouter()
# The read hot path, registered ahead of every other FHIR route: route matching is a large part
# of a read's cost, and the ``fhirid`` convertor (ids never hold "_" or "$") keeps this route from
# shadowing ``/{type}/_history``, ``/{type}/_search`` or ``/{type}/$op``. Invalid ids fall through
# to ``router``'s copy, which answers 400 (its ``fhirkey`` convertor still keeps reserved
# segments out, so ``PUT /fhir/Patient/_history`` is a 405: see server/rest/paths.py).
fast_router = APIRouter()


class FhirIdConvertor(Convertor[str]):
    regex = "[A-Za-z0-9.-]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fhirid", FhirIdConvertor())


@fast_router.get("/{resource_type:fhirtype}/{rid:fhirid}")
@router.get("/{resource_type:fhirtype}/{rid:fhirkey}")
def read(resource_type: str, rid: str, request: Request, repo: RepoDep) -> Response:
    check_type(resource_type)
    check_id(rid)
    # The read cache (server/read_cache.py) holds stored versions; the policy runs per request.
    stored = repo.read(resource_type, rid, cache=request.app.state.consilium.read_cache)
    headers = version_headers(stored)
    inm = request.headers.get("if-none-match")
    if inm is not None and (
        inm.strip() == "*" or parse_etag(inm, "If-None-Match") == stored.version_id
    ):
        return Response(status_code=304, headers=headers)
    ims = request.headers.get("if-modified-since")
    if ims is not None and inm is None:
        since = parse_http_date(ims)
        if since is not None and stored.last_updated.replace(microsecond=0) <= since:
            return Response(status_code=304, headers=headers)
    return fhir_response(request, stored.resource, headers=headers)


@router.get("/{resource_type:fhirtype}/{rid:fhirkey}/_history/{vid}")
def vread(resource_type: str, rid: str, vid: str, request: Request, repo: RepoDep) -> Response:
    check_type(resource_type)
    check_id(rid)
    if not vid.isdigit() or len(vid) > 18:
        raise bad_request(f"version id must be a positive integer, got {vid!r}")
    cache = request.app.state.consilium.read_cache
    stored = repo.vread(resource_type, rid, int(vid), cache=cache)
    return fhir_response(request, stored.resource, headers=version_headers(stored))


@router.put("/{resource_type:fhirtype}/{rid:fhirkey}")
async def update(
    resource_type: str, rid: str, request: Request, repo: RepoDep, base: BaseDep
) -> Response:
    check_type(resource_type)
    check_id(rid)
    if_match = parse_if_match(request.headers.get("if-match"), "If-Match")
    body = await read_json_body(request)
    stored, created = await run_in_threadpool(
        repo.update, resource_type, rid, body, if_match=if_match
    )
    return write_response(
        request,
        stored,
        status=201 if created else 200,
        base=base,
        message=f"{'created' if created else 'updated'} {resource_type}/{rid}",
    )


@router.delete("/{resource_type:fhirtype}/{rid:fhirkey}")
def delete(
    resource_type: str, rid: str, request: Request, repo: RepoDep, state: StateDep
) -> Response:
    check_type(resource_type)
    check_id(rid)
    if_match = parse_if_match(request.headers.get("if-match"), "If-Match")
    if parse_cascade(request.query_params.get("_cascade")):
        s = state.settings
        stored = cascade_delete(repo, s, resource_type, rid, if_match=if_match)[0]
    else:
        stored = repo.delete(resource_type, rid, if_match=if_match)
    headers = {"ETag": stored.etag}
    if prefer_return(request) == "OperationOutcome":
        return fhir_response(
            request, info_outcome(f"deleted {resource_type}/{rid}"), headers=headers
        )
    return Response(status_code=204, headers=headers)


@router.patch("/{resource_type:fhirtype}/{rid:fhirkey}")
async def patch(
    resource_type: str, rid: str, request: Request, repo: RepoDep, base: BaseDep
) -> Response:
    check_type(resource_type)
    check_id(rid)
    if_match = parse_if_match(request.headers.get("if-match"), "If-Match")
    media = check_body_type(request, {PATCH_JSON, *JSON_TYPES})
    apply = patcher(media, await read_json_body(request, {PATCH_JSON, *JSON_TYPES}), resource_type)
    stored = await run_in_threadpool(repo.patch, resource_type, rid, apply, if_match=if_match)
    return write_response(
        request, stored, status=200, base=base, message=f"patched {resource_type}/{rid}"
    )
