"""Ownership facts computed at write time: insurer-held Coverage and coordinator-written
patients (the rest of ``compute_acl`` is exercised through the policy and the HTTP tests)."""

from __future__ import annotations

from typing import Any

import pytest

from auth.acl import compute_acl
from auth.principal import Principal


def patient_orgs(patients: set[str]) -> dict[str, set[str]]:
    return {p: {"clinic-a"} for p in patients}


def writer(role: str | None = None, org: str | None = None, **kw: Any) -> Principal:
    return Principal.build("c", ("system/*.cruds",), organization=org, role=role, **kw)


COVERAGE = {
    "resourceType": "Coverage",
    "id": "cov",
    "status": "active",
    "beneficiary": {"reference": "Patient/pa"},
    "payor": [{"reference": "Organization/ins-x"}],
}


def coverage_acl(principal: Principal | None, previous: dict[str, Any] | None = None) -> Any:
    return compute_acl("Coverage", "cov", COVERAGE, principal, previous, patient_orgs)


@pytest.mark.parametrize(
    ("principal", "attested"),
    [
        (None, True),  # auth off, or the server on its own account
        (writer(), True),  # a trusted integration (the insurer's feed, an import)
        (writer(admin=True), True),
        (writer("insurer", "ins-x"), True),  # the paying insurer
        (writer("insurer", "ins-y"), False),  # another insurer
        (writer("clinic", "clinic-a"), False),
        (writer("coordinator", "net"), False),
        (writer("specialist", "net", practitioner_role="e1"), False),
    ],
)
def test_coverage_is_insurer_held_only_when_an_entitled_party_wrote_it(
    principal: Principal | None, attested: bool
) -> None:
    assert coverage_acl(principal)["attested"] is attested


def test_a_clinic_editing_an_insurers_coverage_makes_it_unattested() -> None:
    held = coverage_acl(writer("insurer", "ins-x"))
    assert held["attested"] is True
    edited = coverage_acl(writer("clinic", "clinic-a"), previous=held)
    assert edited["attested"] is False
    assert edited["payors"] == ["ins-x"]  # still the insurer's coverage, no longer vouched for


def test_the_insurer_re_attests_its_coverage() -> None:
    edited = coverage_acl(writer("clinic", "clinic-a"), previous=coverage_acl(None))
    assert coverage_acl(writer("insurer", "ins-x"), previous=edited)["attested"] is True


def test_a_deleted_coverage_keeps_its_facts() -> None:
    held = coverage_acl(None)
    assert compute_acl("Coverage", "cov", None, writer("clinic", "c"), held, patient_orgs) == held


def test_only_coverage_carries_attested() -> None:
    obs = {"resourceType": "Observation", "subject": {"reference": "Patient/pa"}}
    assert "attested" not in compute_acl("Observation", "o", obs, None, None, patient_orgs)


PATIENT = {
    "resourceType": "Patient",
    "id": "pn",
    "managingOrganization": {"reference": "Organization/clinic-b"},
}


@pytest.mark.parametrize(
    ("principal", "orgs"),
    [
        (None, ["clinic-b"]),
        (writer("coordinator", "net"), ["clinic-b"]),  # on the clinic's behalf
        (writer("clinic", "clinic-a"), ["clinic-a"]),  # a clinic cannot hand a patient to another
        (writer("specialist", "net"), []),
    ],
)
def test_managing_organization_owns_a_patient_written_by_a_trusted_party_or_coordinator(
    principal: Principal | None, orgs: list[str]
) -> None:
    assert compute_acl("Patient", "pn", PATIENT, principal, None, patient_orgs)["orgs"] == orgs
