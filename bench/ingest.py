"""Ingest benchmark: transaction Bundles of realistic patient files vs raw pymongo inserts.

Prints, for bundles of ~100 and ~1,000 entries: resources/s and p95 seconds per bundle through
``POST /fhir`` (in-process ASGI client, full pipeline: validation, hooks, index extraction,
history, referential integrity, one MongoDB transaction per bundle), and the raw baseline of
inserting the same stored resource documents with pymongo ``insert_many`` in one transaction,
against the same embedded SecantusDB in the same run, and the ratio of the two.

    .venv/bin/python bench/ingest.py [--bundles-100 N] [--bundles-1000 N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pymongo import MongoClient
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient_file(n_entries: int, seq: int) -> dict[str, Any]:
    """One patient's record: encounters, conditions, vitals and labs, medications, reports."""
    entries: list[dict[str, Any]] = []

    def add(resource: dict[str, Any]) -> str:
        full = urn()
        entries.append(
            {
                "fullUrl": full,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
        return full

    pat = add(
        {
            "resourceType": "Patient",
            "identifier": [
                {
                    "system": "urn:oid:2.16.840.1.113883.4.1",
                    "value": f"bench-{seq}-{uuid.uuid4().hex[:8]}",
                }
            ],
            "name": [{"family": "Okafor", "given": ["Adaeze", "N"]}],
            "gender": "female",
            "birthDate": "1971-04-12",
            "address": [
                {"line": ["12 High St"], "city": "Leeds", "postalCode": "LS1 4AP", "country": "GB"}
            ],
        }
    )
    i = 0
    encounter = None
    while len(entries) < n_entries:
        kind = i % 10
        if kind == 0:
            encounter = add(
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "subject": {"reference": pat},
                    "period": {
                        "start": f"2024-{1 + i % 12:02d}-10T09:00:00Z",
                        "end": f"2024-{1 + i % 12:02d}-10T09:30:00Z",
                    },
                }
            )
        elif kind == 1:
            add(
                {
                    "resourceType": "Condition",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {
                        "coding": [
                            {
                                "system": "http://snomed.info/sct",
                                "code": "363346000",
                                "display": "Malignant neoplastic disease",
                            }
                        ]
                    },
                    "subject": {"reference": pat},
                    "encounter": {"reference": encounter},
                    "onsetDateTime": "2024-01-10",
                }
            )
        elif kind == 2:
            add(
                {
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                "code": "197361",
                                "display": "Amlodipine 5 MG",
                            }
                        ]
                    },
                    "subject": {"reference": pat},
                    "encounter": {"reference": encounter},
                    "authoredOn": "2024-01-10",
                }
            )
        elif kind == 3:
            obs = add(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "laboratory",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [
                            {"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}
                        ]
                    },
                    "subject": {"reference": pat},
                    "encounter": {"reference": encounter},
                    "effectiveDateTime": "2024-01-10T09:10:00Z",
                    "valueQuantity": {
                        "value": 13.2,
                        "unit": "g/dL",
                        "system": "http://unitsofmeasure.org",
                        "code": "g/dL",
                    },
                }
            )
            add(
                {
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "code": {
                        "coding": [
                            {
                                "system": "http://loinc.org",
                                "code": "58410-2",
                                "display": "CBC panel",
                            }
                        ]
                    },
                    "subject": {"reference": pat},
                    "encounter": {"reference": encounter},
                    "result": [{"reference": obs}],
                    "conclusion": "Within normal limits",
                }
            )
        else:
            add(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [
                            {
                                "system": "http://loinc.org",
                                "code": "8867-4",
                                "display": "Heart rate",
                            }
                        ]
                    },
                    "subject": {"reference": pat},
                    "encounter": {"reference": encounter},
                    "effectiveDateTime": "2024-01-10T09:05:00Z",
                    "valueQuantity": {
                        "value": 60 + i % 40,
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                }
            )
        i += 1
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries[:n_entries]}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _txn(client: MongoClient[dict[str, Any]], work: Any) -> float:
    start = time.perf_counter()
    with client.start_session() as session:
        session.with_transaction(
            work, read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority")
        )
    return time.perf_counter() - start


def raw_bare(
    client: MongoClient[dict[str, Any]], db_name: str, resources: list[dict[str, Any]]
) -> float:
    """The bundle's resources as plain documents into unindexed collections: the floor."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in resources:
        doc = dict(r)
        doc["id"] = str(uuid.uuid4())
        by_type[r["resourceType"]].append({"_id": doc["id"], "resource": doc})
    db = client[db_name]

    def work(s: Any) -> None:
        for rtype, docs in by_type.items():
            db[f"bare_{rtype}"].insert_many(docs, session=s)

    return _txn(client, work)


def _shadow(db: Any, name: str, made: set[str]) -> Any:
    """``shadow_<name>`` with the same secondary indexes as the server's collection."""
    target = db[f"shadow_{name}"]
    if name not in made:
        for index_name, info in db[name].index_information().items():
            if index_name == "_id_":
                continue
            opts = {
                k: info[k] for k in ("unique", "sparse", "partialFilterExpression") if k in info
            }
            target.create_index(info["key"], name=index_name, **opts)
        made.add(name)
    return target


def raw_same(
    client: MongoClient[dict[str, Any]], db_name: str, response: dict[str, Any], made: set[str]
) -> float:
    """Exactly the documents the server stored for this bundle (current versions with their
    search index values, and history), re-inserted with pymongo in one transaction into
    collections with the same indexes: what the database itself costs."""
    db = client[db_name]
    keys = [e["response"]["location"].split("/_history/")[0] for e in response["entry"]]
    by_type: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        t, _, i = k.partition("/")
        by_type[t].append(i)
    docs: dict[str, list[dict[str, Any]]] = {}
    for t, ids in by_type.items():
        docs[t] = list(db[t].find({"_id": {"$in": ids}}))
    docs["_history"] = list(db["_history"].find({"_id": {"$in": [f"{k}/1" for k in keys]}}))
    for batch in docs.values():
        for d in batch:
            d["_id"] = f"{d['_id']}~{uuid.uuid4().hex[:8]}"
    colls = {name: _shadow(db, name, made) for name in docs}

    def work(s: Any) -> None:
        for name, batch in docs.items():
            colls[name].insert_many(batch, session=s)

    return _txn(client, work)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundles-100", type=int, default=20)
    ap.add_argument("--bundles-1000", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="consilium-bench-"))
    db = EmbeddedDatabase(tmp / "db")
    db.start()
    try:
        settings = Settings(
            mongodb_uri=db.uri,
            db_name="bench",
            auth="off",
            audit="off",
            data_dir=tmp / "data",
            max_body_bytes=64 * 1024 * 1024,
        )
        app = create_app(settings)
        raw_client: MongoClient[dict[str, Any]] = MongoClient(db.uri)
        with TestClient(app) as client:
            # warm-up: create collections and indexes outside the measurement
            warm = patient_file(60, -1)
            assert (
                client.post(
                    "/fhir", json=warm, headers={"Content-Type": "application/fhir+json"}
                ).status_code
                == 200
            )
            raw_bare(raw_client, "bench", [e["resource"] for e in warm["entry"]])
            made: set[str] = set()
            print("raw-same: the server's stored documents re-inserted into identically indexed")
            print("collections (the target's baseline); raw-bare: resources into bare collections")
            print(
                f"{'entries':>7} {'n':>3} {'server r/s':>10} {'p95 s':>7} "
                f"{'same r/s':>9} {'p95 s':>7} {'ratio':>6} {'bare r/s':>9} {'p95 s':>7} {'ratio':>6}"
            )
            for size, count in ((100, args.bundles_100), (1000, args.bundles_1000)):
                server_t: list[float] = []
                same_t: list[float] = []
                bare_t: list[float] = []
                for n in range(count):
                    body = patient_file(size, n)
                    start = time.perf_counter()
                    r = client.post(
                        "/fhir",
                        json=body,
                        headers={
                            "Content-Type": "application/fhir+json",
                            "Prefer": "return=minimal",
                        },
                    )
                    server_t.append(time.perf_counter() - start)
                    if r.status_code != 200:
                        raise SystemExit(f"bundle failed: {r.status_code} {r.text[:500]}")
                    same_t.append(raw_same(raw_client, "bench", r.json(), made))
                    bare_t.append(
                        raw_bare(raw_client, "bench", [e["resource"] for e in body["entry"]])
                    )
                srv = size * count / sum(server_t)
                same = size * count / sum(same_t)
                bare = size * count / sum(bare_t)
                print(
                    f"{size:>7} {count:>3} {srv:>10.0f} {p95(server_t):>7.3f} "
                    f"{same:>9.0f} {p95(same_t):>7.3f} {srv / same:>6.2f} "
                    f"{bare:>9.0f} {p95(bare_t):>7.3f} {srv / bare:>6.2f}"
                )
                print(
                    f"{'':>11}median per bundle: server {statistics.median(server_t):.3f}s, "
                    f"raw-same {statistics.median(same_t):.3f}s, raw-bare {statistics.median(bare_t):.3f}s"
                )
        raw_client.close()
    finally:
        db.stop()


if __name__ == "__main__":
    main()
