"""Expert matching: hard constraints first, then the ranking, from plain resources."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest

from profiles.terminology import CoveredMatch, default_specialty
from resources.matching import Candidate, Need, candidate_from, need_from, rank

SCT = "http://snomed.info/sct"
ONCOLOGY = f"{SCT}|394592004"
NEUROLOGY = f"{SCT}|394591006"
CARDIOLOGY = f"{SCT}|394579002"
TODAY = date(2026, 11, 25)
MS = CoveredMatch(
    "multiple-sclerosis",
    "guide",
    "https://consilium.health/fhir/CodeSystem/covered-serious-conditions|multiple-sclerosis",
)


def cand(role: str, **changes: Any) -> Candidate:
    base = Candidate(
        role=role,
        practitioner=f"pr-{role}",
        organization="net-a",
        specialties=frozenset({ONCOLOGY}),
        countries=frozenset({"CA"}),
        regions=frozenset({"ON"}),
        languages=frozenset({"en"}),
        active=True,
        on_leave=False,
        open_cases=3,
    )
    return dataclasses.replace(base, **changes)


NEED = Need(
    specialties=frozenset({ONCOLOGY}),
    country="CA",
    region="ON",
    language="en",
    exclude_roles=frozenset(),
    exclude_practitioners=frozenset(),
    exclude_organizations=frozenset(),
)


def need(**changes: Any) -> Need:
    return dataclasses.replace(NEED, **changes)


# (name, candidates, need, expected role ids in order)
RANKING: list[tuple[str, list[Candidate], Need, list[str]]] = [
    ("specialty must match", [cand("a"), cand("b", specialties=frozenset({CARDIOLOGY}))], NEED, ["a"]),
    ("any needed specialty matches", [cand("a", specialties=frozenset({NEUROLOGY, CARDIOLOGY}))], need(specialties=frozenset({CARDIOLOGY, ONCOLOGY})), ["a"]),
    ("no specialty known: nobody", [cand("a")], need(specialties=frozenset()), []),
    ("inactive excluded", [cand("a", active=False), cand("b")], NEED, ["b"]),
    ("on leave excluded", [cand("a", on_leave=True), cand("b")], NEED, ["b"]),
    ("requester role excluded", [cand("a"), cand("b")], need(exclude_roles=frozenset({"a"})), ["b"]),
    ("requesting practitioner excluded", [cand("a"), cand("b")], need(exclude_practitioners=frozenset({"pr-b"})), ["a"]),
    ("requester's organization excluded", [cand("a", organization="clinic"), cand("b")], need(exclude_organizations=frozenset({"clinic"})), ["b"]),
    ("language first", [cand("a", languages=frozenset({"en"}), open_cases=0), cand("b", languages=frozenset({"fr", "en"}), countries=frozenset({"FR"}), regions=frozenset(), open_cases=9)], need(language="fr"), ["b", "a"]),
    ("region before country", [cand("a", regions=frozenset({"QC"}), open_cases=0), cand("b", open_cases=5)], NEED, ["b", "a"]),
    ("country before caseload", [cand("a", countries=frozenset({"GB"}), regions=frozenset(), open_cases=0), cand("b", regions=frozenset({"QC"}), open_cases=5)], NEED, ["b", "a"]),
    ("region counts only in the same country", [cand("a", countries=frozenset({"US"}), regions=frozenset({"ON"}), open_cases=0), cand("b", regions=frozenset({"BC"}), open_cases=5)], NEED, ["b", "a"]),
    ("places compare case-insensitively", [cand("a", countries=frozenset({"ca"}), regions=frozenset({"on"}), open_cases=5), cand("b", regions=frozenset({"BC"}), open_cases=0)], NEED, ["a", "b"]),
    ("fewest open cases", [cand("a", open_cases=4), cand("b", open_cases=1), cand("c", open_cases=2)], NEED, ["b", "c", "a"]),
    ("ties broken by role id", [cand("c"), cand("a"), cand("b")], NEED, ["a", "b", "c"]),
    ("no patient language or place: caseload decides", [cand("a", open_cases=2), cand("b", open_cases=1)], need(language=None, country=None, region=None), ["b", "a"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "candidates", "need_", "expected"), RANKING, ids=[r[0] for r in RANKING]
)
def test_rank(name: str, candidates: list[Candidate], need_: Need, expected: list[str]) -> None:
    assert [c.role for c in rank(candidates, need_)] == expected


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_rank_does_not_depend_on_input_order(order: list[int]) -> None:
    pool = [cand("d"), cand("a", open_cases=1), cand("b", languages=frozenset()), cand("c")]
    assert [c.role for c in rank([pool[i] for i in order], NEED)] == ["a", "c", "d", "b"]


ROLE: dict[str, Any] = {
    "resourceType": "PractitionerRole",
    "id": "exp-1",
    "active": True,
    "practitioner": {"reference": "Practitioner/pr-1"},
    "organization": {"reference": "Organization/net-1"},
    "specialty": [{"coding": [{"system": SCT, "code": "394592004"}]}],
    "location": [{"reference": "Location/loc-1"}],
}
PRACTITIONER: dict[str, Any] = {
    "resourceType": "Practitioner",
    "id": "pr-1",
    "communication": [
        {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-CA"}]},
        {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]},
    ],
}
LOCATION: dict[str, Any] = {
    "resourceType": "Location",
    "id": "loc-1",
    "address": {"city": "Toronto", "state": "ON", "country": "CA"},
}


def test_candidate_from_resources() -> None:
    c = candidate_from(ROLE, PRACTITIONER, [LOCATION], open_cases=2, today=TODAY)
    assert c == Candidate(
        role="exp-1",
        practitioner="pr-1",
        organization="net-1",
        specialties=frozenset({ONCOLOGY}),
        countries=frozenset({"CA"}),
        regions=frozenset({"ON"}),
        languages=frozenset({"en", "fr"}),
        active=True,
        on_leave=False,
        open_cases=2,
    )


LEAVE = {"description": "sabbatical", "during": {"start": "2026-11-01", "end": "2026-12-15"}}
PAST_LEAVE = {"description": "leave", "during": {"start": "2026-01-01", "end": "2026-02-01"}}


@pytest.mark.parametrize(
    ("role", "practitioner", "active", "on_leave"),
    [
        (ROLE, PRACTITIONER, True, False),
        ({**ROLE, "active": False}, PRACTITIONER, False, False),
        ({k: v for k, v in ROLE.items() if k != "active"}, PRACTITIONER, True, False),
        (ROLE, {**PRACTITIONER, "active": False}, False, False),
        ({**ROLE, "period": {"end": "2026-06-30"}}, PRACTITIONER, False, False),
        ({**ROLE, "notAvailable": [LEAVE]}, PRACTITIONER, True, True),
        ({**ROLE, "notAvailable": [PAST_LEAVE]}, PRACTITIONER, True, False),
        ({**ROLE, "notAvailable": [{"description": "some Fridays"}]}, None, True, False),
        ({**ROLE, "notAvailable": [{"description": "open", "during": {"start": "2026-11"}}]}, None, True, True),
    ],
)  # fmt: skip
def test_candidate_availability(
    role: dict[str, Any], practitioner: dict[str, Any] | None, active: bool, on_leave: bool
) -> None:
    c = candidate_from(role, practitioner, [LOCATION], open_cases=0, today=TODAY)
    assert (c.active, c.on_leave) == (active, on_leave)


def test_candidate_reads_r5_style_communication() -> None:
    pr = {"communication": [{"language": {"coding": [{"code": "pa-IN"}]}, "preferred": True}]}
    assert candidate_from(ROLE, pr, [], open_cases=0, today=TODAY).languages == {"pa"}


REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "requester": {"reference": "PractitionerRole/role-doc"},
    "performerType": {"coding": [{"system": SCT, "code": "394592004"}]},
}
REQUESTER_ROLE: dict[str, Any] = {
    "resourceType": "PractitionerRole",
    "id": "role-doc",
    "practitioner": {"reference": "Practitioner/doc"},
    "organization": {"reference": "Organization/clinic"},
}
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "address": [
        {"use": "old", "state": "BC", "country": "CA"},
        {"use": "work", "state": "QC", "country": "CA"},
        {"use": "home", "state": "ON", "country": "CA"},
    ],
    "communication": [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}},
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr-CA"}]}, "preferred": True},
    ],
}  # fmt: skip


def test_need_from_resources() -> None:
    got = need_from(REQUEST, MS, PATIENT, REQUESTER_ROLE, exclude_roles=frozenset({"declined"}))
    assert got == Need(
        specialties=frozenset({ONCOLOGY}),
        country="CA",
        region="ON",
        language="fr",
        exclude_roles=frozenset({"role-doc", "declined"}),
        exclude_practitioners=frozenset({"doc"}),
        exclude_organizations=frozenset({"clinic"}),
    )


def test_performer_type_wins_over_the_default_specialty() -> None:
    assert need_from(REQUEST, MS, None, None).specialties == {ONCOLOGY}


def test_default_specialty_of_the_condition_without_performer_type() -> None:
    default = default_specialty("multiple-sclerosis")
    assert default is not None
    sr = {k: v for k, v in REQUEST.items() if k != "performerType"}
    assert need_from(sr, MS, None, None).specialties == {f"{default['system']}|{default['code']}"}


def test_no_performer_type_nor_condition_needs_nothing_matchable() -> None:
    sr = {k: v for k, v in REQUEST.items() if k != "performerType"}
    assert need_from(sr, None, None, None).specialties == frozenset()


@pytest.mark.parametrize(
    ("requester", "field", "value"),
    [
        ({"reference": "Practitioner/doc"}, "exclude_practitioners", {"doc"}),
        ({"reference": "Organization/clinic"}, "exclude_organizations", {"clinic"}),
        ({"reference": "PractitionerRole/r9"}, "exclude_roles", {"r9"}),
    ],
)
def test_requester_excluded_however_named(
    requester: dict[str, Any], field: str, value: set[str]
) -> None:
    assert getattr(need_from({**REQUEST, "requester": requester}, MS, None, None), field) == value


def test_first_communication_when_none_preferred() -> None:
    patient = {"communication": [{"language": {"coding": [{"code": "hi"}]}}]}
    assert need_from(REQUEST, MS, patient, None).language == "hi"


def test_conflict_end_to_end() -> None:
    """The requester's colleague at the same clinic is never matched, however well placed."""
    need_ = need_from(REQUEST, MS, PATIENT, REQUESTER_ROLE)
    colleague = candidate_from(
        {**ROLE, "id": "colleague", "organization": {"reference": "Organization/clinic"}},
        PRACTITIONER,
        [LOCATION],
        open_cases=0,
        today=TODAY,
    )
    other = candidate_from(ROLE, PRACTITIONER, [LOCATION], open_cases=9, today=TODAY)
    assert [c.role for c in rank([colleague, other], need_)] == ["exp-1"]
