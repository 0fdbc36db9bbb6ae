"""Access decisions: SMART scopes, patient context and party isolation (deny by default).

SMART App Launch 2.x "Scopes" (what a token may do) and the Consilium party model (DOMAIN.md):
a clinic sees only patients and cases it submitted, a specialist only cases whose Task it owns,
an insurer only Coverage it pays and the *status* of its members' cases, a coordinator (the
second-opinion service's own staff) every case of the network. HAPI's
AuthorizationInterceptor is the model: an ordered rule list, first matching rule wins, every
verdict names its rule; incoming (writes) and outgoing (reads) resources are both checked.

Three entry points share one set of facts:
- ``decide(principal, interaction, type)``: may this kind of request happen at all (403 if not);
- ``access_filter(principal, type)``: a MongoDB filter on stored ``acl``/``idx`` fields that every
  query is ANDed with (narrowing — convenient and index-friendly);
- ``can_read`` / ``check_write``: the per-resource check (the security behind the narrowing).
Database facts (a specialist's assigned patients, an insurer's members) come through the
``Facts`` protocol, supplied by the server, so this module stays pure.

Server-managed types: a case Task is moved by the server only (docs/cases.md), so every bound
party is refused direct Task writes (rule ``task-server-managed``) and asks through the case
operations, a Communication or a report instead; the case engine writes Tasks on the server's
own account. Provenance is the server's record of those transitions, so bound parties read it
(the same party rules as the case's other data) but never write it. Trusted integrations (no
role) and administrators still write both: imports and migrations.

Subscriptions are party-owned records (rule ``party-own-subscription``): every bound party
(clinic, specialist, insurer, coordinator) creates, reads, updates and deletes its own
Subscriptions (``acl.subscriber``, recorded at create, ``auth.acl.party_key``) and no one
else's, whatever its other rules say (an insurer writes no clinical data, a coordinator sees
every case: neither makes another party's Subscription theirs). Another party's Subscription is
invisible like any other party's resource: 404 on read and search (narrowed away), 403 on
update and delete (the write check of the stored version, as for another clinic's Patient).
What a subscription then delivers is still decided by the owner's read policy, per resource.

Coordination Tasks (docs/coordination.md) are the one exception: a Task whose ``code`` is from
the guide's coordination-service CodeSystem (``auth.acl.coordination_service``; stored as
``acl.service``) is a request for a service (hotel, transport, a video consultation ...), not
a case, so the requesting clinic and a coordinator may create and update one (never delete:
it is cancelled instead); the case engine's coordination hooks decide what each may change.
Which Task it is can only be known from its body, so for those two parties the refusal of a
bare "write a Task" is not ``final``: the HTTP edge lets the request through to the write
check, which decides on the resource. Specialists read the coordination Tasks of cases
assigned to them; insurers only fee negotiation (what is billed concerns them; a member's
travel, lodging and visa plans do not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from auth.acl import compute_acl, coordination_service, principal_party
from auth.principal import Principal
from auth.scopes import Permission, ops_for

Filter = dict[str, Any]
DENY_ALL: Filter = {"_id": {"$in": []}}

# Shared network and definition data every bound party may read (never write).
DIRECTORY_TYPES = frozenset(
    {
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Location",
        "HealthcareService",
        "Endpoint",
        "InsurancePlan",
        "StructureDefinition",
        "ValueSet",
        "CodeSystem",
        "ConceptMap",
        "NamingSystem",
        "SearchParameter",
        "OperationDefinition",
        "CapabilityStatement",
        "ImplementationGuide",
        "PlanDefinition",
        "ActivityDefinition",
        "Questionnaire",
        "Medication",
        "Substance",
    }
)
ADMIN_TYPES = frozenset({"AuditEvent"})
FINANCIAL_TYPES = frozenset(
    {
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "Claim",
        "ClaimResponse",
        "ExplanationOfBenefit",
        "Account",
        "Invoice",
        "PaymentNotice",
        "PaymentReconciliation",
    }
)
INSURER_PAYOR_TYPES = frozenset(
    {"Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse"}
)
INSURER_STATUS_TYPES = frozenset({"ServiceRequest", "Task", "DiagnosticReport"})
# Written by the server (the case engine) only, once a party is bound; see the module docstring.
TASK_SERVER_MANAGED = (
    "case Tasks are moved by the server: use $cancel, $decline, $reassign, $add-expert, "
    "a Communication or a report"
)
PROVENANCE_SERVER_MANAGED = "Provenance is written by the server for case records"
# Appointment: an expert answers (accepts, declines) a consultation it takes part in.
SPECIALIST_WRITABLE = frozenset(
    {"DiagnosticReport", "Communication", "Observation", "DocumentReference", "Appointment"}
)
# Who may write a coordination Task (the engine decides what each may change in it).
COORDINATION_WRITERS = frozenset({"clinic", "coordinator"})
# The coordination services an insurer sees of its members (status view, like the case).
INSURER_COORDINATION = frozenset({"fee-negotiation"})
# What a coordinator may write on a member's call: the clinical submission of a case, and the
# Appointments it books for coordination services (a video consultation with the expert).
COORDINATOR_WRITABLE = frozenset(
    {
        "Appointment",
        "Patient",
        "Coverage",
        "Condition",
        "Observation",
        "DiagnosticReport",
        "DocumentReference",
        "ServiceRequest",
        "Communication",
    }
)
# What an insurer may see of a case: workflow status, never clinical content.
INSURER_VIEW: dict[str, frozenset[str]] = {
    "ServiceRequest": frozenset(
        {
            "resourceType",
            "id",
            "meta",
            "identifier",
            "status",
            "intent",
            "subject",
            "insurance",
            "authoredOn",
            "requester",
            "performer",
            "occurrencePeriod",
            "occurrenceDateTime",
            "code",  # "Consultation": the kind of service, not a finding
        }
    ),
    "Task": frozenset(
        {
            "resourceType",
            "id",
            "meta",
            "identifier",
            "status",
            "statusReason",
            "businessStatus",
            "intent",
            "code",
            "focus",
            "basedOn",
            "for",
            "owner",
            "authoredOn",
            "lastModified",
            "executionPeriod",
            "restriction",
            "requester",
        }
    ),
    "DiagnosticReport": frozenset(
        {
            "resourceType",
            "id",
            "meta",
            "identifier",
            "status",
            "issued",
            "code",  # the report type (consult note), not its content
            "performer",
            "basedOn",
            "subject",
            "effectiveDateTime",
            "effectivePeriod",
        }
    ),
}
REDACTED_TAG = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted",
}
READ_OPS = frozenset("rs")


class Facts(Protocol):
    """Database lookups the policy needs; the server implements them over the resource store."""

    def patient_orgs(self, patients: set[str]) -> dict[str, set[str]]: ...

    def practitioner_roles_of(self, organization: str) -> set[str]: ...

    def assigned_cases(self, roles: set[str]) -> tuple[set[str], set[str]]:
        """(patient ids, ServiceRequest ids) of Tasks owned by ``roles``."""
        ...

    def insured_members(self, organization: str) -> set[str]: ...

    def known_param(self, resource_type: str, code: str) -> bool: ...

    def matches(self, resource_type: str, resource: dict[str, Any], code: str, value: str) -> bool:
        """Whether ``resource`` satisfies the search ``code=value`` (scope query restrictions)."""
        ...


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str
    reason: str = ""
    # False: refused for want of a fact only the resource gives (a coordination Task); the
    # HTTP edge then leaves the decision to the write check, which has the resource.
    final: bool = True

    def __bool__(self) -> bool:
        return self.allowed


def _and(*parts: Filter) -> Filter:
    real = [p for p in parts if p]
    if not real:
        return {}
    return real[0] if len(real) == 1 else {"$and": real}


class Policy:
    def __init__(self, facts: Facts, compartment_types: Callable[[], frozenset[str]]) -> None:
        self.facts = facts
        self._compartment = compartment_types

    # ------------------------------------------------------------------------- derived facts
    def specialist_roles(self, p: Principal) -> set[str]:
        def compute() -> set[str]:
            roles: set[str] = set()
            if p.practitioner_role:
                roles.add(p.practitioner_role)
            if p.user and p.user.startswith("PractitionerRole/"):
                roles.add(p.user.split("/", 1)[1])
            if not roles and p.organization:
                roles = self.facts.practitioner_roles_of(p.organization)
            return roles

        roles: set[str] = self._cached(p, "roles", compute)
        return roles

    def assigned(self, p: Principal) -> tuple[set[str], set[str]]:
        found: tuple[set[str], set[str]] = self._cached(
            p, "assigned", lambda: self.facts.assigned_cases(self.specialist_roles(p))
        )
        return found

    def members(self, p: Principal) -> set[str]:
        org = p.organization or ""
        members: set[str] = self._cached(p, "members", lambda: self.facts.insured_members(org))
        return members

    @staticmethod
    def _cached(p: Principal, key: str, compute: Callable[[], Any]) -> Any:
        if key not in p.cache:
            p.cache[key] = compute()
        return p.cache[key]

    # ------------------------------------------------------------------------------- coarse
    def decide(
        self,
        p: Principal | None,
        interaction: str,
        resource_type: str,
        service: str | None = None,
    ) -> Verdict:
        """First matching rule wins; the last rule denies. ``service``: the coordination
        service of the Task being written (``auth.acl.coordination_service``), None otherwise."""
        if p is None:
            return Verdict(True, "auth-off")
        if p.admin:
            return Verdict(True, "admin")
        op = ops_for(interaction)
        perms = [q for q in p.permissions if q.grants(op, resource_type)]
        if not perms:
            return Verdict(False, "scope", f"no scope grants {op!r} on {resource_type}")
        if resource_type in ADMIN_TYPES and (p.organization or op not in READ_OPS):
            return Verdict(False, "admin-only", f"{resource_type} is for administrators")
        write = op not in READ_OPS
        if p.role is not None:
            if resource_type in DIRECTORY_TYPES:
                if write:
                    return Verdict(False, "directory-read-only", "network data is read-only")
                return Verdict(True, "directory")
            if resource_type == "Subscription":
                return Verdict(True, "party-own-subscription")
            coordination = resource_type == "Task" and p.role in COORDINATION_WRITERS and op != "d"
            if write and resource_type == "Task" and not (coordination and service):
                return Verdict(
                    False, "task-server-managed", TASK_SERVER_MANAGED, final=not coordination
                )
            if write and resource_type == "Provenance":
                return Verdict(False, "provenance-server-managed", PROVENANCE_SERVER_MANAGED)
            if (
                p.role == "coordinator"
                and write
                and resource_type not in COORDINATOR_WRITABLE
                and not (coordination and service)
            ):
                return Verdict(
                    False, "coordinator-read-only", f"coordinators cannot write {resource_type}"
                )
            if p.role == "insurer":
                if resource_type in INSURER_PAYOR_TYPES:
                    return Verdict(True, "insurer-payor")
                if resource_type in INSURER_STATUS_TYPES and not write:
                    return Verdict(True, "insurer-status")
                return Verdict(
                    False, "insurer-no-clinical", f"insurers cannot access {resource_type}"
                )
            if p.role == "specialist":
                if resource_type in FINANCIAL_TYPES:
                    return Verdict(False, "specialist-no-financial", "specialists see no coverage")
                if write and resource_type not in SPECIALIST_WRITABLE:
                    return Verdict(
                        False, "specialist-read-only", f"specialists cannot write {resource_type}"
                    )
        if all(q.context == "patient" for q in perms) and not self._patient_reachable(
            p, resource_type
        ):
            return Verdict(
                False, "patient-context", f"{resource_type} is outside the patient compartment"
            )
        return Verdict(True, "scope")

    def _patient_reachable(self, p: Principal, resource_type: str) -> bool:
        if p.patient is None:
            return False
        return resource_type in self._compartment() or resource_type in DIRECTORY_TYPES

    # ----------------------------------------------------------------------------- narrowing
    def access_filter(self, p: Principal | None, resource_type: str) -> Filter:
        if p is None or p.admin:
            return {}
        if not self.decide(p, "read", resource_type) and not self.decide(
            p, "search-type", resource_type
        ):
            return DENY_ALL
        scope_part = self._scope_filter(p, resource_type)
        if scope_part is None:
            return DENY_ALL
        party = self._party_filter(p, resource_type)
        if party is None:
            return DENY_ALL
        return _and(scope_part, party)

    def _scope_filter(self, p: Principal, resource_type: str) -> Filter | None:
        clauses: list[Filter] = []
        for perm in p.permissions:
            if not perm.covers(resource_type) or not (perm.ops & READ_OPS):
                continue
            clause = self._permission_filter(p, perm, resource_type)
            if clause is None:
                continue
            if not clause:
                return {}
            clauses.append(clause)
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$or": clauses}

    def _permission_filter(
        self, p: Principal, perm: Permission, resource_type: str
    ) -> Filter | None:
        parts: list[Filter] = []
        if perm.context == "patient":
            if not self._patient_reachable(p, resource_type):
                return None
            if resource_type not in DIRECTORY_TYPES:
                parts.append({"acl.patients": p.patient})
        for code, value in perm.restriction:
            if not self.facts.known_param(resource_type, code):
                return None  # a restriction we cannot enforce grants nothing
            values = [v for v in value.split(",") if v]
            parts.append({f"idx.{code}": {"$in": values}})
        return _and(*parts)

    def _party_filter(self, p: Principal, resource_type: str) -> Filter | None:
        if p.role is None:
            return {}
        if resource_type == "Subscription":
            own: Filter = {"acl.subscriber": principal_party(p)}
            if p.role != "clinic":
                return own
            # Stored before subscriptions had an owner fact: a clinic's were its own (acl.orgs).
            legacy = {"acl.subscriber": {"$exists": False}, "acl.orgs": p.organization}
            return {"$or": [own, legacy]}
        if resource_type in DIRECTORY_TYPES or p.role == "coordinator":
            return {}
        if p.role == "clinic":
            return {"acl.orgs": p.organization}
        if p.role == "specialist":
            patients, requests = self.assigned(p)
            if resource_type == "Task":
                own = {"acl.owners": {"$in": sorted(self.specialist_roles(p))}}
                if not requests:
                    return own
                coordination = {
                    "acl.service": {"$exists": True},
                    "acl.requests": {"$in": sorted(requests)},
                }
                return {"$or": [own, coordination]}
            if resource_type == "ServiceRequest":
                return {"_id": {"$in": sorted(requests)}}
            return {"acl.patients": {"$in": sorted(patients)}}
        if p.role == "insurer":
            if resource_type in INSURER_PAYOR_TYPES:
                return {"acl.payors": p.organization}
            if resource_type in INSURER_STATUS_TYPES:
                members = {"acl.patients": {"$in": sorted(self.members(p))}}
                if resource_type == "DiagnosticReport":  # case reports only, not investigations
                    return {**members, "acl.requests.0": {"$exists": True}}
                if resource_type == "Task":  # the case, and only fee negotiation of its services
                    services = sorted(INSURER_COORDINATION)
                    return {
                        **members,
                        "$or": [
                            {"acl.service": {"$exists": False}},
                            {"acl.service": {"$in": services}},
                        ],
                    }
                return members
        return None

    # -------------------------------------------------------------------- per-resource reads
    def can_read(
        self,
        p: Principal | None,
        resource_type: str,
        resource: dict[str, Any],
        acl: dict[str, Any] | None = None,
    ) -> bool:
        return bool(self.check_read(p, resource_type, resource, acl))

    def check_read(
        self,
        p: Principal | None,
        resource_type: str,
        resource: dict[str, Any],
        acl: dict[str, Any] | None = None,
    ) -> Verdict:
        if p is None or p.admin:
            return Verdict(True, "admin" if p else "auth-off")
        coarse: Verdict = self._cached(
            p, f"read-verdict:{resource_type}", lambda: self._read_verdict(p, resource_type)
        )
        if not coarse:
            return coarse
        facts = acl if acl is not None else self.acl_of(p, resource_type, resource)
        if not any(
            perm.covers(resource_type)
            and perm.ops & READ_OPS
            and self._permission_allows(p, perm, resource_type, resource, facts)
            for perm in p.permissions
        ):
            return Verdict(False, "scope-restriction", "outside the token's scopes or patient")
        return self._party_allows(p, resource_type, resource, facts)

    def _read_verdict(self, p: Principal, resource_type: str) -> Verdict:
        """May ``p`` read ``resource_type`` at all (``decide`` is pure in the principal and the
        type, so ``check_read`` asks once per request and type, not once per resource)."""
        coarse = self.decide(p, "read", resource_type)
        return coarse if coarse else self.decide(p, "search-type", resource_type)

    def acl_of(
        self, p: Principal | None, resource_type: str, resource: dict[str, Any]
    ) -> dict[str, Any]:
        """Facts for a resource whose stored ``acl`` the caller does not have. Who wrote it is
        unknown here, so the writer-derived ``attested`` is left out rather than guessed."""
        acl = compute_acl(
            resource_type,
            str(resource.get("id", "")),
            resource,
            None,
            None,
            self.facts.patient_orgs,
        )
        acl.pop("attested", None)
        return acl

    def _permission_allows(
        self,
        p: Principal,
        perm: Permission,
        resource_type: str,
        resource: dict[str, Any],
        acl: dict[str, Any],
    ) -> bool:
        if perm.context == "patient":
            if not self._patient_reachable(p, resource_type):
                return False
            if resource_type not in DIRECTORY_TYPES and p.patient not in acl.get("patients", []):
                return False
        for code, value in perm.restriction:
            if not self.facts.known_param(resource_type, code):
                return False
            if not any(
                self.facts.matches(resource_type, resource, code, v) for v in value.split(",") if v
            ):
                return False
        return True

    def _party_allows(
        self, p: Principal, resource_type: str, resource: dict[str, Any], acl: dict[str, Any]
    ) -> Verdict:
        if p.role is None:
            return Verdict(True, "trusted-integration")
        if resource_type == "Subscription":
            return self._own_subscription(p, acl)
        if resource_type in DIRECTORY_TYPES:
            return Verdict(True, "directory")
        if p.role == "coordinator":
            return Verdict(True, "coordinator-network")
        if p.role == "clinic":
            ok = p.organization in acl.get("orgs", [])
            return Verdict(
                ok, "clinic-own-cases", "" if ok else "submitted by another organization"
            )
        if p.role == "specialist":
            patients, requests = self.assigned(p)
            if resource_type == "Task":
                ok = bool(set(acl.get("owners", [])) & self.specialist_roles(p)) or bool(
                    acl.get("service") and set(acl.get("requests", [])) & requests
                )
            elif resource_type == "ServiceRequest":
                ok = str(resource.get("id")) in requests
            else:
                ok = bool(set(acl.get("patients", [])) & patients)
            return Verdict(ok, "specialist-assigned", "" if ok else "case not assigned to you")
        if p.role == "insurer":
            if resource_type in INSURER_PAYOR_TYPES:
                ok = p.organization in acl.get("payors", [])
                return Verdict(ok, "insurer-payor", "" if ok else "another insurer's coverage")
            if resource_type in INSURER_STATUS_TYPES:
                ok = bool(set(acl.get("patients", [])) & self.members(p))
                if resource_type == "DiagnosticReport" and not acl.get("requests"):
                    ok = False  # an investigation, not the second-opinion report
                service = acl.get("service") if resource_type == "Task" else None
                if service is not None and service not in INSURER_COORDINATION:
                    ok = False  # the member's travel and lodging are not the insurer's
                return Verdict(ok, "insurer-members", "" if ok else "not your member's case")
        return Verdict(False, "default-deny")

    @staticmethod
    def _own_subscription(p: Principal, acl: dict[str, Any]) -> Verdict:
        if "subscriber" in acl:
            ok = acl["subscriber"] == principal_party(p)
        else:  # stored before the owner fact (see _party_filter)
            ok = p.role == "clinic" and p.organization in acl.get("orgs", [])
        return Verdict(ok, "party-own-subscription", "" if ok else "another party's subscription")

    def redact(
        self, p: Principal | None, resource_type: str, resource: dict[str, Any]
    ) -> dict[str, Any]:
        """The view of an outgoing resource this principal gets (insurers: status only)."""
        if p is None or p.role != "insurer" or resource_type not in INSURER_VIEW:
            return resource
        keep = INSURER_VIEW[resource_type]
        out = {k: v for k, v in resource.items() if k in keep}
        meta = dict(out.get("meta") or {})
        meta["security"] = [*meta.get("security", []), REDACTED_TAG]
        out["meta"] = meta
        return out

    # ------------------------------------------------------------------------------- writes
    @staticmethod
    def _written_service(
        resource: dict[str, Any] | None,
        previous: dict[str, Any] | None,
        old_acl: dict[str, Any] | None,
    ) -> str | None:
        """The coordination service of a Task write: the new version must be one, and so must
        what it replaces (a case Task never becomes a coordination Task, nor the reverse)."""
        if resource is None:
            return None
        service = coordination_service(resource)
        if service is None:
            return None
        if previous is not None and coordination_service(previous) is None:
            return None
        if old_acl is not None and old_acl.get("owners") is not None and "service" not in old_acl:
            return None
        return service

    def check_write(
        self,
        p: Principal | None,
        interaction: str,
        resource_type: str,
        resource: dict[str, Any] | None,
        new_acl: dict[str, Any],
        old_acl: dict[str, Any] | None,
        previous: dict[str, Any] | None,
        patient_orgs: Callable[[set[str]], dict[str, set[str]]] | None = None,
    ) -> Verdict:
        """``old_acl`` is the stored facts of the id being written, even a deleted one (so a
        deleted id of another party cannot be taken over); ``patient_orgs`` may be a lookup
        bound to the write's transaction."""
        if p is None or p.admin:
            return Verdict(True, "admin" if p else "auth-off")
        service = (
            self._written_service(resource, previous, old_acl) if resource_type == "Task" else None
        )
        coarse = self.decide(p, interaction, resource_type, service)
        if not coarse:
            return coarse
        op = ops_for(interaction)
        perms = [q for q in p.permissions if q.grants(op, resource_type)]
        target = resource if resource is not None else previous or {}
        acls = [a for a in (new_acl if resource is not None else None, old_acl) if a is not None]
        if not any(
            all(self._permission_allows(p, q, resource_type, target, a) for a in acls)
            for q in perms
        ):
            return Verdict(False, "scope-restriction", "outside the token's scopes or patient")
        if p.role is None:
            return Verdict(True, "trusted-integration")
        if old_acl is not None:
            before = self._party_allows(p, resource_type, previous or {"id": ""}, old_acl)
            if not before:
                return before
        if resource is None:
            return Verdict(True, "party-owner")
        if resource_type == "Subscription":  # the owner is always the writer (auth.acl)
            return self._own_subscription(p, new_acl)
        if p.role == "clinic":
            patients = set(new_acl.get("patients", []))
            if resource_type == "Patient":
                patients.discard(str(resource.get("id")))
            lookup = patient_orgs or self.facts.patient_orgs
            owners = lookup(patients) if patients else {}
            if any(p.organization not in owners.get(pid, set()) for pid in patients):
                return Verdict(
                    False, "clinic-own-patients", "references another organization's patient"
                )
            return Verdict(True, "clinic-own-patients")
        if p.role == "coordinator":
            return Verdict(True, "coordinator-on-behalf")
        if p.role == "specialist":
            patients = set(new_acl.get("patients", []))
            assigned, _ = self.assigned(p)
            ok = bool(patients) and patients <= assigned
            return Verdict(ok, "specialist-assigned", "" if ok else "not an assigned case")
        if p.role == "insurer":
            ok = p.organization in new_acl.get("payors", [])
            return Verdict(ok, "insurer-payor", "" if ok else "payor must be your organization")
        return Verdict(False, "default-deny")
