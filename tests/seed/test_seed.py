"""Seeding: idempotent, readable over HTTP, and the demo data conforms to R4 and our profiles."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from profiles.conformance import conformance_resources
from profiles.validator import errors, validate
from resources.coverage import class_value, plan_benefits
from resources.servicerequest import check_eligibility
from resources.task import business_status_code
from resources.validation import validate_resource
from seed.loader import demo_resources, seed_all
from server import fhirjson
from server.profile_validation import profiles_to_check

DEMO = demo_resources()
CONFORMANCE = conformance_resources()


def _key(r: dict[str, Any]) -> str:
    return f"{r['resourceType']}/{r['id']}"


def _strip_meta(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    meta = {
        k: v
        for k, v in (out.pop("meta", None) or {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    if meta:
        out["meta"] = meta
    return out


@pytest.fixture
def seeded(app: FastAPI) -> tuple[FastAPI, dict[str, int]]:
    return app, seed_all(app.state.consilium, demo=True, network=False)


def test_first_seed_creates_every_resource(seeded: tuple[FastAPI, dict[str, int]]) -> None:
    _, counts = seeded
    assert counts == {"created": len(CONFORMANCE) + len(DEMO), "updated": 0, "unchanged": 0}


def test_second_seed_creates_nothing_new(seeded: tuple[FastAPI, dict[str, int]]) -> None:
    app, first = seeded
    store = app.state.consilium.store
    versions = store.history.count_documents({})
    again = seed_all(app.state.consilium, demo=True, network=False)
    assert again == {"created": 0, "updated": 0, "unchanged": first["created"]}
    assert store.history.count_documents({}) == versions


def test_conformance_only_seed_skips_demo(app: FastAPI) -> None:
    counts = seed_all(app.state.consilium, demo=False, network=False)
    assert counts["created"] == len(CONFORMANCE)
    assert app.state.consilium.store.db["Patient"].count_documents({}) == 0


def test_every_seeded_resource_is_readable_over_http(
    seeded: tuple[FastAPI, dict[str, int]],
) -> None:
    app, _ = seeded
    with TestClient(app, base_url="http://testserver") as client:
        for resource in CONFORMANCE + DEMO:
            r = client.get(f"/fhir/{_key(resource)}")
            assert r.status_code == 200, (_key(resource), r.text)
            # Read with exact decimals, as the demo data are (seed.loader parses them so), less
            # what the server derives (a filed report's PDF: Hooks.register_derived).
            read = app.state.consilium.hooks.without_derived(
                resource["resourceType"], fhirjson.loads(r.content)
            )
            assert _strip_meta(read) == _strip_meta(resource)


def test_seeding_opens_no_extra_case_tasks(seeded: tuple[FastAPI, dict[str, int]]) -> None:
    app, _ = seeded
    tasks = app.state.consilium.store.db["Task"].count_documents({})
    assert tasks == sum(1 for r in DEMO if r["resourceType"] == "Task")


@pytest.mark.parametrize("resource", DEMO + CONFORMANCE, ids=_key)
def test_resource_is_structurally_valid_r4(resource: dict[str, Any]) -> None:
    validate_resource(resource, resource["resourceType"])


@pytest.mark.parametrize("resource", DEMO, ids=_key)
def test_demo_resource_conforms_to_its_profiles(resource: dict[str, Any]) -> None:
    for url in profiles_to_check(resource):
        assert errors(validate(resource, url)) == [], url


def test_demo_references_point_at_earlier_resources() -> None:
    """Load order respects references (referential integrity may be enforced on write)."""
    seen: set[str] = set()

    def refs(x: Any) -> list[str]:
        if isinstance(x, dict):
            out = [x["reference"]] if isinstance(x.get("reference"), str) else []
            return out + [r for k, v in x.items() if k != "reference" for r in refs(v)]
        if isinstance(x, list):
            return [r for v in x for r in refs(v)]
        return []

    for resource in DEMO:
        for ref in refs(resource):
            assert ref in seen, f"{_key(resource)} → {ref}"
        seen.add(_key(resource))


def test_demo_covers_the_lifecycle() -> None:
    """Every state the engine produces; ``ready`` is for BSeR imports only (DOMAIN.md)."""
    statuses = {r["status"] for r in DEMO if r["resourceType"] == "Task"}
    assert {
        "requested",
        "accepted",
        "in-progress",
        "on-hold",
        "completed",
        "rejected",
    } <= statuses
    assert any(r["resourceType"] == "Communication" for r in DEMO)
    specialties = {
        c["code"]
        for r in DEMO
        if r["resourceType"] == "PractitionerRole"
        for s in r.get("specialty", [])
        for c in s["coding"]
    }
    assert {"394592004", "394579002", "394801008", "394591006", "394589003"} <= specialties


def _by_key() -> dict[str, dict[str, Any]]:
    return {_key(r): r for r in DEMO}


@pytest.mark.parametrize("sr", [r for r in DEMO if r["resourceType"] == "ServiceRequest"], ids=_key)
def test_demo_case_state_agrees_with_eligibility(sr: dict[str, Any]) -> None:
    """A rejected demo case fails the eligibility check with its reason; the others pass."""
    demo = _by_key()
    coverage = demo[sr["insurance"][0]["reference"]]
    condition = demo[sr["reasonReference"][0]["reference"]]
    plan = next(
        r
        for r in DEMO
        if r["resourceType"] == "InsurancePlan"
        and r["identifier"][0]["value"] == class_value(coverage, "plan")
    )
    task = next(
        r for r in DEMO if r["resourceType"] == "Task" and r["focus"]["reference"] == _key(sr)
    )
    got = check_eligibility(sr, coverage, condition, plan_benefits(plan), today=date(2026, 11, 25))
    if task["status"] == "rejected":
        assert got == (False, business_status_code(task))
    else:
        assert got == (True, None)


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        (
            "ServiceRequest?reason-code=http://terminology.hl7.org/CodeSystem/v2-0336|S",
            {
                f"sr-{n}"
                for n in ("tremblay", "okafor", "whitfield", "hughes", "deshpande", "nair", "reid")
            },
        ),
        ("ServiceRequest?insurance=Coverage/cov-nair", {"sr-nair"}),
        ("ServiceRequest?reason-reference=Condition/cond-hughes", {"sr-hughes"}),
    ],
)
def test_consilium_search_parameters_find_demo_data(
    seeded: tuple[FastAPI, dict[str, int]], query: str, ids: set[str]
) -> None:
    app, _ = seeded
    with TestClient(app, base_url="http://testserver") as client:
        r = client.get(f"/fhir/{query}")
        assert r.status_code == 200, r.text
        assert {e["resource"]["id"] for e in r.json().get("entry", [])} == ids


def test_demo_tasks_use_no_deprecated_business_status() -> None:
    codes = {business_status_code(r) for r in DEMO if r["resourceType"] == "Task"}
    assert "expert-matched" not in codes
    assert "expert-assigned" in codes


def test_oncology_experts_take_medical_oncology_cases() -> None:
    """394593009 is the covered-conditions default specialty for cancer (routing without a
    performerType)."""
    demo = _by_key()
    for role in ("exp-oncology-ca", "exp-oncology-in"):
        codes = {
            c["code"] for s in demo[f"PractitionerRole/{role}"]["specialty"] for c in s["coding"]
        }
        assert {"394592004", "394593009"} <= codes


def test_walkthrough_member_has_insurer_held_cover_and_no_case() -> None:
    demo = _by_key()
    coverage = demo["Coverage/cov-moreau"]
    assert coverage["beneficiary"] == {"reference": "Patient/pat-moreau"}
    assert class_value(coverage, "group") == "GP-40213"
    assert not [
        r
        for r in DEMO
        if r["resourceType"] == "ServiceRequest"
        and r["subject"]["reference"] == "Patient/pat-moreau"
    ]
