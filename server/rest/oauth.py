"""OAuth 2.0 / SMART endpoints: the thin FastAPI adapter around the framework-free core in
``auth/`` (public: no bearer token needed to reach them).

- ``GET /fhir/.well-known/smart-configuration`` — SMART App Launch 2.x §"Conformance" discovery;
- ``GET /oauth/jwks`` — our public keys (RFC 7517);
- ``POST /oauth/register`` — dynamic client registration (RFC 7591), admin bearer token only;
- ``POST /oauth/token`` — client_credentials with a JWT assertion (SMART Backend Services),
  authorization_code + PKCE (RFC 6749 §4.1, RFC 7636), refresh_token with rotation;
- ``GET/POST /oauth/authorize`` — login + consent page, patient picker, standalone and EHR launch;
- ``POST /oauth/launch`` — create an EHR launch context (admin);
- ``POST /oauth/introspect`` (RFC 7662) and ``POST /oauth/revoke`` (RFC 7009).

Handlers only parse the request (form fields once each, headers), call ``auth.grants`` /
``auth.authorize`` / ``auth.discovery``, and render JSON, redirects or pages. Errors are RFC 6749
§5.2 JSON, never OperationOutcome. Token, sign-in, revocation and registration requests each
carry an ``auth.audit.AuthEvent`` the core fills in; the handler gives it, with the final status,
to ``server.audit.record_auth_event``, the one way OAuth events reach the audit.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from auth import authorize as authz
from auth import discovery, grants
from auth.audit import AuthEvent
from auth.errors import OAuthError, invalid_request
from auth.grants import AuthServer, Site
from auth.pages import error_page, login_page, patient_page
from server.audit import record_auth_event
from server.deps import get_state
from server.oauth_patients import RepositoryPatients
from server.smart import AuthRuntime

router = APIRouter()
discovery_router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PAGE_HEADERS = {**NO_STORE, "X-Frame-Options": "DENY"}
MAX_FORM_FIELDS = 40


def _runtime(request: Request) -> AuthRuntime:
    """The one place this adapter reaches the app's ``AuthRuntime``."""
    runtime: AuthRuntime | None = request.app.state.consilium.auth
    assert runtime is not None  # the OAuth routes are mounted by the SMART plugin, which sets it
    return runtime


def _core(request: Request) -> tuple[AuthServer, Site]:
    """The core's services and the site as this request sees it (host, base URL)."""
    runtime = _runtime(request)
    settings = runtime.settings
    server = AuthServer(
        store=runtime.store,
        keys=lambda: runtime.keys,
        access_token_lifetime=settings.access_token_lifetime_seconds,
        admin_token=settings.admin_token,
        note_revoked=runtime.note_revoked,
    )
    site = Site(
        issuer=runtime.issuer(request),
        fhir_base=runtime.fhir_base(request),
        oauth_base=runtime.endpoint(request, "").rstrip("/"),
    )
    return server, site


def oauth_json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def oauth_error(exc: OAuthError) -> Response:
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer realm="consilium"' if exc.error == "invalid_token" else "Basic"
        )
    return oauth_json(exc.to_json(), exc.status, headers)


async def _form(request: Request) -> dict[str, str]:
    """Form fields, each at most once (RFC 6749 §3.1); anything else is invalid_request."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise invalid_request("use application/x-www-form-urlencoded")
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise invalid_request("file uploads are not accepted")
        if key in out:
            raise invalid_request(f"parameter {key!r} is repeated")
        out[key] = value
    return out


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


async def _audited(request: Request, event: AuthEvent, pending: Awaitable[Response]) -> Response:
    """Await the handler's response and audit the event with its final status (500 when the
    handler failed unexpectedly), so every attempt is recorded, granted or refused."""
    status = 500
    try:
        response = await pending
        status = response.status_code
        return response
    finally:
        record_auth_event(request, event, status)


# ----------------------------------------------------------------------------------- discovery
@discovery_router.get("/.well-known/smart-configuration")
def smart_configuration(request: Request) -> Response:
    _, site = _core(request)
    return Response(
        content=orjson.dumps(discovery.smart_configuration(site)), media_type="application/json"
    )


@discovery_router.get("/.well-known/openid-configuration")
def openid_configuration(request: Request) -> Response:
    _, site = _core(request)
    return Response(
        content=orjson.dumps(discovery.openid_configuration(site)), media_type="application/json"
    )


@router.get("/jwks")
def jwks(request: Request) -> Response:
    return Response(
        content=orjson.dumps(_runtime(request).keys.jwks()), media_type="application/jwk-set+json"
    )


# -------------------------------------------------------------------------------- registration
@router.post("/register")
async def register(request: Request) -> Response:
    event = AuthEvent("oauth-register")
    return await _audited(request, event, _register(request, event))


async def _register(request: Request, event: AuthEvent) -> Response:
    server, _ = _core(request)
    try:
        body = await request.body()
        metadata = await run_in_threadpool(
            grants.register,
            server,
            _bearer(request),
            request.headers.get("content-type", ""),
            body,
            event,
        )
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json(metadata, 201)


# ---------------------------------------------------------------------------------- token
@router.post("/token")
async def token(request: Request) -> Response:
    event = AuthEvent("oauth-token")
    return await _audited(request, event, _token(request, event))


async def _token(request: Request, event: AuthEvent) -> Response:
    server, site = _core(request)
    try:
        form = await _form(request)
        body = await run_in_threadpool(
            grants.token_request,
            server,
            site,
            form,
            event,
            authorization=request.headers.get("authorization", ""),
        )
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json(body)


@router.post("/introspect")
async def introspect(request: Request) -> Response:
    server, site = _core(request)
    try:
        form = await _form(request)
        body = await run_in_threadpool(
            grants.introspect,
            server,
            site,
            form,
            bearer=_bearer(request),
            authorization=request.headers.get("authorization", ""),
        )
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json(body)


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    event = AuthEvent("oauth-revoke")
    return await _audited(request, event, _revoke(request, event))


async def _revoke(request: Request, event: AuthEvent) -> Response:
    server, site = _core(request)
    try:
        form = await _form(request)
        await run_in_threadpool(
            grants.revoke,
            server,
            site,
            form,
            event,
            authorization=request.headers.get("authorization", ""),
        )
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json({})


@router.post("/launch")
async def launch(request: Request) -> Response:
    """EHR launch: bind a patient context to a one-time ``launch`` value (admin only)."""
    server, _ = _core(request)
    try:
        body = await request.body()
        value = await run_in_threadpool(grants.create_launch, server, _bearer(request), body)
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json({"launch": value}, 201)


# ------------------------------------------------------------------------------- authorize
@router.get("/authorize")
async def authorize_get(request: Request) -> Response:
    params = dict(request.query_params.items())
    if len(request.query_params.multi_items()) != len(params):
        return HTMLResponse(error_page("invalid_request", "repeated parameters"), 400)
    return await run_in_threadpool(_authorize, request, params, None, None)


@router.post("/authorize")
async def authorize_post(request: Request) -> Response:
    event = AuthEvent("oauth-login")
    return await _audited(request, event, _authorize_post(request, event))


async def _authorize_post(request: Request, event: AuthEvent) -> Response:
    try:
        form = await _form(request)
    except OAuthError as exc:
        return HTMLResponse(error_page(exc.error, exc.description), 400)
    # SMART "authorize-post": an app may POST the authorization request itself; only a form
    # carrying the login fields is a sign-in attempt.
    submitted = form if ("username" in form or "decision" in form) else None
    return await run_in_threadpool(_authorize, request, form, submitted, event)


def _authorize(
    request: Request,
    params: dict[str, str],
    submitted: dict[str, str] | None,
    event: AuthEvent | None,
) -> Response:
    server, site = _core(request)
    try:
        req = authz.check_authorize_request(server, site, params)
    except authz.NoRedirect as exc:
        return HTMLResponse(error_page(exc.error, exc.description), 400)
    except authz.RedirectError as exc:
        return _redirect(
            exc.redirect_uri, {"error": exc.error, "error_description": exc.description}, exc.state
        )
    if submitted is not None and submitted.get("decision") == "deny":
        return _redirect(req.redirect_uri, {"error": "access_denied"}, req.state)
    error = ""
    if submitted is not None:
        try:
            outcome = authz.approve(
                server,
                req,
                submitted,
                event or AuthEvent("oauth-login"),
                RepositoryPatients(get_state(request)),
            )
        except authz.LoginFailed as exc:
            error = str(exc)
        else:
            if isinstance(outcome, authz.Approved):
                return _redirect(req.redirect_uri, {"code": outcome.code}, req.state)
            page = patient_page(
                action=str(request.url.path),
                client_name=req.client_name,
                scopes=req.scopes,
                params={**req.form_params(), "ticket": outcome.ticket},
                username=outcome.username,
                choices=outcome.choices,
                truncated=outcome.truncated,
            )
            return HTMLResponse(page, 200, headers=PAGE_HEADERS)
    page = login_page(
        action=str(request.url.path),
        client_name=req.client_name,
        scopes=req.scopes,
        params=req.form_params(),
        error=error,
        username=(submitted or {}).get("username", ""),
        ask_patient=req.needs_patient_choice,
    )
    return HTMLResponse(page, 200 if not error else 401, headers=PAGE_HEADERS)


def _redirect(uri: str, params: dict[str, str], state: str | None) -> Response:
    if state is not None:
        params = {**params, "state": state}
    sep = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{sep}{urlencode(params)}", status_code=302, headers=NO_STORE)
