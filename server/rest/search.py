"""Search interactions: type (GET and POST ``_search``), system and Patient compartment.

Handlers only parse HTTP and hand a typed request to ``server.search``; the engine applies the
caller's access filter itself (see ``server/search/execute.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

import server.rest.paths  # noqa: F401 - registers the fhirtype/fhirkey path convertors
from resources.registry import is_resource_type, patient_compartment, resource_types
from server.deps import BaseDep, RepoDep, StateDep, check_id, check_type, prefer_handling
from server.errors import FhirError
from server.formats import fhir_response
from server.repository import Repository
from server.search import params
from server.search.bundle import searchset
from server.search.execute import run
from server.search.model import SearchRequest

router = APIRouter()
base_router = APIRouter()  # included by app.py with the /fhir prefix (routes on the base itself)
# Type search on the hot path ahead of the other FHIR routes (see server/rest/instance.py): no
# route tried before it in the protected routers matches ``GET /{type}``; the copy in ``router``
# is shadowed, and stays so that ``router`` alone still serves every search.
fast_router = APIRouter()
FORM = "application/x-www-form-urlencoded"


def _respond(
    request: Request,
    repo: Repository,
    state: StateDep,
    base: str,
    path: str,
    req: SearchRequest,
    types: list[str],
    compartment: str | None = None,
) -> Response:
    s = state.settings
    count = s.default_page_size if req.count is None else min(req.count, s.max_page_size)
    result = run(repo, req, types, count=count, compartment=compartment, cache=state.page_cache)
    return fhir_response(request, searchset(base, path, req, result))


def _parse(request: Request, resource_type: str, items: list[tuple[str, str]]) -> SearchRequest:
    strict = prefer_handling(request) == "strict"
    max_count = request.app.state.consilium.settings.max_page_size
    return params.parse(resource_type, items, strict=strict, max_count=max_count)


@fast_router.get("/{resource_type:fhirtype}")
@router.get("/{resource_type:fhirtype}")
def search_type(
    resource_type: str, request: Request, repo: RepoDep, base: BaseDep, state: StateDep
) -> Response:
    check_type(resource_type)
    repo.authorize("search-type", resource_type)
    req = _parse(request, resource_type, list(request.query_params.multi_items()))
    return _respond(request, repo, state, base, resource_type, req, [resource_type])


@router.post("/{resource_type:fhirtype}/_search")
async def search_post(
    resource_type: str, request: Request, repo: RepoDep, base: BaseDep, state: StateDep
) -> Response:
    check_type(resource_type)
    repo.authorize("search-type", resource_type)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM:
        raise FhirError(
            415, "not-supported", f"POST _search takes {FORM}, not {ctype or 'nothing'}"
        )
    form = await request.form()
    items = list(request.query_params.multi_items())
    items += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    req = _parse(request, resource_type, items)
    return await run_in_threadpool(
        _respond, request, repo, state, base, resource_type, req, [resource_type]
    )


def _existing_types(repo: Repository, candidates: list[str]) -> list[str]:
    present = set(repo.store.db.list_collection_names(session=repo.session))
    return [t for t in candidates if t in present]


@base_router.get("")
@router.get("/")
def search_system(request: Request, repo: RepoDep, base: BaseDep, state: StateDep) -> Response:
    items = list(request.query_params.multi_items())
    type_values = [v for k, v in items if k == "_type"]
    types = [t for v in type_values for t in v.split(",") if t]
    for t in types:
        if not is_resource_type(t):
            raise FhirError(400, "invalid", f"_type lists an unknown resource type {t!r}")
    parse_type = types[0] if len(types) == 1 else "Basic"
    req = _parse(request, parse_type, items)
    if len(types) != 1:
        for clause in req.clauses:
            p = clause.param
            if clause.path or (p is not None and not set(p.base) & {"Resource", "DomainResource"}):
                raise FhirError(
                    400,
                    "not-supported",
                    f"{clause.name} is not a common parameter; give one _type to use it",
                )
    search_types = _existing_types(repo, types or list(resource_types()))
    return _respond(request, repo, state, base, "", req, search_types)


# The target type may be "*" (every type of the compartment), so it is not ``fhirtype``.
@router.get("/{compartment:fhirtype}/{cid:fhirkey}/{resource_type}")
def search_compartment(
    compartment: str,
    cid: str,
    resource_type: str,
    request: Request,
    repo: RepoDep,
    base: BaseDep,
    state: StateDep,
) -> Response:
    if compartment != "Patient":
        check_type(compartment)
        raise FhirError(404, "not-supported", f"no {compartment} compartment on this server")
    check_id(cid)
    members = patient_compartment()
    if resource_type == "*":
        types = _existing_types(repo, list(dict.fromkeys(["Patient", *members])))
        parse_type = "Basic"
    else:
        check_type(resource_type)
        if resource_type not in members and resource_type != "Patient":
            raise FhirError(400, "invalid", f"{resource_type} is not in the Patient compartment")
        repo.authorize("search-type", resource_type)
        types, parse_type = [resource_type], resource_type
    req = _parse(request, parse_type, list(request.query_params.multi_items()))
    path = f"Patient/{cid}/{resource_type}"
    return _respond(request, repo, state, base, path, req, types, compartment=f"Patient/{cid}")
