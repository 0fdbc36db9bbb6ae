"""The demo network (seed/data/20-*): its size and shape, idempotent seeding, references, the
generator reproducing the committed files, and that the core demo still matches its own experts
with the network loaded.

The network is seeded once for the module (a thousand resources through the write path is
slow); the tests on that database only read it. Pure checks run on the data files.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo import MongoClient

from profiles.conformance import PROFILE_EXPERT, conformance_resources
from profiles.validator import errors, validate
from resources.coverage import class_value, plan_benefits
from resources.eligibility import EligibilityFacts, covered_match, evaluate
from resources.matching import candidate_from, need_from, rank
from resources.task import business_status_code
from resources.validation import validate_resource
from seed.loader import demo_resources, network_files, network_resources, seed_all
from server.app import create_app
from server.profile_validation import profiles_to_check
from tests.server.cases.kit import Parties, make_parties
from tests.smart_helpers import ADMIN

ROOT = Path(__file__).resolve().parents[2]
CORE = demo_resources(network=False)
NETWORK = network_resources()
ALL = CORE + NETWORK
V2_0336 = "http://terminology.hl7.org/CodeSystem/v2-0336"
DEMO_DAY = date(2026, 12, 2)  # "today" of the demo data: every case is dated before it


def _key(r: dict[str, Any]) -> str:
    return f"{r['resourceType']}/{r['id']}"


BY_KEY = {_key(r): r for r in ALL}


def _of(rtype: str, resources: list[dict[str, Any]] = NETWORK) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == rtype]


@pytest.fixture(scope="module")
def seeded(
    module_settings: Callable[..., Any], mongo_uri: str
) -> Iterator[tuple[FastAPI, dict[str, int]]]:
    app = create_app(module_settings("network", auth="on", admin_token=ADMIN))
    try:
        yield app, seed_all(app.state.consilium, demo=True, network=True)
    finally:
        cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
        cleanup.drop_database(app.state.consilium.settings.db_name)
        cleanup.close()
        app.state.consilium.store.close()


def _db(app: FastAPI) -> Any:
    return app.state.consilium.store.db


def _live(app: FastAPI, rtype: str) -> list[dict[str, Any]]:
    return [d["resource"] for d in _db(app)[rtype].find({"deleted": False}, {"resource": 1})]


# ------------------------------------------------------------------------------- seeding
def test_seeding_writes_every_core_and_network_resource(
    seeded: tuple[FastAPI, dict[str, int]],
) -> None:
    _, counts = seeded
    total = len(list(conformance_resources())) + len(ALL)
    assert counts == {"created": total, "updated": 0, "unchanged": 0}


def test_seeding_opens_no_case_tasks_of_its_own(seeded: tuple[FastAPI, dict[str, int]]) -> None:
    """Seeded requests are PUTs: the engine opens cases for POSTed submissions only."""
    app, _ = seeded
    assert _db(app)["Task"].count_documents({}) == len(_of("Task", ALL))


def test_seeding_again_creates_and_updates_nothing(
    seeded: tuple[FastAPI, dict[str, int]],
) -> None:
    app, first = seeded
    versions = app.state.consilium.store.history.count_documents({})
    before = {name: _db(app)[name].count_documents({}) for name in ("Patient", "Task")}
    again = seed_all(app.state.consilium, demo=True, network=True)
    assert again == {"created": 0, "updated": 0, "unchanged": first["created"]}
    assert app.state.consilium.store.history.count_documents({}) == versions
    assert {name: _db(app)[name].count_documents({}) for name in before} == before


# --------------------------------------------------------------------------------- counts
def test_three_insurers_one_per_country_each_with_a_second_opinion_plan(
    seeded: tuple[FastAPI, dict[str, int]],
) -> None:
    app, _ = seeded
    insurers = {
        o["id"]: o["address"][0]["country"]
        for o in _live(app, "Organization")
        if any(c["code"] == "ins" for t in o.get("type", []) for c in t["coding"])
    }
    assert sorted(insurers.values()) == ["CA", "GB", "IN"]
    with_benefit = Counter(
        p["ownedBy"]["reference"].removeprefix("Organization/")
        for p in _live(app, "InsurancePlan")
        if plan_benefits(p).included
    )
    assert set(with_benefit) == set(insurers)
    assert all(n >= 2 for n in with_benefit.values())  # the core plan and a network plan


def _experts(app: FastAPI) -> list[dict[str, Any]]:
    return [
        r
        for r in _live(app, "PractitionerRole")
        if PROFILE_EXPERT in (r.get("meta") or {}).get("profile", [])
    ]


def test_at_least_60_experts_in_at_least_10_specialties(
    seeded: tuple[FastAPI, dict[str, int]],
) -> None:
    app, _ = seeded
    experts = _experts(app)
    specialties = {c["code"] for r in experts for s in r["specialty"] for c in s["coding"]}
    assert len(experts) >= 60
    assert len(specialties) >= 10


def test_experts_cover_at_least_6_regions_including_us_and_international_centres(
    seeded: tuple[FastAPI, dict[str, int]],
) -> None:
    app, _ = seeded
    locations = {loc["id"]: loc for loc in _live(app, "Location")}
    places = {
        (a.get("country"), a.get("state"))
        for r in _experts(app)
        for ref in r.get("location", [])
        if (a := locations[ref["reference"].removeprefix("Location/")]["address"])
    }
    countries = {c for c, _ in places}
    assert len(places) >= 6
    assert "US" in countries
    assert countries - {"CA", "GB", "IN", "US"}  # international centres of excellence


def test_at_least_200_members_each_with_an_insurer_held_coverage(
    seeded: tuple[FastAPI, dict[str, int]],
) -> None:
    app, _ = seeded
    patients = {p["id"] for p in _live(app, "Patient") if p["id"] in {r["id"] for r in NETWORK}}
    coverages = _live(app, "Coverage")
    covered = {
        c["beneficiary"]["reference"].removeprefix("Patient/")
        for c in coverages
        if c["payor"][0]["reference"].startswith("Organization/ins-")
        and class_value(c, "group")
        and any(i["type"]["coding"][0]["code"] == "MB" for i in c["identifier"])
    }
    assert len(patients) >= 200
    assert patients <= covered


def test_certificate_numbers_are_unique_per_insurer() -> None:
    """Insurers refuse duplicate certificate numbers in a roster."""
    certs = [(i["system"], i["value"]) for r in _of("Coverage", ALL) for i in r["identifier"]]
    assert len(certs) == len(set(certs))


def test_every_lifecycle_state_is_present(seeded: tuple[FastAPI, dict[str, int]]) -> None:
    app, _ = seeded
    states = {(t["status"], business_status_code(t)) for t in _live(app, "Task")}
    assert {
        ("requested", "received"),
        ("accepted", "expert-assigned"),
        ("accepted", "awaiting-expert"),
        ("in-progress", "case-retrieved"),
        ("in-progress", "under-review"),
        ("in-progress", "interim-report"),
        ("on-hold", "awaiting-information"),
        ("completed", "report-issued"),
        ("cancelled", "cancelled"),
    } <= states
    assert {s for s, _ in states} >= {"rejected"}
    reasons = {
        c["code"]
        for t in _live(app, "Task")
        if t["status"] == "rejected"
        for c in t["statusReason"]["coding"]
    }
    assert len(reasons) >= 3


def test_a_third_opinion_replaces_a_disagreeing_first_opinion() -> None:
    thirds = [r for r in _of("ServiceRequest") if r.get("replaces")]
    assert thirds
    for third in thirds:
        first = third["replaces"][0]["reference"]
        outcomes = {
            c["code"]
            for r in _of("DiagnosticReport")
            if r.get("basedOn") == [{"reference": first}] and r["status"] == "final"
            for cc in r["conclusionCode"]
            for c in cc["coding"]
        }
        assert outcomes & {"alternative-diagnosis", "alternative-treatment"}
        owners = {t["focus"]["reference"]: t.get("owner", {}).get("reference") for t in _of("Task")}
        assert owners[_key(third)] is not None
        assert owners[_key(third)] != owners[first]  # never the first opinion's expert


def test_completed_cases_output_a_final_report_with_a_pdf() -> None:
    for task in (t for t in _of("Task") if t["status"] == "completed"):
        report = BY_KEY[task["output"][0]["valueReference"]["reference"]]
        assert report["status"] == "final"
        assert report["presentedForm"][0]["contentType"] == "application/pdf"
        assert report["performer"] == [task["owner"]]


def test_on_hold_cases_have_the_experts_question() -> None:
    questions = {c["partOf"][0]["reference"] for c in _of("Communication")}
    assert {_key(t) for t in _of("Task") if t["status"] == "on-hold"} <= questions


# ------------------------------------------------------------------------------- integrity
def _refs(x: Any) -> list[str]:
    if isinstance(x, dict):
        out = [x["reference"]] if isinstance(x.get("reference"), str) else []
        return out + [r for k, v in x.items() if k != "reference" for r in _refs(v)]
    if isinstance(x, list):
        return [r for v in x for r in _refs(v)]
    return []


def test_every_reference_points_at_an_earlier_resource() -> None:
    """Load order respects references: the network builds on the core demo, never before it."""
    seen: set[str] = set()
    for resource in ALL:
        for ref in _refs(resource):
            assert ref in seen, f"{_key(resource)} → {ref}"
        seen.add(_key(resource))


def test_every_reference_resolves_in_the_seeded_database(
    seeded: tuple[FastAPI, dict[str, int]],
) -> None:
    app, _ = seeded
    wanted = sorted({ref for r in NETWORK for ref in _refs(r)})
    missing = [
        ref
        for ref in wanted
        if _db(app)[ref.split("/")[0]].count_documents({"_id": ref.split("/")[1], "deleted": False})
        != 1
    ]
    assert missing == []


def test_ids_are_unique_and_leave_the_core_ids_alone() -> None:
    keys = [_key(r) for r in ALL]
    assert len(keys) == len(set(keys))
    assert {_key(r) for r in CORE}.isdisjoint(_key(r) for r in NETWORK)


def test_network_resources_are_valid_r4_and_conform_to_their_profiles() -> None:
    problems: list[str] = []
    for resource in NETWORK:
        validate_resource(resource, resource["resourceType"])
        for url in profiles_to_check(resource):
            problems += [f"{_key(resource)} {url}: {e}" for e in errors(validate(resource, url))]
    assert problems == []


# ------------------------------------------------------------------------------ the engine
def _facts(sr: dict[str, Any]) -> EligibilityFacts:
    coverage = BY_KEY[sr["insurance"][0]["reference"]]
    plan = next(
        (
            r
            for r in _of("InsurancePlan", ALL)
            if r["identifier"][0]["value"] == class_value(coverage, "plan")
        ),
        None,
    )
    return EligibilityFacts(
        request=sr,
        coverage=coverage,
        coverage_attested=True,
        condition=BY_KEY[sr["reasonReference"][0]["reference"]],
        supporting=[BY_KEY[r["reference"]] for r in sr["supportingInfo"]],
        benefits=plan_benefits(plan, used=0),
        day=date.fromisoformat(sr["authoredOn"][:10]),
        third_opinion=bool(sr.get("replaces")),
    )


@pytest.mark.parametrize("task", _of("Task"), ids=_key)
def test_case_state_agrees_with_the_eligibility_rules(task: dict[str, Any]) -> None:
    """A rejected case fails exactly the rules its statusReason names; the others pass."""
    verdict = evaluate(_facts(BY_KEY[task["focus"]["reference"]]))
    if task["status"] == "rejected":
        assert verdict.codes == tuple(c["code"] for c in task["statusReason"]["coding"])
    else:
        assert verdict.eligible, verdict.codes


def _ranking(sr: dict[str, Any], patient: dict[str, Any]) -> list[str]:
    """The engine's ranking over the whole seeded directory (core + network), as on the day."""
    roles = [
        r
        for r in _of("PractitionerRole", ALL)
        if PROFILE_EXPERT in (r.get("meta") or {}).get("profile", [])
    ]
    loads = Counter(
        t["owner"]["reference"].removeprefix("PractitionerRole/")
        for t in _of("Task", ALL)
        if t.get("owner") and t["status"] in ("requested", "accepted", "in-progress", "on-hold")
    )
    candidates = [
        candidate_from(
            role,
            BY_KEY.get(role["practitioner"]["reference"]),
            [BY_KEY[loc["reference"]] for loc in role.get("location", [])],
            open_cases=loads[role["id"]],
            today=DEMO_DAY,
        )
        for role in roles
    ]
    condition = BY_KEY.get((sr.get("reasonReference") or [{}])[0].get("reference", ""))
    facts = EligibilityFacts(
        request=sr,
        coverage=None,
        coverage_attested=True,
        condition=condition,
        supporting=[],
        benefits=None,
        day=DEMO_DAY,
    )
    requester = BY_KEY.get(sr["requester"]["reference"])
    need = need_from(sr, covered_match(facts), patient, requester)
    return [c.role for c in rank(candidates, need)]


def _walkthrough_request() -> dict[str, Any]:
    bundle = json.loads((ROOT / "docs/examples/case-moreau.json").read_text(encoding="utf-8"))
    return next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    )


@pytest.mark.parametrize(
    ("request_id", "expert"),
    [
        ("sr-tremblay", "exp-oncology-ca"),
        ("sr-okafor", "exp-cardiology"),
        ("sr-whitfield", "exp-neurology"),
        ("sr-hughes", "exp-nephrology"),
        ("sr-deshpande", "exp-orthopaedics"),
        ("sr-nair", "exp-oncology-in"),
        ("walkthrough", "exp-oncology-ca"),
    ],
)
def test_core_cases_still_rank_their_core_expert_first(request_id: str, expert: str) -> None:
    """The network's experts never outrank the core experts for the core demo's members
    (docs/seed.md: no shared specialty and region in the core members' places)."""
    sr = (
        _walkthrough_request()
        if request_id == "walkthrough"
        else BY_KEY[f"ServiceRequest/{request_id}"]
    )
    patient = BY_KEY[sr["subject"]["reference"]]
    assert _ranking(sr, patient)[0] == expert


@pytest.mark.parametrize("task", [t for t in _of("Task") if t.get("owner")], ids=_key)
def test_network_cases_are_owned_by_a_network_expert_of_their_specialty(
    task: dict[str, Any],
) -> None:
    sr = BY_KEY[task["focus"]["reference"]]
    role = BY_KEY[task["owner"]["reference"]]
    assert role["id"].startswith("net-exp-")  # the core experts' caseloads stay the core's
    needed = {c["code"] for c in (sr.get("performerType") or {}).get("coding", [])}
    offered = {c["code"] for s in role["specialty"] for c in s["coding"]}
    assert not needed or needed & offered


# ------------------------------------------------------------------------------ generator
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_demo_network", ROOT / "tools" / "make_demo_network.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generator_reproduces_the_committed_files_byte_for_byte() -> None:
    generated: dict[str, str] = _generator().build()
    committed = {p.name: p.read_text(encoding="utf-8") for p in network_files()}
    assert sorted(generated) == sorted(committed)
    for name, text in generated.items():
        assert text == committed[name], f"seed/data/{name}: run tools/make_demo_network.py"


def test_network_files_come_after_the_core_demo() -> None:
    names = [p.name for p in network_files()]
    assert names and all(int(n.split("-")[0]) >= 20 for n in names)
    assert not any(n.startswith("14-") for n in names)  # the coordination Tasks are core data


# ------------------------------------------- the README's "The demo network" looks
@pytest.fixture(scope="module")
def parties(seeded: tuple[FastAPI, dict[str, int]]) -> Iterator[tuple[TestClient, Parties]]:
    app, _ = seeded
    with TestClient(app, base_url="http://testserver") as client:
        yield client, make_parties(client)


def _total(client: TestClient, query: str, headers: dict[str, str]) -> int:
    r = client.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def test_the_insurer_counts_its_own_members(parties: tuple[TestClient, Parties]) -> None:
    client, who = parties
    maple = sum(
        1
        for c in _of("Coverage", ALL)
        if c["payor"] == [{"reference": "Organization/ins-maple-mutual"}]
    )
    query = "Coverage?payor=Organization/ins-maple-mutual&_summary=count"
    assert maple > 70
    assert _total(client, query, who.insurer) == maple


def test_an_insurer_sees_no_other_insurers_members(parties: tuple[TestClient, Parties]) -> None:
    client, who = parties
    query = "Coverage?payor=Organization/ins-albion-health&_summary=count"
    assert _total(client, query, who.insurer) == 0
    assert _total(client, query, who.insurer_b) > 60


def test_the_coordinator_finds_experts_by_specialty_and_cases_awaiting_one(
    parties: tuple[TestClient, Parties],
) -> None:
    client, who = parties
    cardiology = "PractitionerRole?specialty=http://snomed.info/sct|394579002&_summary=count"
    assert _total(client, cardiology, who.coordinator) == sum(
        1
        for r in _of("PractitionerRole", ALL)
        if any(c["code"] == "394579002" for s in r.get("specialty", []) for c in s["coding"])
    )
    r = client.get("/fhir/Task?business-status=awaiting-expert", headers=who.coordinator)
    assert r.status_code == 200, r.text
    waiting = {e["resource"]["id"] for e in r.json().get("entry", [])}
    assert waiting == {t["id"] for t in _of("Task") if business_status_code(t) == "awaiting-expert"}
