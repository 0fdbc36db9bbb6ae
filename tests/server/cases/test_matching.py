"""Matching on acceptance: specialty, language, region, caseload, conflict of interest, and a
case waiting for an expert until one joins. Each test owns a fresh database (caseloads)."""

from __future__ import annotations

from typing import Any

from tests.server.cases.kit import FHIR, SNOMED, Kit, business, ok

CARDIOLOGY = {"system": SNOMED, "code": "394579002", "display": "Cardiology"}
NEPHRO = {"system": SNOMED, "code": "394589003", "display": "Nephrology"}


def owner(kit: Kit, **kw: Any) -> str | None:
    task = kit.task(kit.new_case(**kw))
    ref = (task.get("owner") or {}).get("reference")
    return ref.split("/")[-1] if ref else None


def test_specialty_comes_from_the_requested_performer_type(fresh_kit: Kit) -> None:
    assert owner(fresh_kit, performer_type=CARDIOLOGY) == "exp-cardiology"


def test_without_performer_type_the_conditions_default_specialty_routes(fresh_kit: Kit) -> None:
    code = [
        {
            "system": "https://consilium.health/fhir/CodeSystem/covered-serious-conditions",
            "code": "kidney-failure",
            "display": "Kidney failure",
        }
    ]
    assert owner(fresh_kit, code=code, performer_type=None) == "exp-nephrology"


def test_the_patients_language_comes_first(fresh_kit: Kit) -> None:
    assert owner(fresh_kit, language="hi", country="CA", state="ON") == "exp-oncology-in"


def test_same_region_wins_when_languages_tie(fresh_kit: Kit) -> None:
    assert owner(fresh_kit, language="en", country="IN", state="MH") == "exp-oncology-in"
    assert owner(fresh_kit, language="en", country="CA", state="ON") == "exp-oncology-ca"


def test_the_least_loaded_expert_is_chosen_when_all_else_ties(fresh_kit: Kit) -> None:
    # Two English speakers outside both experts' regions: caseload decides, alternating.
    first = owner(fresh_kit, language="en", country="GB", state="")
    second = owner(fresh_kit, language="en", country="GB", state="")
    assert {first, second} == {"exp-oncology-ca", "exp-oncology-in"}


def test_the_requesters_own_organization_is_never_matched(fresh_kit: Kit) -> None:
    # A network expert who also works for the requesting clinic is excluded by the conflict rule.
    role = fresh_kit.read("PractitionerRole/exp-cardiology", fresh_kit.p.trusted)
    role["organization"] = {"reference": "Organization/clinic-lakeshore"}
    ok(
        fresh_kit.http.put(
            "/fhir/PractitionerRole/exp-cardiology",
            json=role,
            headers={**FHIR, **fresh_kit.p.trusted},
        )
    )
    task = fresh_kit.task(fresh_kit.new_case(performer_type=CARDIOLOGY))
    assert business(task) == "awaiting-expert"


def test_an_inactive_or_on_leave_expert_is_skipped(fresh_kit: Kit) -> None:
    role = fresh_kit.read("PractitionerRole/exp-oncology-ca", fresh_kit.p.trusted)
    role["notAvailable"] = [
        {"description": "Sabbatical", "during": {"start": "2026-01-01", "end": "2027-12-31"}}
    ]
    ok(
        fresh_kit.http.put(
            "/fhir/PractitionerRole/exp-oncology-ca",
            json=role,
            headers={**FHIR, **fresh_kit.p.trusted},
        )
    )
    assert owner(fresh_kit, language="en", country="CA", state="ON") == "exp-oncology-in"


def test_a_case_waits_for_an_expert_and_is_matched_when_one_joins(fresh_kit: Kit) -> None:
    case = fresh_kit.new_case(performer_type=NEPHRO)  # exp-nephrology exists; make it leave
    first = fresh_kit.task(case)
    assert first["owner"]["reference"] == "PractitionerRole/exp-nephrology"
    role = fresh_kit.read("PractitionerRole/exp-nephrology", fresh_kit.p.trusted)
    role["active"] = False
    ok(
        fresh_kit.http.put(
            "/fhir/PractitionerRole/exp-nephrology",
            json=role,
            headers={**FHIR, **fresh_kit.p.trusted},
        )
    )
    waiting = fresh_kit.task(fresh_kit.new_case(performer_type=NEPHRO))
    assert (waiting["status"], business(waiting)) == ("accepted", "awaiting-expert")
    role["active"] = True
    ok(
        fresh_kit.http.put(
            "/fhir/PractitionerRole/exp-nephrology",
            json=role,
            headers={**FHIR, **fresh_kit.p.trusted},
        )
    )
    matched = fresh_kit.read(f"Task/{waiting['id']}")
    assert business(matched) == "expert-assigned"
    assert matched["owner"]["reference"] == "PractitionerRole/exp-nephrology"
