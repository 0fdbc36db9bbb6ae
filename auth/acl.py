"""Ownership facts stored beside each resource (``acl``), computed at write time.

Backs the party rules of ``auth/policy.py`` and the FHIR patient compartment
(CompartmentDefinition ``patient``) for SMART ``patient/`` scopes.

The policy filters on these facts in MongoDB (``acl.orgs``, ``acl.patients`` ...) so every query
shape (search, _include, history, compartment) is narrowed by an index-friendly equality, and
ownership survives updates: the submitting clinic is recorded once and kept across versions.

- ``patients``: Patient ids the resource references (and its own id for a Patient): the patient
  compartment, approximated by "references a Patient anywhere" (over-inclusion only ever adds the
  patient's own resources to that patient's compartment).
- ``orgs``: clinics that own it: the writing clinic, plus the owners of the patients it references,
  plus ``Patient.managingOrganization`` when a trusted (unbound) client writes it (seeding).
- ``payors``: insurers (``Coverage.payor``, ``CoverageEligibility*.insurer``).
- ``owners``: a Task's ``owner`` PractitionerRole; ``requests``: ServiceRequests it fulfils
  (``focus`` and ``basedOn``, so a board sub-Task, ``basedOn`` the case's ServiceRequest and
  owned by another expert, gives that expert the same case).
- ``service`` (coordination Tasks only): the ``coordination-service`` code of a Task whose
  ``code`` is from that CodeSystem (docs/coordination.md). The policy reads the kind of a Task
  from this stored fact (and from ``coordination_service`` on an incoming one), so a
  specialist's or insurer's query can be narrowed on it.
- ``subscriber`` (Subscription only): the party that owns it (``party_key``: role,
  organization, and for a specialist its PractitionerRole), recorded at create from the writer
  and kept across versions; a trusted (unbound) writer may name the party with the
  ``subscription-owner`` extension (a provisioned subscription), and one it names no party for
  has none (only trusted clients and administrators see it). The policy lets each bound party
  write and read only the Subscriptions whose ``subscriber`` is its own key.
- ``attested`` (Coverage only): whether this version is *insurer-held*, i.e. written by someone
  entitled to state what an insurer covers: a trusted integration or an administrator (the
  insurer's own feed, an import; principal None or without a role, which includes auth off) or
  an insurer that is one of the Coverage's payors. A Coverage typed in by a clinic, a
  coordinator or a specialist is only a claim of coverage. Why a stored fact: eligibility must
  not be decided on a policy number a clinic made up, and the case engine reads this flag
  instead of re-deriving who wrote the version. It is recomputed on every version, never
  carried over: a clinic editing an insurer's Coverage makes it unattested again, because the
  insurer no longer vouches for the new content.

Patients written by a coordinator (the second-opinion service's staff taking a member's call)
get the clinics of ``Patient.managingOrganization`` like a trusted client's, so the clinic the
coordinator acts for sees the patient; a clinic's own writes are attributed to that clinic only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from auth.principal import Principal

_REF = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$"
)

# The guide's coordination-service CodeSystem (profiles.conformance.CS_COORDINATION; auth
# imports nothing of ours, so the canonical is repeated here and a test keeps them equal).
COORDINATION_SYSTEM = "https://consilium.health/fhir/CodeSystem/coordination-service"

# server.notifications.spec.OWNER_EXT, repeated for the same reason (a test keeps them equal).
SUBSCRIPTION_OWNER = "https://consilium.health/fhir/StructureDefinition/subscription-owner"
PARTY_ROLES = frozenset({"clinic", "specialist", "insurer", "coordinator"})

PatientOrgs = Callable[[set[str]], dict[str, set[str]]]


def parse_reference(ref: Any) -> tuple[str, str] | None:
    if not isinstance(ref, str) or ref.startswith(("#", "urn:")):
        return None
    m = _REF.search(ref)
    return (m["type"], m["id"]) if m else None


def references(value: Any) -> Iterator[tuple[str, str]]:
    """Every ``Reference.reference`` in a resource, as (type, id)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference":
                parsed = parse_reference(v)
                if parsed:
                    yield parsed
            elif k != "contained":
                yield from references(v)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def _ids(value: Any, rtype: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            parsed = parse_reference(item.get("reference"))
            if parsed and parsed[0] == rtype:
                out.append(parsed[1])
    return out


def coordination_service(task: dict[str, Any] | None) -> str | None:
    """The coordination service a Task stands for (its ``code`` from the coordination-service
    CodeSystem), None for every other Task (the case, board sub-Tasks)."""
    code = (task or {}).get("code")
    for c in code.get("coding") or [] if isinstance(code, dict) else []:
        if isinstance(c, dict) and c.get("system") == COORDINATION_SYSTEM:
            value = c.get("code")
            if isinstance(value, str):
                return value
    return None


def insurer_held(principal: Principal | None, payors: list[str]) -> bool:
    """Whether a Coverage version written by ``principal`` is vouched for by an insurer (see the
    module docstring: trusted writers and the paying insurer only)."""
    if principal is None or principal.role is None:
        return True
    return principal.role == "insurer" and principal.organization in payors


def party_key(role: str | None, organization: str | None, practitioner_role: str | None) -> str:
    """The identity of a party as one string: ``role|organization|practitioner role``. Why the
    organization and not the client: a clinic's subscriptions belong to the clinic (a second app
    or a rotated credential of the same clinic manages them), like its patients (``orgs``); an
    expert is a PractitionerRole of the network, so a specialist bound to one is that role."""
    prole = practitioner_role if role == "specialist" else None
    return f"{role or ''}|{organization or ''}|{prole or ''}"


def principal_party(principal: Principal | None) -> str | None:
    """``party_key`` of a bound principal; None for trusted integrations, admins, auth off."""
    if principal is None or principal.admin or principal.role is None:
        return None
    return party_key(principal.role, principal.organization, principal.practitioner_role)


def _provisioned_party(resource: dict[str, Any]) -> str | None:
    """The party of the ``subscription-owner`` extension (only honoured for trusted writers;
    the notification hook validates it and refuses it from a bound party with 422)."""
    for ext in resource.get("extension") or []:
        if not (isinstance(ext, dict) and ext.get("url") == SUBSCRIPTION_OWNER):
            continue
        found: dict[str, str] = {}
        for sub in ext.get("extension") or []:
            if not isinstance(sub, dict):
                continue
            if sub.get("url") == "role" and isinstance(sub.get("valueCode"), str):
                found["role"] = sub["valueCode"]
            elif sub.get("url") in ("organization", "practitionerRole"):
                ref = (sub.get("valueReference") or {}).get("reference")
                if isinstance(ref, str):
                    found[str(sub["url"])] = ref.rsplit("/", 1)[-1]
        if found.get("role") not in PARTY_ROLES:
            return None
        return party_key(found["role"], found.get("organization"), found.get("practitionerRole"))
    return None


def subscriber_of(
    principal: Principal | None, resource: dict[str, Any], previous: dict[str, Any]
) -> str | None:
    """Who owns a Subscription version: a trusted writer's provisioning names it (also on
    update: re-provisioning), otherwise the owner recorded at create stays, otherwise the
    writing party."""
    if principal_party(principal) is None:
        named = _provisioned_party(resource)
        if named is not None:
            return named
    kept = previous.get("subscriber")
    if isinstance(kept, str):
        return kept
    return principal_party(principal)


def compute_acl(
    resource_type: str,
    resource_id: str,
    resource: dict[str, Any] | None,
    principal: Principal | None,
    previous: dict[str, Any] | None,
    patient_orgs: PatientOrgs,
) -> dict[str, Any]:
    prev = previous or {}
    if resource is None:  # deletion keeps the facts so the tombstone stays hidden
        return dict(prev)
    refs = list(references(resource))
    patients = {rid for (t, rid) in refs if t == "Patient"}
    if resource_type == "Patient":
        patients.add(resource_id)
    orgs = set(prev.get("orgs", []))
    bound = principal is not None and principal.organization is not None
    if principal is not None and principal.role == "clinic" and principal.organization:
        orgs.add(principal.organization)
    on_behalf = principal is not None and principal.role == "coordinator"
    if resource_type == "Patient" and (not bound or on_behalf):
        orgs.update(_ids(resource.get("managingOrganization"), "Organization"))
    others = patients - {resource_id} if resource_type == "Patient" else patients
    if others:
        for owners in patient_orgs(others).values():
            orgs.update(owners)
    acl: dict[str, Any] = {"patients": sorted(patients), "orgs": sorted(orgs)}
    if resource_type == "Coverage":
        acl["payors"] = sorted(set(_ids(resource.get("payor"), "Organization")))
        acl["attested"] = insurer_held(principal, acl["payors"])
    elif resource_type in ("CoverageEligibilityRequest", "CoverageEligibilityResponse"):
        acl["payors"] = sorted(set(_ids(resource.get("insurer"), "Organization")))
    if resource_type == "Task":
        acl["owners"] = _ids(resource.get("owner"), "PractitionerRole")
        acl["requests"] = sorted(
            set(_ids(resource.get("focus"), "ServiceRequest"))
            | set(_ids(resource.get("basedOn"), "ServiceRequest"))
        )
        service = coordination_service(resource)
        if service is not None:
            acl["service"] = service
    elif resource_type == "Subscription":
        subscriber = subscriber_of(principal, resource, prev)
        if subscriber is not None:
            acl["subscriber"] = subscriber
    elif resource_type == "DiagnosticReport":
        acl["requests"] = sorted(set(_ids(resource.get("basedOn"), "ServiceRequest")))
    return acl
