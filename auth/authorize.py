"""The authorization endpoint, framework-free: RFC 6749 §4.1.1-4.1.2 (+ RFC 7636 §4.3 PKCE) as
profiled by SMART App Launch 2.x "Standalone launch" and "EHR launch".

Three steps, each plain data in and out:

1. ``check_authorize_request`` validates the request. Errors about the client or its
   ``redirect_uri`` must never redirect (RFC 6749 §4.1.2.1, §10.15): ``NoRedirect``; every later
   error goes back to the app: ``RedirectError``.
2. ``approve`` signs the user in (password, or the single-use sign-in ticket of step 3), checks
   the launch patient against what the user may see, and returns ``Approved`` with a one-time
   code. A wrong password or an unavailable patient is ``LoginFailed`` (the page again).
3. A standalone launch asking for ``launch/patient`` without a patient id returns
   ``ChoosePatient``: the patients the signed-in user may see (SMART "context-standalone-
   patient": the app asks, the server's picker answers) and a ticket that stands in for the
   password on the picker page. The list is only ever built after a successful sign-in, so the
   page never discloses names to someone without credentials.

The resource side (may this user see Patient/x, which patients may they see) is a
``PatientDirectory`` the server supplies: auth never reads resource collections itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from auth import pkce
from auth.audit import AuthEvent
from auth.errors import OAuthError
from auth.grants import AuthServer, Site, negotiate_scopes
from auth.principal import Principal
from auth.scopes import parse_scope
from resources.validation import ID_PATTERN

CODE_LIFETIME = 60
TICKET_LIFETIME = 300
PICKER_LIMIT = 50
# What the user's read of a patient is checked with: the user's own party binding, reading
# Patient resources, whatever narrower scopes the app asked for.
PROBE_SCOPES = ("user/Patient.rs",)
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


class NoRedirect(Exception):
    """An error the user sees on our page: the redirect URI itself cannot be trusted."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


class RedirectError(Exception):
    """An RFC 6749 §4.1.2.1 error response sent back to the app's redirect URI."""

    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str) -> None:
        super().__init__(description)
        self.redirect_uri, self.state = redirect_uri, state
        self.error, self.description = error, description


class LoginFailed(Exception):
    """The sign-in page again, with this message (wrong password, patient not available ...)."""


class PatientDirectory(Protocol):
    """The resource store's answer to "which patients may this principal read"."""

    def may_see(self, principal: Principal, patient_id: str) -> bool: ...

    def choices(self, principal: Principal, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` ``(id, label)`` pairs, in a stable order."""
        ...


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
    def needs_patient_choice(self) -> bool:
        """Standalone launch with ``launch/patient``: the user picks the patient context."""
        return "launch/patient" in self.scopes and self.launch_patient is None

    def form_params(self) -> dict[str, str]:
        """The request's own parameters, carried as hidden fields through the pages."""
        return {k: self.params[k] for k in FORM_FIELDS if k in self.params}

    def binding(self) -> str:
        """What a sign-in ticket is bound to: this client, redirect, challenge and grant."""
        parts = (
            self.client.client_id,
            self.redirect_uri,
            self.code_challenge,
            " ".join(self.scopes),
            self.params.get("launch", ""),
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Approved:
    code: str


@dataclass(frozen=True)
class ChoosePatient:
    ticket: str
    username: str
    choices: list[tuple[str, str]]
    truncated: bool


def check_authorize_request(
    server: AuthServer, site: Site, params: dict[str, str]
) -> AuthorizeRequest:
    client = server.store.get_client(params.get("client_id", ""))
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
    if params.get("aud", "").rstrip("/") != site.fhir_base.rstrip("/"):
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
        launch = server.store.get_launch(params["launch"])
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


def probe_principal(user: Any, client: Any) -> Principal:
    """The principal a patient choice is checked as: the user's party binding (or the client's
    when the user has none), allowed to read Patient resources."""
    binding = user.binding() if user.organization else client.binding()
    return Principal.build(
        client.client_id,
        PROBE_SCOPES,
        user=user.fhir_user,
        organization=binding.get("org"),
        role=binding.get("role"),
        practitioner_role=binding.get("prole"),
    )


def _sign_in(server: AuthServer, req: AuthorizeRequest, submitted: dict[str, str]) -> Any:
    ticket = submitted.get("ticket")
    if ticket:
        user = server.store.redeem_ticket(ticket, req.binding())
        if user is None:
            raise LoginFailed("the sign-in has expired; sign in again")
        return user
    user = server.store.check_login(submitted.get("username", ""), submitted.get("password", ""))
    if user is None:
        raise LoginFailed("unknown user name or wrong password")
    return user


def approve(
    server: AuthServer,
    req: AuthorizeRequest,
    submitted: dict[str, str],
    event: AuthEvent,
    patients: PatientDirectory,
) -> Approved | ChoosePatient:
    """The user said "allow": sign them in, settle the patient context, issue the code."""
    event.client_id = req.client.client_id
    user = _sign_in(server, req, submitted)
    event.user = user.fhir_user
    probe = probe_principal(user, req.client)
    patient = req.launch_patient
    if req.needs_patient_choice:
        chosen = submitted.get("patient", "").strip()
        if not chosen:
            choices = patients.choices(probe, PICKER_LIMIT + 1)
            if not choices:
                raise LoginFailed("no patient is available to you")
            ticket = server.store.create_ticket(
                TICKET_LIFETIME, binding=req.binding(), username=user.username
            )
            return ChoosePatient(
                ticket, user.username, choices[:PICKER_LIMIT], len(choices) > PICKER_LIMIT
            )
        if not ID_PATTERN.match(chosen):
            raise LoginFailed("choose a patient (enter the patient's id)")
        patient = chosen
    if patient is not None and not patients.may_see(probe, patient):
        raise LoginFailed("that patient is not available to you")
    code = server.store.create_code(
        CODE_LIFETIME,
        client_id=req.client.client_id,
        redirect_uri=req.redirect_uri,
        scope=" ".join(req.scopes),
        code_challenge=req.code_challenge,
        username=user.username,
        context={"patient": patient} if patient else {},
        nonce=req.nonce,
    )
    return Approved(code)
