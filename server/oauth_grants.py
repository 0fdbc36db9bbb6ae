"""The OAuth grant logic behind ``server/rest/oauth.py`` (sync: runs in the threadpool).

SMART App Launch 2.x ("App Launch", "Token response", "Refresh", "Discovery"), SMART Backend
Services (client_credentials + private_key_jwt), RFC 6749 §4.1/§6, RFC 7636, RFC 7662, RFC 7009.
Checks that are pure (assertions, PKCE, scope narrowing) live in ``auth/``; this module sequences
them against the auth store and the resource store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from auth import pkce
from auth.assertions import ASSERTION_TYPE, verify_client_assertion
from auth.errors import (
    OAuthError,
    TokenInvalid,
    invalid_client,
    invalid_grant,
    invalid_request,
    invalid_scope,
)
from auth.principal import Principal
from auth.scopes import is_valid_scope, parse_scope, scope_within, split_scopes
from auth.tokens import decode_access_token, issue_access_token, issue_id_token
from resources.validation import ID_PATTERN
from server.context import SecurityContext
from server.repository import Repository
from server.smart import AuthRuntime

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-standalone-patient",
    "context-banner",
    "sso-openid-connect",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "authorize-post",
]
SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.cruds",
    "user/*.cruds",
    "system/*.cruds",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
    "patient/*.write",
    "user/*.write",
    "system/*.write",
]
OFFLINE_LIFETIME = 30 * 24 * 3600
ONLINE_LIFETIME = 3600
ID_TOKEN_LIFETIME = 300
CODE_LIFETIME = 60


def smart_configuration(runtime: AuthRuntime, request: Request) -> dict[str, Any]:
    def ep(name: str) -> str:
        return runtime.endpoint(request, name)

    return {
        "issuer": runtime.issuer(request),
        "jwks_uri": ep("jwks"),
        "authorization_endpoint": ep("authorize"),
        "token_endpoint": ep("token"),
        "registration_endpoint": ep("register"),
        "introspection_endpoint": ep("introspect"),
        "revocation_endpoint": ep("revoke"),
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS384"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(runtime: AuthRuntime, request: Request) -> dict[str, Any]:
    conf = smart_configuration(runtime, request)
    return {
        **{k: conf[k] for k in ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint")},
        "registration_endpoint": conf["registration_endpoint"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS384"],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "fhirUser", "nonce"],
    }


# --------------------------------------------------------------------------- client auth
def authenticate_client(
    runtime: AuthRuntime, request: Request, form: dict[str, str], *, allow_public: bool
) -> Any:
    if request.headers.get("authorization", "").lower().startswith("basic "):
        raise invalid_client("client secrets are not supported; use private_key_jwt")
    if "client_assertion" in form or "client_assertion_type" in form:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
        client = verify_client_assertion(
            form.get("client_assertion", ""),
            token_endpoint=runtime.endpoint(request, "token"),
            find_client=runtime.store.get_client,
            remember_jti=runtime.store.remember_jti,
        )
        if form.get("client_id") not in (None, client.client_id):
            raise invalid_client("client_id does not match the assertion")
        request.state.audit_client = client.client_id
        return client
    client = runtime.store.get_client(form.get("client_id", ""))
    if client is None:
        raise invalid_client("unknown client")
    if client.token_endpoint_auth_method != "none":  # noqa: S105
        raise invalid_client("this client must authenticate with a client_assertion")
    if not allow_public:
        raise invalid_client("client authentication required")
    request.state.audit_client = client.client_id
    return client


def negotiate_scopes(requested: str | None, allowed: list[str]) -> list[str]:
    wanted = split_scopes(requested)
    if not wanted:
        if not allowed:
            raise invalid_scope("no scope requested and the client has no default scopes")
        return allowed
    for s in wanted:
        if not is_valid_scope(s):
            raise invalid_scope(f"unknown scope {s!r}")
        if not scope_within(s, allowed):
            raise invalid_scope(f"scope {s!r} is not allowed for this client")
    return wanted


def _token_body(
    runtime: AuthRuntime,
    request: Request,
    client: Any,
    scopes: list[str],
    *,
    user: Any = None,
    context: dict[str, Any] | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    binding = user.binding() if user is not None and user.organization else client.binding()
    ctx = dict(context or {})
    if user is not None:
        ctx["fhirUser"] = user.fhir_user
    lifetime = runtime.settings.access_token_lifetime_seconds
    token, _ = issue_access_token(
        runtime.keys,
        issuer=runtime.issuer(request),
        client_id=client.client_id,
        scopes=scopes,
        lifetime=lifetime,
        subject=user.username if user is not None else client.client_id,
        context=ctx,
        binding=binding,
    )
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(scopes),
    }
    if ctx.get("patient"):
        body["patient"] = ctx["patient"]
        body["need_patient_banner"] = True
    if user is not None and "openid" in scopes and "fhirUser" in scopes:
        body["id_token"] = issue_id_token(
            runtime.keys,
            issuer=runtime.issuer(request),
            client_id=client.client_id,
            subject=user.username,
            fhir_user=user.fhir_user,
            nonce=nonce,
            lifetime=ID_TOKEN_LIFETIME,
        )
    if user is not None and ("offline_access" in scopes or "online_access" in scopes):
        body["refresh_token"] = runtime.store.create_refresh(
            OFFLINE_LIFETIME if "offline_access" in scopes else ONLINE_LIFETIME,
            client_id=client.client_id,
            scope=" ".join(scopes),
            username=user.username,
            context={k: v for k, v in (context or {}).items() if v is not None},
        )
    return body


# ---------------------------------------------------------------------------------- grants
def token_request(runtime: AuthRuntime, request: Request, form: dict[str, str]) -> dict[str, Any]:
    grant = form.get("grant_type")
    if grant == "client_credentials":
        return client_credentials(runtime, request, form)
    if grant == "authorization_code":
        return authorization_code(runtime, request, form)
    if grant == "refresh_token":
        return refresh_token(runtime, request, form)
    if not grant:
        raise invalid_request("grant_type is required")
    raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")


def client_credentials(
    runtime: AuthRuntime, request: Request, form: dict[str, str]
) -> dict[str, Any]:
    if "client_assertion" not in form:
        raise invalid_client("client_credentials needs a client_assertion (private_key_jwt)")
    client = authenticate_client(runtime, request, form, allow_public=False)
    if "client_credentials" not in client.grant_types:
        raise OAuthError("unauthorized_client", "client is not registered for client_credentials")
    scopes = negotiate_scopes(form.get("scope"), client.allowed_scopes())
    for s in scopes:
        perm = parse_scope(s)
        if perm is None or perm.context != "system":
            raise invalid_scope(f"backend services are granted system/ scopes only, not {s!r}")
    return _token_body(runtime, request, client, scopes)


def authorization_code(
    runtime: AuthRuntime, request: Request, form: dict[str, str]
) -> dict[str, Any]:
    client = authenticate_client(runtime, request, form, allow_public=True)
    code, redirect_uri, verifier = (
        form.get("code"),
        form.get("redirect_uri"),
        form.get("code_verifier"),
    )
    if not code or not redirect_uri or not verifier:
        raise invalid_request("code, redirect_uri and code_verifier are required")
    rec = runtime.store.redeem_code(code)
    if rec is None:
        raise invalid_grant("authorization code is invalid, expired or already used")
    if rec.client_id != client.client_id:
        raise invalid_grant("authorization code was issued to another client")
    if rec.redirect_uri != redirect_uri:
        raise invalid_grant("redirect_uri does not match the authorization request")
    if not pkce.verify(verifier, rec.code_challenge):
        raise invalid_grant("PKCE verification failed")
    user = runtime.store.get_user(rec.username)
    if user is None:
        raise invalid_grant("the user no longer exists")
    request.state.audit_user = user.fhir_user
    return _token_body(
        runtime,
        request,
        client,
        split_scopes(rec.scope),
        user=user,
        context=dict(rec.context or {}),
        nonce=rec.nonce,
    )


def refresh_token(runtime: AuthRuntime, request: Request, form: dict[str, str]) -> dict[str, Any]:
    client = authenticate_client(runtime, request, form, allow_public=True)
    presented = form.get("refresh_token")
    if not presented:
        raise invalid_request("refresh_token is required")
    known = runtime.store.find_refresh(presented)
    if known is None or known.client_id != client.client_id:
        raise invalid_grant("refresh token is invalid")
    rec = runtime.store.use_refresh(presented)
    if rec is None:
        raise invalid_grant("refresh token is expired, revoked or already used")
    granted = split_scopes(rec.scope)
    scopes = negotiate_scopes(form.get("scope"), granted) if form.get("scope") else granted
    user = runtime.store.get_user(rec.username) if rec.username else None
    if user is None:
        raise invalid_grant("the user no longer exists")
    return _token_body(runtime, request, client, scopes, user=user, context=dict(rec.context or {}))


# ------------------------------------------------------------------------- introspection
def _presented_token(
    runtime: AuthRuntime, request: Request, form: dict[str, str]
) -> tuple[str, dict[str, Any] | None]:
    """The ``token`` form field (RFC 7662/7009), with its claims when it is one of our access
    tokens; None means "not an access token" (a refresh token, or nothing we issued)."""
    token = form.get("token")
    if not token:
        raise invalid_request("token is required")
    try:
        return token, decode_access_token(runtime.keys, token, issuer=runtime.issuer(request))
    except TokenInvalid:
        return token, None


def introspect(
    runtime: AuthRuntime, request: Request, form: dict[str, str], bearer: str | None
) -> dict[str, Any]:
    if not (bearer and runtime.is_admin_token(bearer)):
        authenticate_client(runtime, request, form, allow_public=False)
    token, claims = _presented_token(runtime, request, form)
    if claims is not None:
        if runtime.store.is_revoked(str(claims["jti"])):
            return {"active": False}
        out: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer",
            **{
                k: claims[k]
                for k in (
                    "scope",
                    "client_id",
                    "sub",
                    "exp",
                    "iat",
                    "iss",
                    "aud",
                    "jti",
                    "patient",
                    "fhirUser",
                )
                if k in claims
            },
        }
        return out
    rec = runtime.store.find_refresh(token)
    if rec is not None and not rec.revoked and rec.expires_at.timestamp() > time.time():
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": rec.client_id,
            "scope": rec.scope,
            "exp": int(rec.expires_at.timestamp()),
        }
    return {"active": False}


def revoke(runtime: AuthRuntime, request: Request, form: dict[str, str]) -> None:
    client = authenticate_client(runtime, request, form, allow_public=True)
    token, claims = _presented_token(runtime, request, form)
    if claims is not None:
        if claims.get("client_id") == client.client_id:
            runtime.store.revoke_access(str(claims["jti"]), int(claims["exp"]))
            runtime.note_revoked(str(claims["jti"]))
        return
    rec = runtime.store.find_refresh(token)
    if rec is not None and rec.client_id == client.client_id:
        runtime.store.revoke_refresh(token)


def create_launch(runtime: AuthRuntime, body: Any) -> str:
    patient = body.get("patient") if isinstance(body, dict) else None
    if not isinstance(patient, str) or not ID_PATTERN.match(patient):
        raise invalid_request("patient must be a FHIR logical id")
    return runtime.store.create_launch(patient)


# ------------------------------------------------------------------------------- authorize
class NoRedirect(Exception):
    """An error the user sees on our page: the redirect URI itself cannot be trusted."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


class RedirectError(Exception):
    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str) -> None:
        super().__init__(description)
        self.redirect_uri, self.state = redirect_uri, state
        self.error, self.description = error, description


class LoginFailed(Exception):
    pass


FORM_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "launch",
    "nonce",
)


@dataclass
class AuthorizeRequest:
    client: Any
    client_name: str
    redirect_uri: str
    state: str
    scopes: list[str]
    code_challenge: str
    launch_patient: str | None
    nonce: str | None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def needs_patient_picker(self) -> bool:
        return "launch/patient" in self.scopes and self.launch_patient is None

    def form_params(self) -> dict[str, str]:
        return {k: self.params[k] for k in FORM_FIELDS if k in self.params}


def check_authorize_request(
    runtime: AuthRuntime, request: Request, params: dict[str, str]
) -> AuthorizeRequest:
    client = runtime.store.get_client(params.get("client_id", ""))
    if client is None or "authorization_code" not in client.grant_types:
        raise NoRedirect("invalid_client", "unknown client or client not allowed to use this flow")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:  # exact string match, no prefix matching
        raise NoRedirect("invalid_request", "redirect_uri is not registered for this client")
    state = params.get("state")

    def fail(error: str, description: str) -> RedirectError:
        return RedirectError(redirect_uri, state, error, description)

    if not state:
        raise fail("invalid_request", "state is required")
    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "response_type must be code")
    if not pkce.valid_challenge(params.get("code_challenge"), params.get("code_challenge_method")):
        raise fail("invalid_request", "a PKCE code_challenge with method S256 is required")
    if params.get("aud", "").rstrip("/") != runtime.fhir_base(request).rstrip("/"):
        raise fail("invalid_request", "aud must be this server's FHIR base URL")
    try:
        scopes = negotiate_scopes(params.get("scope"), client.allowed_scopes())
    except OAuthError as exc:
        raise fail(exc.error, exc.description) from exc
    for s in scopes:
        perm = parse_scope(s)
        if perm is not None and perm.context == "system":
            raise fail("invalid_scope", "system/ scopes are for backend services only")
    launch_patient = None
    if params.get("launch"):
        if "launch" not in scopes:
            raise fail("invalid_scope", "an EHR launch needs the launch scope")
        launch = runtime.store.get_launch(params["launch"])
        if launch is None:
            raise fail("invalid_request", "unknown or expired launch")
        launch_patient = launch.patient
    return AuthorizeRequest(
        client=client,
        client_name=client.client_name or client.client_id,
        redirect_uri=redirect_uri,
        state=state,
        scopes=scopes,
        code_challenge=params["code_challenge"],
        launch_patient=launch_patient,
        nonce=params.get("nonce"),
        params=params,
    )


def _user_may_see_patient(
    runtime: AuthRuntime, request: Request, user: Any, client: Any, pid: str
) -> bool:
    state = request.app.state.consilium
    probe = None
    if state.policy is not None:
        binding = user.binding() if user.organization else client.binding()
        probe = Principal.build(
            client.client_id,
            ("user/Patient.rs",),
            user=user.fhir_user,
            organization=binding.get("org"),
            role=binding.get("role"),
            practitioner_role=binding.get("prole"),
        )
    # Through the repository's read primitive: the probe's access filter and can_read.
    repo = Repository(state.store, state.hooks, security=SecurityContext(probe, state.policy))
    return bool(repo.fetch_visible([f"Patient/{pid}"]))


def approve(
    runtime: AuthRuntime,
    req: AuthorizeRequest,
    submitted: dict[str, str],
    request: Request | None = None,
) -> str:
    if request is None:
        raise LoginFailed("internal: no request")
    request.state.audit_client = req.client.client_id
    user = runtime.store.check_login(submitted.get("username", ""), submitted.get("password", ""))
    if user is None:
        raise LoginFailed("unknown user name or wrong password")
    request.state.audit_user = user.fhir_user
    patient = req.launch_patient
    if req.needs_patient_picker:
        patient = submitted.get("patient", "").strip()
        if not ID_PATTERN.match(patient):
            raise LoginFailed("choose a patient (enter the patient's id)")
    if patient is not None and not _user_may_see_patient(
        runtime, request, user, req.client, patient
    ):
        raise LoginFailed("that patient is not available to you")
    return runtime.store.create_code(
        CODE_LIFETIME,
        client_id=req.client.client_id,
        redirect_uri=req.redirect_uri,
        scope=" ".join(req.scopes),
        code_challenge=req.code_challenge,
        username=user.username,
        context={"patient": patient} if patient else {},
        nonce=req.nonce,
    )


def patient_choices(
    runtime: AuthRuntime, request: Request, submitted: dict[str, str] | None
) -> list[tuple[str, str]]:
    """No patient list before login (it would disclose names): the picker takes an id."""
    return []
