"""``$operation`` routes at the three levels, dispatched through ``server.operations``.

Included first in the protected router (server/app.py) so ``/Patient/1/$everything`` is never
taken for a compartment search and ``/Patient/$x`` never for a read. Every method is routed here
and refused with 405 when it does not apply: otherwise a ``DELETE /Patient/$everything`` would
fall through to the instance DELETE with the id ``$everything``.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server.deps import BaseDep, RepoDep, StateDep, check_id, check_type
from server.errors import FhirError
from server.formats import fhir_response, read_json_body
from server.operations import Invocation, Operation, lookup
from server.operations.parameters import (
    Params,
    check_query_on_post,
    from_body,
    from_query,
    from_resource_body,
    is_parameters,
)

router = APIRouter()
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


def _operation(name: str, level: str, resource_type: str | None) -> Operation:
    op = lookup(name) if _NAME.match(name) else None
    if op is None:
        raise FhirError(404, "not-supported", f"this server has no operation ${name[:64]}")
    if not op.at(level) or (
        resource_type is not None and op.resource_types and resource_type not in op.resource_types
    ):
        where = f"on {resource_type}" if resource_type else "at the system level"
        raise FhirError(
            404,
            "not-supported",
            f"${name} is not available {where}{' instances' if level == 'instance' else ''}; "
            f"it is served at {op.where()}",
        )
    return op


def _allowed(op: Operation) -> str:
    return "POST" if op.affects_state else "GET, POST"


async def _params(request: Request, op: Operation) -> Params:
    method = request.method
    if method not in ("GET", "POST") or (method == "GET" and op.affects_state):
        raise FhirError(
            405,
            "not-supported",
            f"{method} is not allowed for ${op.name}"
            + ("; it changes state, use POST" if method == "GET" else ""),
            headers={"Allow": _allowed(op)},
        )
    items = list(request.query_params.multi_items())
    declared = op.in_parameters()
    if method == "GET":
        return from_query(items, declared)
    if not (await request.body()).strip():
        check_query_on_post(items)
        return from_body({"resourceType": "Parameters"}, declared)
    body = await read_json_body(request)
    if (
        isinstance(body, dict)
        and isinstance(body.get("resourceType"), str)
        and not is_parameters(body)
    ):
        return from_resource_body(body, declared, items)
    check_query_on_post(items)
    return from_body(body, declared)


async def _invoke(
    request: Request,
    name: str,
    level: str,
    resource_type: str | None,
    rid: str | None,
    repo: RepoDep,
    base: str,
    state: StateDep,
) -> Response:
    if resource_type is not None:
        check_type(resource_type)
    if rid is not None:
        check_id(rid)
    op = _operation(name, level, resource_type)
    params = await _params(request, op)
    call = Invocation(name, level, resource_type, rid, params, repo, base, state.settings)
    result = await run_in_threadpool(op.handler, call)
    return fhir_response(request, result)


@router.api_route("/${name}", methods=METHODS)
async def system_operation(
    name: str, request: Request, repo: RepoDep, base: BaseDep, state: StateDep
) -> Response:
    return await _invoke(request, name, "system", None, None, repo, base, state)


@router.api_route("/{resource_type}/${name}", methods=METHODS)
async def type_operation(
    resource_type: str, name: str, request: Request, repo: RepoDep, base: BaseDep, state: StateDep
) -> Response:
    return await _invoke(request, name, "type", resource_type, None, repo, base, state)


@router.api_route("/{resource_type}/{rid}/${name}", methods=METHODS)
async def instance_operation(
    resource_type: str,
    rid: str,
    name: str,
    request: Request,
    repo: RepoDep,
    base: BaseDep,
    state: StateDep,
) -> Response:
    return await _invoke(request, name, "instance", resource_type, rid, repo, base, state)
