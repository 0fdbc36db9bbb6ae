"""The FastAPI application factory.

Public routes (``/metadata``, ``/healthz``, discovery, OAuth endpoints) sit outside the protected
router; every other FHIR route depends on ``authenticate``. Every error becomes an
OperationOutcome here, in one place.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.config import Settings
from server.database import Store
from server.deps import AppState
from server.errors import FhirError, Issue, operation_outcome
from server.formats import dumps, negotiate
from server.hooks import Hooks
from server.middleware import RequestIdAndSizeLimit
from server.rest import bulk_import, history, instance, metadata, operations, search, system
from server.rest import type as type_routes
from server.rest.paths import allowed_methods
from server.security import authenticate

log = logging.getLogger(__name__)
Plugin = Callable[[FastAPI, AppState], None]


def _software_version() -> str:
    try:
        return version("consilium")
    except PackageNotFoundError:
        return "0.0.0"


def _error_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=dumps(body, False),
        status_code=status,
        headers=headers,
        media_type="application/fhir+json; charset=utf-8",
    )


_HTTP_CODES = {
    404: "not-found",
    405: "not-supported",
    401: "login",
    403: "forbidden",
    413: "too-costly",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def fhir_error(_: Request, exc: FhirError) -> Response:
        return _error_response(exc.status, exc.outcome(), exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no FHIR interaction at {request.method} {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Allow names every method of every route on this path, not the first route's only.
            allow = allowed_methods(request.app, request.scope) or [headers.get("Allow", "")]
            headers["Allow"] = ", ".join(allow)
            detail = (
                f"{request.method} is not allowed on {request.url.path}; "
                f"allowed: {headers['Allow']}"
            )
        code = _HTTP_CODES.get(exc.status_code, "processing")
        return _error_response(exc.status_code, operation_outcome([Issue(code, detail)]), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        issues = [
            Issue("invalid", str(e.get("msg")), expression=[".".join(map(str, e.get("loc", ())))])
            for e in exc.errors()
        ]
        return _error_response(400, operation_outcome(issues))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        rid = getattr(request.state, "request_id", "")
        return _error_response(
            500,
            operation_outcome([Issue("exception", f"internal error (request id {rid})")]),
        )


def create_app(
    settings: Settings,
    *,
    mongodb_uri: str | None = None,
    plugins: list[Plugin] | None = None,
) -> FastAPI:
    """Build the app. ``mongodb_uri`` overrides settings (the CLI passes the embedded DB's)."""
    uri = mongodb_uri or settings.mongodb_uri
    if not uri:
        raise ValueError("create_app needs a MongoDB URI (start the embedded database first)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from server.notifications.plugin import start_worker

        start_worker(app)  # the notification delivery worker (docs/notifications.md)
        yield
        # Plugins flush durable work here (the audit queue) before the store closes.
        for hook in app.state.consilium.shutdown_hooks:
            try:
                hook()
            except Exception:
                log.exception("shutdown hook %r failed", hook)
        app.state.consilium.store.close()

    app = FastAPI(
        title="Consilium FHIR server",
        version=_software_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    store = Store(uri, settings.db_name)
    state = AppState(
        settings=settings,
        store=store,
        hooks=Hooks(),
        mongodb_uri=uri,
        version=_software_version(),
    )
    app.state.consilium = state
    app.add_middleware(RequestIdAndSizeLimit, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        store.client.admin.command("ping")
        return Response(content=b'{"status":"ok"}', media_type="application/json")

    public = APIRouter(prefix="/fhir", dependencies=[Depends(negotiate)])
    public.include_router(metadata.router)
    app.include_router(public)

    for plugin in _default_plugins() + (plugins or []):
        plugin(app, state)

    # The hot paths on the app itself, right after the public routes (discovery, OAuth) and
    # before the protected ones: every nesting level and every route tried before it costs
    # measurable time per request (see server/rest/instance.py).
    # Read, type search and create, each a path no other FHIR route serves with its method.
    for fast in (instance.fast_router, search.fast_router, type_routes.fast_router):
        app.include_router(fast, prefix="/fhir", dependencies=[Depends(_guard)])

    protected = APIRouter(prefix="/fhir", dependencies=[Depends(_guard)])
    # Then: /{type}/{id}/$op must not be taken for the compartment search /{type}/{id}/{ctype}.
    protected.include_router(bulk_import.router)  # POST /$import reads NDJSON, not Parameters
    protected.include_router(operations.router)
    protected.include_router(history.router)
    protected.include_router(search.router)
    protected.include_router(type_routes.router)
    protected.include_router(instance.router)
    app.include_router(protected)
    # The system router serves the base itself (``POST /fhir``): FastAPI refuses an empty path
    # under an empty include prefix, so it is included with the prefix and the same guards.
    app.include_router(system.router, prefix="/fhir", dependencies=protected.dependencies)
    # System search (GET /fhir?_type=...) needs the same treatment as the base's POST.
    app.include_router(search.base_router, prefix="/fhir", dependencies=protected.dependencies)
    return app


async def _guard(request: Request) -> None:
    """Format negotiation, then the token: one async dependency, so the read hot path pays for
    one dependency resolution and no threadpool hop (token checks are CPU-only: signature,
    claims, in-memory key set)."""
    await negotiate(request)
    authenticate(request)


def _default_plugins() -> list[Plugin]:
    """Packages that attach hooks and public routes (search, auth, audit, domain behaviour)."""
    from server.plugins import default_plugins

    return default_plugins()
