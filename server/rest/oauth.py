"""OAuth 2.0 / SMART endpoints (public: no bearer token needed to reach them).

- ``GET /fhir/.well-known/smart-configuration`` — SMART App Launch 2.x §"Conformance" discovery;
- ``GET /oauth/jwks`` — our public keys (RFC 7517);
- ``POST /oauth/register`` — dynamic client registration (RFC 7591), admin bearer token only;
- ``POST /oauth/token`` — client_credentials with a JWT assertion (SMART Backend Services),
  authorization_code + PKCE (RFC 6749 §4.1, RFC 7636), refresh_token with rotation;
- ``GET/POST /oauth/authorize`` — login + consent page, standalone and EHR launch;
- ``POST /oauth/launch`` — create an EHR launch context (admin);
- ``POST /oauth/introspect`` (RFC 7662) and ``POST /oauth/revoke`` (RFC 7009).
Errors are RFC 6749 §5.2 JSON, never OperationOutcome. Handlers only parse and format: the
checks live in ``auth/`` and ``server/oauth_grants.py``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from auth.errors import OAuthError, invalid_request
from auth.pages import error_page, login_page
from server import oauth_grants as grants
from server.smart import AuthRuntime

router = APIRouter()
discovery_router = APIRouter()

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM_FIELDS = 40


def _runtime(request: Request) -> AuthRuntime:
    runtime: AuthRuntime | None = request.app.state.consilium.auth
    assert runtime is not None  # the OAuth routes are mounted by the SMART plugin, which sets it
    return runtime


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


def _require_admin(request: Request, runtime: AuthRuntime) -> None:
    if not runtime.settings.admin_token:
        raise OAuthError(
            "access_denied", "registration is closed: no admin token is configured", 403
        )
    token = _bearer(request)
    if token is None or not runtime.is_admin_token(token):
        raise OAuthError("invalid_token", "an admin bearer token is required", 401)
    request.state.audit_client = "admin"


# ----------------------------------------------------------------------------------- discovery
@discovery_router.get("/.well-known/smart-configuration")
def smart_configuration(request: Request) -> Response:
    runtime = _runtime(request)
    return Response(
        content=orjson.dumps(grants.smart_configuration(runtime, request)),
        media_type="application/json",
    )


@discovery_router.get("/.well-known/openid-configuration")
def openid_configuration(request: Request) -> Response:
    runtime = _runtime(request)
    return Response(
        content=orjson.dumps(grants.openid_configuration(runtime, request)),
        media_type="application/json",
    )


@router.get("/jwks")
def jwks(request: Request) -> Response:
    return Response(
        content=orjson.dumps(_runtime(request).keys.jwks()), media_type="application/jwk-set+json"
    )


# -------------------------------------------------------------------------------- registration
@router.post("/register")
async def register(request: Request) -> Response:
    runtime = _runtime(request)
    try:
        _require_admin(request, runtime)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise invalid_request("registration requests are application/json")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise OAuthError("invalid_client_metadata", "body is not JSON") from exc
        client = await run_in_threadpool(runtime.store.register_client, body)
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json(client.to_metadata(), 201)


# ---------------------------------------------------------------------------------- token
@router.post("/token")
async def token(request: Request) -> Response:
    runtime = _runtime(request)
    try:
        form = await _form(request)
        body = await run_in_threadpool(grants.token_request, runtime, request, form)
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json(body)


@router.post("/introspect")
async def introspect(request: Request) -> Response:
    runtime = _runtime(request)
    try:
        form = await _form(request)
        body = await run_in_threadpool(grants.introspect, runtime, request, form, _bearer(request))
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json(body)


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    runtime = _runtime(request)
    try:
        form = await _form(request)
        await run_in_threadpool(grants.revoke, runtime, request, form)
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json({})


@router.post("/launch")
async def launch(request: Request) -> Response:
    """EHR launch: bind a patient context to a one-time ``launch`` value (admin only)."""
    runtime = _runtime(request)
    try:
        _require_admin(request, runtime)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise invalid_request('body must be JSON: {"patient": "<id>"}') from exc
        value = await run_in_threadpool(grants.create_launch, runtime, body)
    except OAuthError as exc:
        return oauth_error(exc)
    return oauth_json({"launch": value}, 201)


# ------------------------------------------------------------------------------- authorize
@router.get("/authorize")
async def authorize_get(request: Request) -> Response:
    runtime = _runtime(request)
    params = dict(request.query_params.items())
    if len(request.query_params.multi_items()) != len(params):
        return HTMLResponse(error_page("invalid_request", "repeated parameters"), 400)
    return await run_in_threadpool(_authorize, runtime, request, params, None)


@router.post("/authorize")
async def authorize_post(request: Request) -> Response:
    runtime = _runtime(request)
    try:
        form = await _form(request)
    except OAuthError as exc:
        return HTMLResponse(error_page(exc.error, exc.description), 400)
    # SMART "authorize-post": an app may POST the authorization request itself; only a form
    # carrying the login fields is a sign-in attempt.
    submitted = form if ("username" in form or "decision" in form) else None
    return await run_in_threadpool(_authorize, runtime, request, form, submitted)


def _authorize(
    runtime: AuthRuntime, request: Request, params: dict[str, str], submitted: dict[str, str] | None
) -> Response:
    try:
        req = grants.check_authorize_request(runtime, request, params)
    except grants.NoRedirect as exc:
        return HTMLResponse(error_page(exc.error, exc.description), 400)
    except grants.RedirectError as exc:
        return _redirect(
            exc.redirect_uri, {"error": exc.error, "error_description": exc.description}, exc.state
        )
    if submitted is not None and submitted.get("decision") == "deny":
        return _redirect(req.redirect_uri, {"error": "access_denied"}, req.state)
    error = ""
    if submitted is not None:
        try:
            code = grants.approve(runtime, req, submitted, request)
        except grants.LoginFailed as exc:
            error = str(exc)
        except grants.RedirectError as exc:
            return _redirect(
                exc.redirect_uri,
                {"error": exc.error, "error_description": exc.description},
                exc.state,
            )
        else:
            return _redirect(req.redirect_uri, {"code": code}, req.state)
    page = login_page(
        action=str(request.url.path),
        client_name=req.client_name,
        scopes=req.scopes,
        params=req.form_params(),
        error=error,
        username=(submitted or {}).get("username", ""),
        patients=grants.patient_choices(runtime, request, submitted)
        if req.needs_patient_picker
        else None,
    )
    return HTMLResponse(
        page, 200 if not error else 401, headers={**NO_STORE, "X-Frame-Options": "DENY"}
    )


def _redirect(uri: str, params: dict[str, str], state: str | None) -> Response:
    if state is not None:
        params = {**params, "state": state}
    sep = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{sep}{urlencode(params)}", status_code=302, headers=NO_STORE)
