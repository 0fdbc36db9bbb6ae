"""AuditEvent records of FHIR interactions (FHIR R4 AuditEvent, IHE BALP "RESTful" pattern)
and of OAuth security events (RFC 6749 grants, SMART sign-ins, RFC 7009 revocations, RFC 7591
registrations; DICOM "User Authentication" / "Security Alert" event types).

Pure: one interaction's facts in, one R4 AuditEvent JSON out. Deliberately PHI-free: no request
or response bodies, no query strings (search values can be names or identifiers), only the
interaction, the agent (client + user), the resource reference, outcome, source address and
request id.

``AuthEvent`` is the typed record the OAuth core (``auth/grants.py``, ``auth/authorize.py``)
fills while it works: who the client and the user turned out to be. The web adapter adds the
HTTP status and the network facts (``auth_facts``) and hands the result to the audit writer in
one explicit call, so no part of the audit travels through request-state side channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

AUDIT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
ACTIONS = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "search-type": "E",
    "search-system": "E",
    "search-compartment": "E",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "batch": "E",
    "operation": "E",
}
# FHIR restful-interaction codes (our internal names that differ map here).
SUBTYPES = {"search-compartment": "search-type", "batch": "batch", "unknown": "operation"}
CLIENT_SYSTEM = "urn:consilium:oauth-client"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
# OAuth events: DICOM "User Authentication" with Login / Logout, "Security Alert" for changes.
SECURITY_EVENTS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "oauth-token": (
        {"system": DCM, "code": "110114", "display": "User Authentication"},
        {"system": DCM, "code": "110122", "display": "Login"},
    ),
    "oauth-login": (
        {"system": DCM, "code": "110114", "display": "User Authentication"},
        {"system": DCM, "code": "110122", "display": "Login"},
    ),
    "oauth-revoke": (
        {"system": DCM, "code": "110114", "display": "User Authentication"},
        {"system": DCM, "code": "110123", "display": "Logout"},
    ),
    "oauth-register": (
        {"system": DCM, "code": "110113", "display": "Security Alert"},
        {"system": DCM, "code": "110136", "display": "Security Roles Changed"},
    ),
}
REQUEST_ID_SYSTEM = "urn:consilium:request-id"
AuthEventKind = Literal["oauth-token", "oauth-login", "oauth-revoke", "oauth-register"]


@dataclass(frozen=True)
class AuditFacts:
    interaction: str
    status: int
    recorded: str  # FHIR instant
    resource_type: str | None = None
    resource_id: str | None = None
    operation: str | None = None
    client_id: str | None = None
    user: str | None = None
    source_ip: str | None = None
    request_id: str | None = None
    method: str = ""


@dataclass
class AuthEvent:
    """One OAuth security event as the core knows it (mutable: filled in as the core goes).

    ``client_id`` is set as soon as the client is identified and ``user`` (the fhirUser) as soon
    as the user has signed in or the code/refresh token named them, so a refusal after that
    point is still attributed to them. Never holds credentials.
    """

    kind: AuthEventKind
    client_id: str | None = None
    user: str | None = None


def auth_facts(
    event: AuthEvent,
    *,
    status: int,
    recorded: str,
    source_ip: str | None = None,
    request_id: str | None = None,
    method: str = "POST",
) -> AuditFacts:
    """The audit facts of an OAuth event once the adapter knows the HTTP outcome."""
    return AuditFacts(
        interaction=event.kind,
        status=status,
        recorded=recorded,
        client_id=event.client_id,
        user=event.user,
        source_ip=source_ip,
        request_id=request_id,
        method=method,
    )


def outcome_code(status: int) -> str:
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def build_audit_event(f: AuditFacts, event_id: str) -> dict[str, Any]:
    subtype = SUBTYPES.get(f.interaction, f.interaction)
    agents: list[dict[str, Any]] = []
    client_agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://dicom.nema.org/resources/ontology/DCM",
                    "code": "110150",
                    "display": "Application",
                }
            ]
        },
        "who": {
            "identifier": {"system": CLIENT_SYSTEM, "value": f.client_id or "anonymous"},
        },
        "requestor": f.user is None,
    }
    if f.source_ip:
        client_agent["network"] = {"address": f.source_ip, "type": "2"}
    agents.append(client_agent)
    if f.user:
        agents.append({"who": {"reference": f.user}, "requestor": True})
    entities: list[dict[str, Any]] = []
    if f.resource_type:
        what: dict[str, Any] = (
            {"reference": f"{f.resource_type}/{f.resource_id}"}
            if f.resource_id
            else {"display": f.resource_type}
        )
        entities.append(
            {
                "what": what,
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object",
                },
            }
        )
    if f.request_id:
        entities.append(
            {
                "what": {"identifier": {"system": REQUEST_ID_SYSTEM, "value": f.request_id}},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                },
                "name": "request-id",
            }
        )
    if f.interaction in SECURITY_EVENTS:
        event_type, event_subtype = SECURITY_EVENTS[f.interaction]
    else:
        event_type, event_subtype = AUDIT_TYPE, {"system": INTERACTION_SYSTEM, "code": subtype}
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": event_type,
        "subtype": [event_subtype],
        "action": ACTIONS.get(f.interaction, "E"),
        "recorded": f.recorded,
        "outcome": outcome_code(f.status),
        "outcomeDesc": f"HTTP {f.status}"
        + (f" {f.method}" if f.method else "")
        + (f" ${f.operation}" if f.operation else ""),
        "agent": agents,
        "source": {
            "site": "consilium",
            "observer": {"display": "Consilium FHIR server"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
    }
    if entities:
        event["entity"] = entities
    return event
