"""Case-engine benchmark: what opening and moving a second-opinion case costs.

In one run, on one embedded SecantusDB, in-process ASGI client (authorization off, so the figures
are the engine's, not the token check's):

* ``submit case``: the clinic's transaction Bundle (Condition, Observation, second-opinion
  ServiceRequest) — the server also opens the Task, decides eligibility (stores the
  CoverageEligibilityRequest + Response), matches an expert and writes three Provenance
  records, all in the same transaction;
* ``same bundle, no case``: the identical Bundle whose ServiceRequest is an ordinary referral
  (no second-opinion reason), i.e. the transaction without the engine;
* ``raw pymongo``: inserting the three resources' documents with pymongo, the floor;
* ``pull + final report``: the expert's ``$case-bundle`` (starts the review) then the final
  report (completes Task and request), per case.

    .venv/bin/python bench/case_flow.py [--cases 200]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests.* too

from fastapi.testclient import TestClient
from pymongo import MongoClient

from seed.loader import seed_all
from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase
from tests.server.cases.kit import FHIR

CSC = "https://consilium.health/fhir/CodeSystem/covered-serious-conditions"


def timed(n: int, call: Callable[[int], None]) -> tuple[float, list[float]]:
    laps: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        call(i)
        laps.append((time.perf_counter() - t) * 1000)
    return time.perf_counter() - start, laps


def line(name: str, n: int, seconds: float, laps: list[float], unit: str = "req/s") -> str:
    ordered = sorted(laps)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{name:<28} {n / seconds:8.1f} {unit}   p50 {statistics.median(laps):7.2f} ms   "
        f"p95 {p95:7.2f} ms   n={n}"
    )


def member(client: TestClient) -> tuple[str, str]:
    patient = client.post(
        "/fhir/Patient",
        json={
            "resourceType": "Patient",
            "name": [{"family": "Bench"}],
            "managingOrganization": {"reference": "Organization/clinic-lakeshore"},
        },
        headers=FHIR,
    ).json()["id"]
    coverage = client.post(
        "/fhir/Coverage",
        json={
            "resourceType": "Coverage",
            "status": "active",
            "identifier": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "MB",
                            }
                        ]
                    },
                    "value": uuid.uuid4().hex,
                }
            ],
            "beneficiary": {"reference": f"Patient/{patient}"},
            "period": {"start": "2025-01-01", "end": "2030-12-31"},
            "payor": [{"reference": "Organization/ins-maple-mutual"}],
            "class": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                "code": c,
                            }
                        ]
                    },
                    "value": v,
                }
                for c, v in (("group", "GP-1"), ("plan", "MM-GCI-PLUS"))
            ],
        },
        headers=FHIR,
    ).json()["id"]
    return patient, coverage


def case_bundle(patient: str, coverage: str, *, second_opinion: bool) -> dict[str, Any]:
    from tests.server.cases.kit import Kit, Parties

    bundle = Kit.bundle(Kit(None, Parties({}, {}, {}, {}, {}, {})), patient, coverage)  # type: ignore[arg-type]
    if not second_opinion:
        sr = bundle["entry"][0]["resource"]
        sr.pop("meta")
        sr["reasonCode"] = [{"coding": [{"system": CSC, "code": "cancer"}]}]
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    n = args.cases
    with tempfile.TemporaryDirectory() as tmp:
        db = EmbeddedDatabase(Path(tmp) / "db")
        db.start()
        try:
            settings = Settings(
                mongodb_uri=db.uri,
                db_name="bench",
                data_dir=Path(tmp) / "data",
                auth="off",
                audit="off",
            )  # type: ignore[call-arg]
            app = create_app(settings)
            seed_all(app.state.consilium, demo=True, network=False)
            with TestClient(app) as client:
                members = [member(client) for _ in range(n)]
                requests: list[str] = []

                def submit(i: int) -> None:
                    r = client.post(
                        "/fhir", json=case_bundle(*members[i], second_opinion=True), headers=FHIR
                    )
                    assert r.status_code == 200, r.text
                    requests.append(r.json()["entry"][0]["response"]["location"].split("/")[-3])

                def plain(i: int) -> None:
                    r = client.post(
                        "/fhir", json=case_bundle(*members[i], second_opinion=False), headers=FHIR
                    )
                    assert r.status_code == 200, r.text

                raw_db = MongoClient(db.uri)["bench_raw"]
                docs = [
                    copy.deepcopy(e["resource"])
                    for e in case_bundle(*members[0], second_opinion=True)["entry"]
                ]

                def raw(i: int) -> None:
                    for d in docs:
                        raw_db[d["resourceType"]].insert_one(
                            {"_id": uuid.uuid4().hex, "resource": d}
                        )

                def review(i: int) -> None:
                    sr = requests[i]
                    assert client.get(f"/fhir/ServiceRequest/{sr}/$case-bundle").status_code == 200
                    report = {
                        "resourceType": "DiagnosticReport",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
                        "basedOn": [{"reference": f"ServiceRequest/{sr}"}],
                        "subject": {"reference": f"Patient/{members[i][0]}"},
                        "performer": [{"reference": "PractitionerRole/exp-oncology-ca"}],
                        "conclusionCode": [
                            {
                                "coding": [
                                    {
                                        "system": "https://consilium.health/fhir/CodeSystem/second-opinion-outcome",
                                        "code": "confirm-diagnosis",
                                    }
                                ]
                            }
                        ],
                    }
                    r = client.post("/fhir/DiagnosticReport", json=report, headers=FHIR)
                    assert r.status_code == 201, r.text

                for name, call in (
                    ("submit case (engine)", submit),
                    ("same bundle, no case", plain),
                    ("raw pymongo, 3 inserts", raw),
                    ("pull + final report", review),
                ):
                    seconds, laps = timed(n, call)
                    print(line(name, n, seconds, laps))
                raw_db.client.close()
        finally:
            db.stop()


if __name__ == "__main__":
    main()
