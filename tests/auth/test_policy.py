"""The policy as pure decisions: rule tables over principals, types and stored facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from auth.acl import compute_acl
from auth.policy import COORDINATOR_WRITABLE, DENY_ALL, DIRECTORY_TYPES, TASK_SERVER_MANAGED, Policy
from auth.principal import Principal


@dataclass
class Facts:
    """Plain data standing in for the store's answers (the policy's only inputs)."""

    owners: dict[str, set[str]] = field(default_factory=dict)
    roles: dict[str, set[str]] = field(default_factory=dict)
    cases: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)

    def patient_orgs(self, patients: set[str]) -> dict[str, set[str]]:
        return {p: self.owners.get(p, set()) for p in patients}

    def practitioner_roles_of(self, organization: str) -> set[str]:
        return self.roles.get(organization, set())

    def assigned_cases(self, roles: set[str]) -> tuple[set[str], set[str]]:
        patients: set[str] = set()
        requests: set[str] = set()
        for r in roles:
            p, q = self.cases.get(r, (set(), set()))
            patients |= p
            requests |= q
        return patients, requests

    def insured_members(self, organization: str) -> set[str]:
        return self.members.get(organization, set())

    def known_param(self, resource_type: str, code: str) -> bool:
        return code in ("category", "code")

    def matches(self, resource_type: str, resource: dict[str, Any], code: str, value: str) -> bool:
        return value in resource.get("_test_values", {}).get(code, [])


FACTS = Facts(
    owners={"pa": {"clinic-a"}, "pb": {"clinic-b"}},
    roles={"net": {"e1", "e2"}},
    cases={"e1": ({"pa"}, {"sr-a"}), "e2": ({"pb"}, {"sr-b"})},
    members={"ins-x": {"pa"}},
)
POLICY = Policy(FACTS, lambda: frozenset({"Patient", "Observation", "Condition", "Task"}))


def who(scopes: str, **kw: Any) -> Principal:
    return Principal.build("c", tuple(scopes.split()), **kw)


CLINIC_A = {"organization": "clinic-a", "role": "clinic"}
INSURER_X = {"organization": "ins-x", "role": "insurer"}
EXPERT_1 = {"organization": "net", "role": "specialist", "practitioner_role": "e1"}
COORD = {"organization": "net", "role": "coordinator"}
BOUND = {"clinic": CLINIC_A, "insurer": INSURER_X, "specialist": EXPERT_1, "coordinator": COORD}
WRITES = ("create", "update", "patch", "delete")


@pytest.mark.parametrize(
    ("scopes", "binding", "interaction", "rtype", "rule", "allowed"),
    [
        ("system/*.rs", {}, "read", "Condition", "scope", True),
        ("system/Patient.rs", {}, "read", "Condition", "scope", False),
        ("system/*.rs", {}, "read", "AuditEvent", "scope", True),
        ("system/*.cruds", {}, "create", "AuditEvent", "admin-only", False),
        ("system/*.rs", CLINIC_A, "read", "AuditEvent", "admin-only", False),
        ("system/*.cruds", CLINIC_A, "create", "Organization", "directory-read-only", False),
        ("system/*.rs", CLINIC_A, "read", "Organization", "directory", True),
        ("system/*.rs", INSURER_X, "read", "Condition", "insurer-no-clinical", False),
        ("system/*.rs", INSURER_X, "read", "Coverage", "insurer-payor", True),
        ("system/*.cruds", INSURER_X, "update", "Task", "task-server-managed", False),
        ("system/*.cruds", INSURER_X, "create", "Condition", "insurer-no-clinical", False),
        ("system/*.rs", INSURER_X, "search-type", "Task", "insurer-status", True),
        ("system/*.rs", EXPERT_1, "read", "Coverage", "specialist-no-financial", False),
        ("system/*.cruds", EXPERT_1, "create", "Task", "task-server-managed", False),
        ("system/*.cruds", EXPERT_1, "create", "ServiceRequest", "specialist-read-only", False),
        ("system/*.cruds", EXPERT_1, "create", "Patient", "specialist-read-only", False),
        ("patient/*.rs", {}, "read", "Observation", "patient-context", False),  # no patient
        ("patient/*.rs", {"patient": "pa"}, "read", "Observation", "scope", True),
        ("patient/*.rs", {"patient": "pa"}, "read", "Coverage", "patient-context", False),
        ("patient/*.rs", {"patient": "pa"}, "read", "Organization", "scope", True),
    ],
)
def test_decide_rules(
    scopes: str, binding: dict[str, Any], interaction: str, rtype: str, rule: str, allowed: bool
) -> None:
    verdict = POLICY.decide(who(scopes, **binding), interaction, rtype)
    assert (verdict.rule, verdict.allowed) == (rule, allowed)


@pytest.mark.parametrize(
    ("scopes", "binding", "rtype", "expected"),
    [
        ("system/*.rs", {}, "Observation", {}),
        ("system/*.rs", CLINIC_A, "Observation", {"acl.orgs": "clinic-a"}),
        ("system/*.rs", CLINIC_A, "Organization", {}),
        ("system/*.rs", INSURER_X, "Coverage", {"acl.payors": "ins-x"}),
        (  # the member's cases, and of their coordination services only fee negotiation
            "system/*.rs",
            INSURER_X,
            "Task",
            {
                "acl.patients": {"$in": ["pa"]},
                "$or": [
                    {"acl.service": {"$exists": False}},
                    {"acl.service": {"$in": ["fee-negotiation"]}},
                ],
            },
        ),
        ("system/*.rs", INSURER_X, "Condition", DENY_ALL),
        (  # its own Tasks, and the coordination Tasks of the cases assigned to it
            "system/*.rs",
            EXPERT_1,
            "Task",
            {
                "$or": [
                    {"acl.owners": {"$in": ["e1"]}},
                    {"acl.service": {"$exists": True}, "acl.requests": {"$in": ["sr-a"]}},
                ]
            },
        ),
        ("system/*.rs", EXPERT_1, "ServiceRequest", {"_id": {"$in": ["sr-a"]}}),
        ("system/*.rs", EXPERT_1, "Condition", {"acl.patients": {"$in": ["pa"]}}),
        ("system/Patient.rs", {}, "Observation", DENY_ALL),
        ("patient/*.rs", {"patient": "pa"}, "Observation", {"acl.patients": "pa"}),
        (
            "system/Observation.rs?category=laboratory",
            {},
            "Observation",
            {"idx.category": {"$in": ["laboratory"]}},
        ),
        ("system/Observation.rs?bogus=1", {}, "Observation", DENY_ALL),
        (
            "system/Observation.rs?category=laboratory system/Observation.rs",
            {},
            "Observation",
            {},
        ),
        (
            "patient/Observation.rs?category=laboratory",
            {"patient": "pa", **CLINIC_A},
            "Observation",
            {
                "$and": [
                    {"$and": [{"acl.patients": "pa"}, {"idx.category": {"$in": ["laboratory"]}}]},
                    {"acl.orgs": "clinic-a"},
                ]
            },
        ),
    ],
)
def test_access_filter_table(
    scopes: str, binding: dict[str, Any], rtype: str, expected: dict[str, Any]
) -> None:
    assert POLICY.access_filter(who(scopes, **binding), rtype) == expected


def test_network_specialist_without_own_role_sees_the_networks_cases() -> None:
    p = who("system/*.rs", organization="net", role="specialist")
    found = POLICY.access_filter(p, "Task")["$or"]  # [own Tasks, coordination of those cases]
    assert found[0] == {"acl.owners": {"$in": ["e1", "e2"]}}


@pytest.mark.parametrize(
    ("binding", "rtype", "acl", "resource", "allowed"),
    [
        (CLINIC_A, "Observation", {"orgs": ["clinic-a"]}, {}, True),
        (CLINIC_A, "Observation", {"orgs": ["clinic-b"]}, {}, False),
        (INSURER_X, "Coverage", {"payors": ["ins-y"]}, {}, False),
        (INSURER_X, "Task", {"patients": ["pa"]}, {}, True),
        (INSURER_X, "Task", {"patients": ["pb"]}, {}, False),
        (EXPERT_1, "Task", {"owners": ["e2"]}, {}, False),
        (EXPERT_1, "ServiceRequest", {}, {"id": "sr-a"}, True),
        (EXPERT_1, "ServiceRequest", {}, {"id": "sr-b"}, False),
    ],
)
def test_can_read_checks_the_stored_facts(
    binding: dict[str, Any],
    rtype: str,
    acl: dict[str, Any],
    resource: dict[str, Any],
    allowed: bool,
) -> None:
    assert POLICY.can_read(who("system/*.rs", **binding), rtype, resource, acl) is allowed


def test_restriction_is_checked_on_outgoing_resources() -> None:
    p = who("system/Observation.rs?category=laboratory")
    lab = {"_test_values": {"category": ["laboratory"]}}
    vital = {"_test_values": {"category": ["vital-signs"]}}
    assert POLICY.can_read(p, "Observation", lab, {})
    assert not POLICY.can_read(p, "Observation", vital, {})


def test_insurer_view_is_redacted_and_tagged() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "d", "status": "final", "conclusion": "x"}
    out = POLICY.redact(who("system/*.rs", **INSURER_X), "DiagnosticReport", report)
    assert "conclusion" not in out and out["meta"]["security"][0]["code"] == "REDACTED"
    assert POLICY.redact(who("system/*.rs", **CLINIC_A), "DiagnosticReport", report) is report


@pytest.mark.parametrize(
    ("binding", "interaction", "rtype", "new_acl", "old_acl", "rule", "allowed"),
    [
        (
            CLINIC_A,
            "create",
            "Observation",
            {"patients": ["pa"]},
            None,
            "clinic-own-patients",
            True,
        ),
        (
            CLINIC_A,
            "create",
            "Observation",
            {"patients": ["pb"]},
            None,
            "clinic-own-patients",
            False,
        ),
        (
            CLINIC_A,
            "update",
            "Observation",
            {"patients": ["pa"]},
            {"orgs": ["clinic-b"]},
            "clinic-own-cases",
            False,
        ),
        (INSURER_X, "create", "Coverage", {"payors": ["ins-y"]}, None, "insurer-payor", False),
        (INSURER_X, "create", "Coverage", {"payors": ["ins-x"]}, None, "insurer-payor", True),
        (  # a specialist cannot move (here: reassign) a Task, not even its own
            EXPERT_1,
            "update",
            "Task",
            {"owners": ["e2"]},
            {"owners": ["e1"]},
            "task-server-managed",
            False,
        ),
        (
            EXPERT_1,
            "create",
            "DiagnosticReport",
            {"patients": ["pb"]},
            None,
            "specialist-assigned",
            False,
        ),
        (
            EXPERT_1,
            "create",
            "DiagnosticReport",
            {"patients": ["pa"]},
            None,
            "specialist-assigned",
            True,
        ),
    ],
)
def test_check_write_rules(
    binding: dict[str, Any],
    interaction: str,
    rtype: str,
    new_acl: dict[str, Any],
    old_acl: dict[str, Any] | None,
    rule: str,
    allowed: bool,
) -> None:
    p = who("system/*.cruds", **binding)
    previous = {"id": "x"} if old_acl is not None else None
    verdict = POLICY.check_write(p, interaction, rtype, {"id": "x"}, new_acl, old_acl, previous)
    assert (verdict.rule, verdict.allowed) == (rule, allowed)


# ------------------------------------------------------------------------------ coordinator
READ_TYPES = sorted(
    {"Patient", "Coverage", "Condition", "Observation", "ServiceRequest", "Task", "Provenance"}
    | {"DiagnosticReport", "DocumentReference", "Communication", "Claim", "Organization"}
)


@pytest.mark.parametrize("rtype", READ_TYPES)
@pytest.mark.parametrize("interaction", ["read", "search-type"])
def test_coordinator_reads_every_case_type(interaction: str, rtype: str) -> None:
    p = who("user/*.cruds", **COORD)
    assert POLICY.decide(p, interaction, rtype).allowed
    assert POLICY.access_filter(p, rtype) == {}


@pytest.mark.parametrize("rtype", READ_TYPES)
def test_coordinator_reads_every_clinics_resource(rtype: str) -> None:
    acl = {"orgs": ["clinic-b"], "patients": ["pb"], "owners": ["e2"], "payors": ["ins-y"]}
    assert POLICY.can_read(who("user/*.rs", **COORD), rtype, {"id": "x"}, acl)


def test_coordinator_does_not_read_audit_events() -> None:
    p = who("user/*.cruds", **COORD)
    assert POLICY.decide(p, "read", "AuditEvent").rule == "admin-only"
    assert POLICY.access_filter(p, "AuditEvent") == DENY_ALL


@pytest.mark.parametrize("rtype", sorted(COORDINATOR_WRITABLE))
@pytest.mark.parametrize("interaction", ["create", "update", "patch"])
def test_coordinator_writes_the_submission_of_any_clinic(interaction: str, rtype: str) -> None:
    p = who("user/*.cruds", **COORD)
    old = {"orgs": ["clinic-b"], "patients": ["pb"]} if interaction != "create" else None
    new = {"orgs": ["clinic-b"], "patients": ["pb"], "payors": ["ins-y"]}
    verdict = POLICY.check_write(p, interaction, rtype, {"id": "x"}, new, old, old and {"id": "x"})
    assert (verdict.rule, verdict.allowed) == ("coordinator-on-behalf", True)


@pytest.mark.parametrize(
    ("rtype", "rule"),
    [
        ("Task", "task-server-managed"),
        ("Provenance", "provenance-server-managed"),
        ("Organization", "directory-read-only"),
        ("PractitionerRole", "directory-read-only"),
        ("Claim", "coordinator-read-only"),
        ("CoverageEligibilityResponse", "coordinator-read-only"),
        ("AuditEvent", "admin-only"),
    ],
)
def test_coordinator_cannot_write_outside_the_submission(rtype: str, rule: str) -> None:
    verdict = POLICY.decide(who("user/*.cruds", **COORD), "create", rtype)
    assert (verdict.rule, verdict.allowed) == (rule, False)


# ------------------------------------------------------------------ server-managed records
@pytest.mark.parametrize("interaction", WRITES)
@pytest.mark.parametrize("party", sorted(BOUND))
def test_no_bound_party_writes_a_task(party: str, interaction: str) -> None:
    verdict = POLICY.decide(who("system/*.cruds", **BOUND[party]), interaction, "Task")
    assert (verdict.rule, verdict.allowed) == ("task-server-managed", False)
    assert verdict.reason == TASK_SERVER_MANAGED and "$reassign" in verdict.reason


@pytest.mark.parametrize("interaction", WRITES)
@pytest.mark.parametrize("party", sorted(BOUND))
def test_no_bound_party_writes_a_provenance(party: str, interaction: str) -> None:
    verdict = POLICY.decide(who("system/*.cruds", **BOUND[party]), interaction, "Provenance")
    assert (verdict.rule, verdict.allowed) == ("provenance-server-managed", False)


@pytest.mark.parametrize("rtype", ["Task", "Provenance"])
@pytest.mark.parametrize("interaction", WRITES)
def test_trusted_integrations_and_admins_still_write_case_records(
    interaction: str, rtype: str
) -> None:
    trusted = who("system/*.cruds")
    admin = who("system/*.cruds", admin=True)
    acl = {"owners": ["e1"], "patients": ["pa"]}
    assert POLICY.check_write(trusted, interaction, rtype, {"id": "t"}, acl, None, None)
    assert POLICY.check_write(admin, interaction, rtype, {"id": "t"}, acl, None, None)


@pytest.mark.parametrize(
    ("binding", "acl", "allowed"),
    [
        (CLINIC_A, {"orgs": ["clinic-a"], "patients": ["pa"]}, True),
        (CLINIC_A, {"orgs": ["clinic-b"], "patients": ["pb"]}, False),
        (EXPERT_1, {"orgs": ["clinic-a"], "patients": ["pa"]}, True),
        (EXPERT_1, {"orgs": ["clinic-b"], "patients": ["pb"]}, False),
        (COORD, {"orgs": ["clinic-b"], "patients": ["pb"]}, True),
        (INSURER_X, {"orgs": ["clinic-a"], "patients": ["pa"]}, False),  # a member's, still none
    ],
)
def test_provenance_is_read_by_the_parties_of_the_case(
    binding: dict[str, Any], acl: dict[str, Any], allowed: bool
) -> None:
    assert POLICY.can_read(who("system/*.rs", **binding), "Provenance", {"id": "p"}, acl) is allowed


def test_insurers_cannot_even_search_provenance() -> None:
    p = who("system/*.rs", **INSURER_X)
    assert POLICY.decide(p, "search-type", "Provenance").rule == "insurer-no-clinical"
    assert POLICY.access_filter(p, "Provenance") == DENY_ALL


def test_directory_stays_read_only_for_every_bound_party() -> None:
    for binding in BOUND.values():
        p = who("system/*.cruds", **binding)
        for rtype in DIRECTORY_TYPES:
            assert POLICY.decide(p, "update", rtype).rule == "directory-read-only"
            assert POLICY.decide(p, "read", rtype).allowed


# ------------------------------------------------------------------------ board sub-Tasks
class TaskFacts(Facts):
    """Assigned cases derived from stored Task acls, as the server's ``StoreFacts`` does."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        super().__init__(owners={"pa": {"clinic-a"}, "pb": {"clinic-b"}})
        self.task_acls = [
            compute_acl("Task", t["id"], t, None, None, self.patient_orgs) for t in tasks
        ]

    def assigned_cases(self, roles: set[str]) -> tuple[set[str], set[str]]:
        patients: set[str] = set()
        requests: set[str] = set()
        for acl in self.task_acls:
            if set(acl["owners"]) & roles:
                patients.update(acl["patients"])
                requests.update(acl["requests"])
        return patients, requests


def _task(tid: str, owner: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": tid,
        "for": {"reference": "Patient/pa"},
        "owner": {"reference": f"PractitionerRole/{owner}"},
        **extra,
    }


BOARD = [
    _task("case", "e1", focus={"reference": "ServiceRequest/sr-a"}),
    _task(
        "board-e2",
        "e2",
        partOf=[{"reference": "Task/case"}],
        basedOn=[{"reference": "ServiceRequest/sr-a"}],
    ),
]


@pytest.mark.parametrize(
    ("rtype", "resource", "acl"),
    [
        ("ServiceRequest", {"id": "sr-a"}, {"patients": ["pa"]}),
        ("Patient", {"id": "pa"}, {"patients": ["pa"]}),
        ("Condition", {"id": "c"}, {"patients": ["pa"]}),
        ("DocumentReference", {"id": "d"}, {"patients": ["pa"]}),
    ],
)
def test_a_board_expert_reads_the_case_like_its_owner(
    rtype: str, resource: dict[str, Any], acl: dict[str, Any]
) -> None:
    policy = Policy(TaskFacts(BOARD), lambda: frozenset({"Patient"}))
    owner = who("system/*.rs", organization="net", role="specialist", practitioner_role="e1")
    board = who("system/*.rs", organization="net", role="specialist", practitioner_role="e2")
    outsider = who("system/*.rs", organization="net", role="specialist", practitioner_role="e3")
    assert policy.can_read(owner, rtype, resource, acl)
    assert policy.can_read(board, rtype, resource, acl)
    assert not policy.can_read(outsider, rtype, resource, acl)


def test_a_board_expert_sees_its_own_sub_task_not_the_case_task() -> None:
    facts = TaskFacts(BOARD)
    policy = Policy(facts, lambda: frozenset({"Patient"}))
    board = who("system/*.rs", organization="net", role="specialist", practitioner_role="e2")
    case_acl, sub_acl = facts.task_acls
    assert sub_acl["requests"] == ["sr-a"]  # basedOn counts like focus
    assert policy.can_read(board, "Task", {"id": "board-e2"}, sub_acl)
    assert not policy.can_read(board, "Task", {"id": "case"}, case_acl)
    assert policy.access_filter(board, "ServiceRequest") == {"_id": {"$in": ["sr-a"]}}
