"""Table-driven checks of the profile validator against our five profiles."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from profiles.conformance import (
    PROFILE_COORDINATION_TASK,
    PROFILE_COVERAGE,
    PROFILE_EXPERT,
    PROFILE_REPORT,
    PROFILE_REQUEST,
    PROFILE_TASK,
    conformance_resources,
    is_known_profile,
)
from profiles.validator import (
    UnknownProfile,
    ValidationIssue,
    conforms,
    errors,
    matches_pattern,
    reference_type,
    validate,
)

B = "https://consilium.health/fhir"
SCT = "http://snomed.info/sct"


def cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "status": "active",
    "intent": "order",
    "category": [cc(SCT, "3457005")],
    "code": cc(SCT, "11429006"),
    "subject": {"reference": "Patient/p1"},
    "requester": {"reference": "PractitionerRole/r1"},
    "performerType": cc(SCT, "394592004"),
    "reasonCode": [
        cc("http://terminology.hl7.org/CodeSystem/v2-0336", "S"),
        cc(f"{B}/CodeSystem/covered-serious-conditions", "cancer"),
    ],
    "reasonReference": [{"reference": "Condition/c1"}],
    "insurance": [{"reference": "Coverage/cov1"}],
    "supportingInfo": [{"reference": "DiagnosticReport/d1"}],
}
TASK: dict[str, Any] = {
    "resourceType": "Task",
    "status": "requested",
    "intent": "order",
    "businessStatus": cc(f"{B}/CodeSystem/case-business-status", "received"),
    "code": cc("http://hl7.org/fhir/CodeSystem/task-code", "fulfill"),
    "focus": {"reference": "ServiceRequest/s1"},
    "basedOn": [{"reference": "ServiceRequest/s1"}],
    "for": {"reference": "Patient/p1"},
}
REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport",
    "status": "final",
    "basedOn": [{"reference": "ServiceRequest/s1"}],
    "code": cc("http://loinc.org", "11488-4"),
    "subject": {"reference": "Patient/p1"},
    "performer": [{"reference": "PractitionerRole/e1"}],
    "conclusionCode": [cc(f"{B}/CodeSystem/second-opinion-outcome", "confirm-diagnosis")],
}
CLS = "http://terminology.hl7.org/CodeSystem/coverage-class"
COVERAGE: dict[str, Any] = {
    "resourceType": "Coverage",
    "status": "active",
    "identifier": [
        {"type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MB"), "value": "M-1"}
    ],
    "beneficiary": {"reference": "Patient/p1"},
    "period": {"start": "2026-01-01"},
    "payor": [{"reference": "Organization/ins"}],
    "class": [
        {"type": cc(CLS, "group"), "value": "G-1"},
        {"type": cc(CLS, "plan"), "value": "P-1"},
    ],
}
EXPERT: dict[str, Any] = {
    "resourceType": "PractitionerRole",
    "active": True,
    "practitioner": {"reference": "Practitioner/x"},
    "organization": {"reference": "Organization/net"},
    "specialty": [cc(SCT, "394579002")],
}
COORDINATION_TASK: dict[str, Any] = {
    "resourceType": "Task",
    "status": "requested",
    "intent": "order",
    "code": cc(f"{B}/CodeSystem/coordination-service", "hotel"),
    "partOf": [{"reference": "Task/case"}],
    "focus": {"reference": "ServiceRequest/sr"},
    "for": {"reference": "Patient/p"},
    "authoredOn": "2026-12-02T10:00:00Z",
    "requester": {"reference": "PractitionerRole/clinician"},
    "owner": {"reference": "Organization/network"},
}

VALID = {
    PROFILE_COORDINATION_TASK: COORDINATION_TASK,
    PROFILE_REQUEST: REQUEST,
    PROFILE_TASK: TASK,
    PROFILE_REPORT: REPORT,
    PROFILE_COVERAGE: COVERAGE,
    PROFILE_EXPERT: EXPERT,
}

Edit = Callable[[dict[str, Any]], None]


def drop(key: str) -> Edit:
    return lambda r: r.pop(key)


def put(key: str, value: Any) -> Edit:
    return lambda r: r.__setitem__(key, value)


# (profile, edit, expected error expression, diagnostics fragment)
BROKEN: list[tuple[str, Edit, str, str]] = [
    (PROFILE_REQUEST, put("intent", "plan"), "ServiceRequest.intent", "must be 'order'"),
    (PROFILE_REQUEST, put("status", "draft"), "ServiceRequest.status", "required value set"),
    (PROFILE_REQUEST, drop("code"), "ServiceRequest.code", "minimum cardinality 1"),
    (PROFILE_REQUEST, put("code", cc(SCT, "281036007")), "ServiceRequest.code", "pattern"),
    (
        PROFILE_REQUEST,
        put("category", [cc(SCT, "1234")]),
        "ServiceRequest.category",
        "category:referral",
    ),
    (PROFILE_REQUEST, drop("insurance"), "ServiceRequest.insurance", "minimum cardinality 1"),
    (PROFILE_REQUEST, drop("requester"), "ServiceRequest.requester", "minimum cardinality 1"),
    (PROFILE_REQUEST, drop("reasonReference"), "ServiceRequest.reasonReference", "minimum"),
    (
        PROFILE_REQUEST,
        put("reasonCode", [REQUEST["reasonCode"][1]]),
        "ServiceRequest.reasonCode",
        "reasonCode:secondOpinion",
    ),
    (
        PROFILE_REQUEST,
        put("subject", {"reference": "Group/g"}),
        "ServiceRequest.subject",
        "must reference Patient",
    ),
    (
        PROFILE_REQUEST,
        put("insurance", [{"reference": "ClaimResponse/x"}]),
        "ServiceRequest.insurance[0]",
        "must reference Coverage",
    ),
    (
        PROFILE_REQUEST,
        put("supportingInfo", [{"reference": "Patient/p1"}]),
        "ServiceRequest.supportingInfo[0]",
        "must reference",
    ),
    (PROFILE_TASK, drop("businessStatus"), "Task.businessStatus", "minimum cardinality 1"),
    (
        PROFILE_TASK,
        put("businessStatus", cc(f"{B}/CodeSystem/case-business-status", "rejected")),
        "Task.businessStatus",
        "required value set",
    ),
    (
        PROFILE_TASK,
        put("code", cc("http://hl7.org/fhir/CodeSystem/task-code", "approve")),
        "Task.code",
        "pattern",
    ),
    (PROFILE_TASK, drop("focus"), "Task.focus", "minimum cardinality 1"),
    (PROFILE_TASK, put("for", {"reference": "Group/g"}), "Task.for", "must reference Patient"),
    (PROFILE_TASK, put("owner", {"reference": "Organization/o"}), "Task.owner", "PractitionerRole"),
    (PROFILE_REPORT, put("status", "registered"), "DiagnosticReport.status", "required value set"),
    (PROFILE_REPORT, drop("basedOn"), "DiagnosticReport.basedOn", "minimum cardinality 1"),
    (PROFILE_REPORT, drop("performer"), "DiagnosticReport.performer", "minimum cardinality 1"),
    (PROFILE_COVERAGE, drop("payor"), "Coverage.payor", "minimum cardinality 1"),
    (PROFILE_COVERAGE, drop("period"), "Coverage.period", "minimum cardinality 1"),
    (
        PROFILE_COVERAGE,
        put("identifier", [{"type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MB")}]),
        "Coverage.identifier[0].value",
        "minimum cardinality 1",
    ),
    (
        PROFILE_COVERAGE,
        put("identifier", [{"value": "M-1"}]),
        "Coverage.identifier",
        "identifier:memberNumber",
    ),
    (PROFILE_COVERAGE, put("class", [COVERAGE["class"][0]]), "Coverage.class", "class:plan"),
    (
        PROFILE_COVERAGE,
        put("payor", [{"reference": "Organization/a"}, {"reference": "Organization/b"}]),
        "Coverage.payor",
        "maximum cardinality 1",
    ),
    (PROFILE_COORDINATION_TASK, drop("partOf"), "Task.partOf", "minimum cardinality 1"),
    (
        PROFILE_COORDINATION_TASK,
        put("partOf", [{"reference": "Task/a"}, {"reference": "Task/b"}]),
        "Task.partOf",
        "maximum cardinality 1",
    ),
    (
        PROFILE_COORDINATION_TASK,
        put("code", cc(f"{B}/CodeSystem/coordination-service", "spa")),
        "Task.code",
        "required value set",
    ),
    (PROFILE_COORDINATION_TASK, put("intent", "plan"), "Task.intent", "must be 'order'"),
    (
        PROFILE_COORDINATION_TASK,
        put("owner", {"reference": "Patient/p"}),
        "Task.owner",
        "must reference",
    ),
    (PROFILE_EXPERT, drop("organization"), "PractitionerRole.organization", "minimum"),
    (PROFILE_EXPERT, drop("specialty"), "PractitionerRole.specialty", "minimum"),
    (PROFILE_EXPERT, drop("active"), "PractitionerRole.active", "minimum"),
]


@pytest.mark.parametrize("profile", list(VALID))
def test_valid_example_conforms(profile: str) -> None:
    assert validate(copy.deepcopy(VALID[profile]), profile) == []


@pytest.mark.parametrize(("profile", "edit", "expression", "fragment"), BROKEN)
def test_broken_example_is_reported(
    profile: str, edit: Edit, expression: str, fragment: str
) -> None:
    resource = copy.deepcopy(VALID[profile])
    edit(resource)
    found = errors(validate(resource, profile))
    assert any(i.expression == expression and fragment in i.diagnostics for i in found), found


# (profile, edit, warning fragment): warnings never make a resource non-conformant
WARNINGS: list[tuple[str, Edit, str]] = [
    (PROFILE_REQUEST, put("performerType", cc(SCT, "419772000")), "extensible"),
    (PROFILE_EXPERT, put("specialty", [{"text": "Sports medicine"}]), "extensible"),
    (PROFILE_REPORT, put("code", cc("http://loinc.org", "34117-2")), "extensible"),
]


@pytest.mark.parametrize(("profile", "edit", "fragment"), WARNINGS)
def test_extensible_binding_only_warns(profile: str, edit: Edit, fragment: str) -> None:
    resource = copy.deepcopy(VALID[profile])
    edit(resource)
    issues = validate(resource, profile)
    assert issues and all(i.severity == "warning" for i in issues)
    assert fragment in issues[0].diagnostics
    assert conforms(resource, profile)


def test_a_request_coded_only_in_snomed_ct_is_structurally_valid() -> None:
    # Whether the condition is covered is decided at eligibility (condition-not-covered), not
    # by refusing the request: a SNOMED CT or ICD-10 coded diagnosis is a valid submission.
    resource = copy.deepcopy(REQUEST)
    resource["reasonCode"][1] = cc(SCT, "254837009")
    assert not [i for i in validate(resource, PROFILE_REQUEST) if i.is_error]


def test_a_report_may_carry_several_outcomes() -> None:
    resource = copy.deepcopy(VALID[PROFILE_REPORT])
    resource["conclusionCode"] = [
        cc(f"{B}/CodeSystem/second-opinion-outcome", "confirm-diagnosis"),
        cc(f"{B}/CodeSystem/second-opinion-outcome", "alternative-treatment"),
    ]
    assert not [i for i in validate(resource, PROFILE_REPORT) if i.is_error]


def test_verified_snomed_root_counts_as_covered_condition() -> None:
    resource = copy.deepcopy(REQUEST)
    resource["reasonCode"][1] = cc(SCT, "363346000")
    assert conforms(resource, PROFILE_REQUEST)


def test_wrong_resource_type_is_one_error() -> None:
    issues = validate({"resourceType": "Patient"}, PROFILE_TASK)
    assert issues == [
        ValidationIssue(
            "error", "structure", f"profile {PROFILE_TASK} constrains Task, not Patient", "Patient"
        )
    ]


def test_versioned_canonical_is_accepted() -> None:
    assert conforms(copy.deepcopy(TASK), f"{PROFILE_TASK}|0.1.0")


def test_unknown_profile_raises() -> None:
    with pytest.raises(UnknownProfile):
        validate(copy.deepcopy(TASK), "http://example.org/StructureDefinition/nope")


def test_hostile_shapes_do_not_crash() -> None:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "reasonCode": "S",
        "category": [None, 3, "x"],
        "code": [],
        "subject": {"reference": 7},
        "insurance": {"reference": "$where"},
    }
    assert errors(validate(resource, PROFILE_REQUEST))


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        (cc(SCT, "1"), cc(SCT, "1"), True),
        (
            {"coding": [{"system": SCT, "code": "1", "display": "x"}, {"code": "2"}], "text": "t"},
            cc(SCT, "1"),
            True,
        ),
        (cc(SCT, "2"), cc(SCT, "1"), False),
        ({"text": "only text"}, cc(SCT, "1"), False),
        ("order", "order", True),
        (None, "order", False),
    ],
)
def test_matches_pattern(value: Any, pattern: Any, expected: bool) -> None:
    assert matches_pattern(value, pattern) is expected


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/1", "Patient"),
        ("https://x.org/fhir/Patient/1", "Patient"),
        ("Patient/1/_history/2", "Patient"),
        ("#contained", None),
        ("urn:uuid:0b1c", None),
        ("nonsense", None),
    ],
)
def test_reference_type(reference: str, expected: str | None) -> None:
    assert reference_type(reference) == expected


def test_every_profile_is_loaded_and_known() -> None:
    urls = {
        r["url"]
        for r in conformance_resources()
        if r["resourceType"] == "StructureDefinition" and r.get("type") != "Extension"
    }
    assert urls == set(VALID)
    assert all(is_known_profile(u) for u in urls)
