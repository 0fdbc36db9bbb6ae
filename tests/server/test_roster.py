"""Roster loading: an insurer's members by transaction or batch, one Coverage per certificate
number (server/roster.py), and member lookup by group + certificate and subscriber id."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from resources.calendar import business_days_after
from server.app import create_app
from server.roster import describe, member_keys
from tests.demo_copy import seed_demo
from tests.server.cases.kit import FHIR, Kit, Parties, make_parties, ok, ref
from tests.smart_helpers import ADMIN, backend_token, bearer

MB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}
CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
MAPLE = "ins-maple-mutual"
ALBION = "ins-albion-health"


def cert_system(payor: str) -> str:
    return f"https://consilium.health/fhir/sid/certificate/{payor}"


def coverage(
    patient: str,
    number: str,
    *,
    payor: str = MAPLE,
    group: str = "GP-ROSTER",
    plan: str = "MM-GCI-PLUS",
    dependent: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Coverage",
        "status": "active",
        "identifier": [{"type": MB, "system": cert_system(payor), "value": number}],
        "subscriberId": number,
        "beneficiary": ref(f"Patient/{patient}"),
        "period": {"start": "2025-01-01", "end": "2030-12-31"},
        "payor": [ref(f"Organization/{payor}")],
        "class": [
            {"type": {"coding": [{"system": CLASS, "code": "group"}]}, "value": group},
            {"type": {"coding": [{"system": CLASS, "code": "plan"}]}, "value": plan},
        ],
    }
    if dependent:
        body["dependent"] = dependent
    return body


def number() -> str:
    return f"R-{uuid.uuid4().hex[:10]}"


@dataclass
class Env:
    http: TestClient
    p: Parties
    kit: Kit
    maple: dict[str, str]  # the insurer's roster client (bound, may write its Coverage)
    albion: dict[str, str]

    def patient(self, clinic: str = "clinic-lakeshore") -> str:
        body = {
            "resourceType": "Patient",
            "name": [{"family": "Roster"}],
            "birthDate": "1980-02-03",
            "managingOrganization": ref(f"Organization/{clinic}"),
        }
        created = ok(
            self.http.post("/fhir/Patient", json=body, headers={**FHIR, **self.p.trusted}), 201
        )
        return str(created["id"])

    def post(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        return self.http.post("/fhir/Coverage", json=body, headers={**FHIR, **headers})

    def bundle(self, kind: str, bodies: list[dict[str, Any]], headers: dict[str, str]) -> Any:
        entries = [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": b,
                "request": {"method": "POST", "url": b["resourceType"]},
            }
            for b in bodies
        ]
        return self.http.post(
            "/fhir",
            json={"resourceType": "Bundle", "type": kind, "entry": entries},
            headers={**FHIR, **headers},
        )

    def search(self, query: str, headers: dict[str, str]) -> list[dict[str, Any]]:
        bundle = ok(self.http.get(f"/fhir/Coverage?{query}", headers=headers))
        return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.fixture(scope="module")
def env(module_settings: Callable[..., Any], mongo_uri: str) -> Iterator[Env]:
    app = create_app(module_settings("roster", auth="on", admin_token=ADMIN))
    seed_demo(app.state.consilium)
    with TestClient(app, base_url="http://testserver") as client:
        parties = make_parties(client)

        def roster(org: str) -> dict[str, str]:
            return bearer(backend_token(client, "system/*.cruds", org=org, role="insurer"))

        yield Env(client, parties, Kit(client, parties), roster(MAPLE), roster(ALBION))
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(app.state.consilium.settings.db_name)
    cleanup.close()
    app.state.consilium.store.close()


# ------------------------------------------------------------------------------ pure keys
@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, [f"Organization/{MAPLE}|{cert_system(MAPLE)}|N1|"]),
        ({"dependent": "02"}, [f"Organization/{MAPLE}|{cert_system(MAPLE)}|N1|02"]),
        ({"payor": ALBION}, [f"Organization/{ALBION}|{cert_system(ALBION)}|N1|"]),
    ],
)
def test_member_key_is_payor_certificate_and_dependent(
    kw: dict[str, Any], expected: list[str]
) -> None:
    assert member_keys(coverage("p", "N1", **kw)) == expected


def test_identifier_not_typed_mb_is_no_certificate() -> None:
    body = coverage("p", "N1")
    del body["identifier"][0]["type"]
    assert member_keys(body) == []


def test_describe_names_the_number_and_insurer() -> None:
    text = describe(member_keys(coverage("p", "N1", dependent="01"))[0])
    assert "'N1'" in text and MAPLE in text and "dependent '01'" in text


# ------------------------------------------------------------------------- roster upload
def test_insurer_loads_its_roster_by_transaction(env: Env) -> None:
    a, b = env.patient(), env.patient()
    na, nb = number(), number()
    r = env.bundle("transaction", [coverage(a, na), coverage(b, nb)], env.maple)
    body = ok(r)
    assert [e["response"]["status"][:3] for e in body["entry"]] == ["201", "201"]
    assert len(env.search(f"identifier={cert_system(MAPLE)}|{na}", env.maple)) == 1


def test_roster_coverage_written_by_the_insurer_is_insurer_held(env: Env) -> None:
    """What the roster writes is evidence of cover: a case on it is not coverage-unverified."""
    patient = env.patient()
    created = ok(env.post(coverage(patient, number()), env.maple), 201)
    case = env.kit.submit(patient, created["id"])
    task = env.kit.task(case)
    assert task["status"] == "accepted", task.get("statusReason")


def test_duplicate_certificate_in_one_transaction_writes_nothing(env: Env) -> None:
    a, b, c = env.patient(), env.patient(), env.patient()
    other, dup = number(), number()
    r = env.bundle(
        "transaction", [coverage(a, other), coverage(b, dup), coverage(c, dup)], env.maple
    )
    assert r.status_code == 409, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "duplicate"
    assert dup in issue["diagnostics"] and "Bundle.entry[2]" in issue["diagnostics"]
    assert env.search(f"identifier={cert_system(MAPLE)}|{other}", env.maple) == []
    assert env.search(f"identifier={cert_system(MAPLE)}|{dup}", env.maple) == []


def test_duplicate_of_a_stored_member_names_the_holder(env: Env) -> None:
    n = number()
    first = ok(env.post(coverage(env.patient(), n), env.maple), 201)
    r = env.post(coverage(env.patient(), n), env.maple)
    assert r.status_code == 409, r.text
    assert f"Coverage/{first['id']}" in r.json()["issue"][0]["diagnostics"]


def test_duplicate_by_put_with_another_id_is_refused(env: Env) -> None:
    n = number()
    ok(env.post(coverage(env.patient(), n), env.maple), 201)
    body = {**coverage(env.patient(), n), "id": f"cov-{uuid.uuid4().hex[:8]}"}
    r = env.http.put(f"/fhir/Coverage/{body['id']}", json=body, headers={**FHIR, **env.maple})
    assert r.status_code == 409, r.text


def test_batch_refuses_only_the_duplicate_entry(env: Env) -> None:
    n = number()
    r = env.bundle(
        "batch",
        [coverage(env.patient(), n), coverage(env.patient(), n), coverage(env.patient(), number())],
        env.maple,
    )
    statuses = [e["response"]["status"][:3] for e in ok(r)["entry"]]
    assert statuses == ["201", "409", "201"]


def test_updating_the_holder_keeps_its_number(env: Env) -> None:
    n = number()
    first = ok(env.post(coverage(env.patient(), n), env.maple), 201)
    first["status"] = "cancelled"
    r = env.http.put(f"/fhir/Coverage/{first['id']}", json=first, headers={**FHIR, **env.maple})
    assert r.status_code == 200, r.text


def test_dependants_share_the_certificate_number(env: Env) -> None:
    n = number()
    ok(env.post(coverage(env.patient(), n), env.maple), 201)
    ok(env.post(coverage(env.patient(), n, dependent="01"), env.maple), 201)
    assert env.post(coverage(env.patient(), n, dependent="01"), env.maple).status_code == 409


def test_same_number_at_another_insurer_is_another_member(env: Env) -> None:
    n = number()
    body = coverage(env.patient(), n)
    ok(env.post(body, env.maple), 201)
    other = coverage(env.patient(), n, payor=ALBION, plan="AH-CORE")
    other["identifier"][0]["system"] = cert_system(MAPLE)  # same system and value
    ok(env.post(other, env.albion), 201)


def test_deleted_holder_frees_its_number(env: Env) -> None:
    n = number()
    first = ok(env.post(coverage(env.patient(), n), env.maple), 201)
    ok(env.http.delete(f"/fhir/Coverage/{first['id']}", headers=env.maple), 204)
    ok(env.post(coverage(env.patient(), n), env.maple), 201)


def test_renumbered_holder_frees_its_old_number(env: Env) -> None:
    n = number()
    first = ok(env.post(coverage(env.patient(), n), env.maple), 201)
    first["identifier"][0]["value"] = number()
    ok(env.http.put(f"/fhir/Coverage/{first['id']}", json=first, headers={**FHIR, **env.maple}))
    ok(env.post(coverage(env.patient(), n), env.maple), 201)


def test_clinic_claim_of_a_number_is_not_refused_and_not_evidence(env: Env) -> None:
    """A clinic's Coverage is a claim, not the roster: no 409 (which would confirm the number
    to the clinic), and the case on it is coverage-unverified."""
    n = number()
    patient = env.patient()
    ok(env.post(coverage(patient, n), env.maple), 201)
    claimed = ok(env.post(coverage(patient, n), env.p.clinic), 201)
    task = env.kit.task(env.kit.submit(patient, claimed["id"]))
    codes = {c["code"] for c in task["statusReason"]["coding"]}
    assert "coverage-unverified" in codes


def test_trusted_feed_loads_plan_patient_and_cover_in_one_transaction(env: Env) -> None:
    plan_code = f"PLAN-{uuid.uuid4().hex[:6]}"
    plan = {
        "resourceType": "InsurancePlan",
        "status": "active",
        "identifier": [{"system": "https://consilium.health/fhir/sid/plan", "value": plan_code}],
        "name": "Roster test plan",
        "ownedBy": ref(f"Organization/{MAPLE}"),
        "coverage": [
            {
                "type": {"text": "Consultation"},
                "benefit": [
                    {
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0336",
                                    "code": "S",
                                }
                            ]
                        },
                        "limit": [
                            {
                                "value": {
                                    "value": 3,
                                    "system": "http://unitsofmeasure.org",
                                    "code": "{opinion}/a",
                                }
                            },
                            {
                                "value": {
                                    "value": 7,
                                    "system": "http://unitsofmeasure.org",
                                    "code": "d",
                                }
                            },
                        ],
                    }
                ],
            }
        ],
    }
    patient = {"resourceType": "Patient", "name": [{"family": "Feed"}], "birthDate": "1975-05-05"}
    cover = coverage("x", number(), plan=plan_code)
    cover["beneficiary"] = ref("urn:uuid:11111111-1111-4111-8111-111111111111")
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": plan,
            "request": {"method": "POST", "url": "InsurancePlan"},
        },
        {
            "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
            "resource": patient,
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": cover,
            "request": {"method": "POST", "url": "Coverage"},
        },
    ]
    r = env.http.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
        headers={**FHIR, **env.p.trusted},
    )
    assert [e["response"]["status"][:3] for e in ok(r)["entry"]] == ["201"] * 3


def test_bound_insurer_cannot_write_plans(env: Env) -> None:
    """Plans are network directory data (auth/policy.py directory-read-only): the insurer's
    trusted feed loads them, its bound roster client loads Coverage."""
    r = env.http.post(
        "/fhir/InsurancePlan",
        json={"resourceType": "InsurancePlan", "status": "active", "name": "x"},
        headers={**FHIR, **env.maple},
    )
    assert r.status_code == 403, r.text


# ------------------------------------------------------------------------------- races
@pytest.mark.parametrize("writers", [2, 6])
def test_concurrent_creates_of_one_certificate_one_wins(env: Env, writers: int) -> None:
    n = number()
    patients = [env.patient() for _ in range(writers)]
    barrier = threading.Barrier(writers)

    def attempt(patient: str) -> int:
        barrier.wait()
        return int(env.post(coverage(patient, n), env.maple).status_code)

    with ThreadPoolExecutor(writers) as pool:
        statuses = list(pool.map(attempt, patients))
    assert statuses.count(201) == 1, statuses
    assert all(s == 409 for s in statuses if s != 201), statuses
    assert len(env.search(f"identifier={cert_system(MAPLE)}|{n}", env.maple)) == 1


def test_concurrent_transactions_of_one_certificate_one_wins(env: Env) -> None:
    n = number()
    barrier = threading.Barrier(3)

    def attempt(_: int) -> int:
        bodies = [coverage(env.patient(), number()), coverage(env.patient(), n)]
        barrier.wait()
        return int(env.bundle("transaction", bodies, env.maple).status_code)

    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(attempt, range(3)))
    assert sorted(statuses) == [200, 409, 409], statuses


# ------------------------------------------------------------------------- member lookup
@pytest.fixture
def member(env: Env) -> tuple[str, str]:
    """(certificate number, Coverage id) of a Maple member of clinic-lakeshore, group GP-LOOK."""
    n = number()
    created = ok(env.post(coverage(env.patient(), n, group="GP-LOOK"), env.maple), 201)
    return n, str(created["id"])


def test_insurer_finds_its_member_by_group_and_certificate(
    env: Env, member: tuple[str, str]
) -> None:
    n, cid = member
    found = env.search(f"class-value=GP-LOOK&identifier={cert_system(MAPLE)}|{n}", env.maple)
    assert [c["id"] for c in found] == [cid]


def test_insurer_finds_its_member_by_subscriber_id(env: Env, member: tuple[str, str]) -> None:
    n, cid = member
    assert [c["id"] for c in env.search(f"subscriber-id={n}", env.p.insurer)] == [cid]


def test_subscriber_id_is_an_exact_match(env: Env, member: tuple[str, str]) -> None:
    n, _ = member
    assert env.search(f"subscriber-id={n[:-1]}", env.p.insurer) == []


def test_wrong_group_finds_nobody(env: Env, member: tuple[str, str]) -> None:
    n, _ = member
    assert (
        env.search(f"class-value:exact=GP-OTHER&identifier={cert_system(MAPLE)}|{n}", env.maple)
        == []
    )


@pytest.mark.parametrize(
    "query", ["subscriber-id={n}", "identifier={system}|{n}", "identifier={n}"]
)
def test_another_insurers_member_is_an_empty_result(
    env: Env, member: tuple[str, str], query: str
) -> None:
    n, _ = member
    q = query.format(n=n, system=cert_system(MAPLE))
    assert env.search(q, env.p.insurer_b) == []


def test_clinic_finds_its_patients_cover_by_certificate(env: Env, member: tuple[str, str]) -> None:
    n, cid = member
    assert [c["id"] for c in env.search(f"subscriber-id={n}", env.p.clinic)] == [cid]


def test_clinic_does_not_find_another_clinics_member(env: Env, member: tuple[str, str]) -> None:
    n, _ = member
    assert env.search(f"subscriber-id={n}", env.p.clinic_b) == []


def test_seeded_member_found_by_group_and_certificate(env: Env) -> None:
    found = env.search(
        f"class-value:exact=GP-40213&identifier={cert_system(MAPLE)}|MM-40213-0007", env.p.insurer
    )
    assert [c["id"] for c in found] == ["cov-tremblay"]


def test_capability_statement_publishes_subscriber_id(env: Env) -> None:
    statement = ok(env.http.get("/fhir/metadata"))
    cov = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Coverage")
    assert {
        "name": "subscriber-id",
        "definition": "https://consilium.health/fhir/SearchParameter/Coverage-subscriber-id",
        "type": "token",
    } in cov["searchParam"]


def _class_benefit(allowance: int, turnaround: int) -> dict[str, Any]:
    ucum = "http://unitsofmeasure.org"
    return {
        "url": "https://consilium.health/fhir/StructureDefinition/second-opinion-benefit",
        "extension": [
            {
                "url": "allowance",
                "valueQuantity": {"value": allowance, "system": ucum, "code": "{opinion}/a"},
            },
            {
                "url": "turnaround",
                "valueQuantity": {"value": turnaround, "system": ucum, "code": "d"},
            },
        ],
    }


def test_roster_cover_carries_its_benefit_on_the_plan_class(env: Env) -> None:
    """No InsurancePlan for the plan code: the allowance and turnaround on the class decide."""
    patient = env.patient()
    body = coverage(patient, number(), plan=f"ROSTER-{uuid.uuid4().hex[:6]}")
    body["class"][1]["extension"] = [_class_benefit(3, 4)]
    created = ok(env.bundle("transaction", [body], env.maple))["entry"][0]
    cid = created["response"]["location"].split("/")[-3]
    answer = ok(
        env.http.post(
            "/fhir/CoverageEligibilityRequest/$submit",
            json={
                "resourceType": "CoverageEligibilityRequest",
                "status": "active",
                "purpose": ["benefits"],
                "created": "2026-12-01",
                "patient": ref(f"Patient/{patient}"),
                "insurer": ref(f"Organization/{MAPLE}"),
                "insurance": [{"coverage": ref(f"Coverage/{cid}")}],
            },
            headers={**FHIR, **env.maple},
        )
    )
    item = answer["insurance"][0]["item"][0]
    assert item["excluded"] is False
    assert item["benefit"][0]["allowedUnsignedInt"] == 3
    assert item["description"] == "Report within 4 business days"


def test_class_carried_turnaround_sets_the_case_due_date(env: Env) -> None:
    patient = env.patient()
    body = coverage(patient, number(), plan=f"ROSTER-{uuid.uuid4().hex[:6]}")
    body["class"][1]["extension"] = [_class_benefit(1, 3)]
    cid = ok(env.post(body, env.maple), 201)["id"]
    task = env.kit.task(env.kit.submit(patient, cid))
    assert task["status"] == "accepted", task.get("statusReason")
    start = task["authoredOn"][:10]
    end = task["restriction"]["period"]["end"]
    assert end == business_days_after(date.fromisoformat(start), 3).isoformat()


def test_without_plan_or_class_benefit_the_benefit_is_not_included(env: Env) -> None:
    patient = env.patient()
    cid = ok(env.post(coverage(patient, number(), plan="NO-SUCH-PLAN"), env.maple), 201)["id"]
    task = env.kit.task(env.kit.submit(patient, cid))
    assert "benefit-not-included" in {c["code"] for c in task["statusReason"]["coding"]}
