"""Large-resource benchmark: storing 0.1, 1 and 5 MB resources with PUT vs a raw pymongo insert.

For each size it prints the seconds and s/MB of ``PUT /fhir/Bundle/<id>`` (a collection Bundle
of realistic lab results, in-process ASGI client, full pipeline: body parsing, validation, hooks,
referential integrity, index extraction, current + history documents), of ``PUT`` of a Binary of
that size (one big base64 string), of the refusal of an invalid Bundle of that size (one bad
entry at the end: the whole body is walked), and the raw baseline of inserting the same stored
document with pymongo ``insert_one`` into the same embedded SecantusDB in the same run.

    .venv/bin/python bench/large_resources.py [--sizes 0.1,1,5] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import json
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pymongo import MongoClient

from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase
from server.repository import Repository

FHIR_JSON = {"Content-Type": "application/fhir+json"}
MB = 1_000_000


def observation(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
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
            "coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]
        },
        "subject": {"reference": "Patient/bench", "display": "Sean Stover, BS,\u00a0DVM"},
        "effectiveDateTime": f"2024-{1 + i % 12:02d}-10T09:10:00Z",
        "valueQuantity": {
            "value": 10 + (i % 70) / 10,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
        "interpretation": [{"text": "normal"}],
        "note": [{"text": f"sample {i}: drawn fasting, repeat in 3 months"}],
    }


def collection(size: float, rid: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    total = 60
    while total < size * MB:
        e = {"fullUrl": f"urn:uuid:{rid}-{len(entries)}", "resource": observation(len(entries))}
        total += len(json.dumps(e)) + 1
        entries.append(e)
    return {"resourceType": "Bundle", "id": rid, "type": "collection", "entry": entries}


def binary(size: float, rid: str) -> dict[str, Any]:
    data = base64.b64encode(os.urandom(int(size * MB * 3 / 4))).decode()
    return {"resourceType": "Binary", "id": rid, "contentType": "application/pdf", "data": data}


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0.1,1,5")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile one 1 MB Bundle PUT")
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
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
            max_body_bytes=64 * MB,
        )
        app = create_app(settings)
        raw: MongoClient[dict[str, Any]] = MongoClient(db.uri)
        raw_coll = raw["bench"]["raw_large"]
        with TestClient(app) as client:
            assert client.put(
                "/fhir/Patient/bench",
                content=json.dumps({"resourceType": "Patient", "id": "bench"}),
                headers=FHIR_JSON,
            ).status_code in (200, 201)
            if args.profile:  # Repository.update runs in a worker thread: profile it there
                prof = cProfile.Profile()
                update = Repository.update

                def profiled(self: Repository, *a: Any, **kw: Any) -> Any:
                    return prof.runcall(update, self, *a, **kw)

                Repository.update = profiled  # type: ignore[method-assign]
                body = json.dumps(collection(1, "prof"))
                seconds = timed(
                    lambda: client.put("/fhir/Bundle/prof", content=body, headers=FHIR_JSON)
                )
                print(f"PUT 1 MB Bundle: {seconds:.2f} s")
                Repository.update = update  # type: ignore[method-assign]
                pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
                return
            print(f"{'what':<28}{'MB':>6}{'seconds':>10}{'s/MB':>8}{'raw s':>9}{'ratio':>7}")
            seq = 0
            for size in sizes:
                for kind, make in (("PUT collection Bundle", collection), ("PUT Binary", binary)):
                    times, raws, mbs = [], [], 0.0
                    for _ in range(args.rounds):
                        seq += 1
                        res = make(size, f"b{seq}")
                        body = json.dumps(res)
                        mbs = len(body.encode()) / MB
                        url = f"/fhir/{res['resourceType']}/{res['id']}"

                        def put(url: str = url, body: str = body) -> None:
                            r = client.put(url, content=body, headers=FHIR_JSON)
                            assert r.status_code == 201, r.text[:300]

                        times.append(timed(put))
                        stored = dict(json.loads(body), id=f"raw{seq}")
                        doc = {"_id": f"raw{seq}", "vid": 1, "resource": stored}
                        raws.append(timed(lambda doc=doc: raw_coll.insert_one(doc)))
                    t, rt = statistics.median(times), statistics.median(raws)
                    print(f"{kind:<28}{mbs:>6.2f}{t:>10.2f}{t / mbs:>8.2f}{rt:>9.2f}{t / rt:>7.1f}")
                times = []
                for _ in range(args.rounds):
                    seq += 1
                    bad = collection(size, f"x{seq}")
                    bad["entry"][-1]["resource"]["status"] = "not-a-status"
                    body = json.dumps(bad)
                    mbs = len(body.encode()) / MB

                    def refuse(body: str = body, seq: int = seq) -> None:
                        r = client.put(f"/fhir/Bundle/x{seq}", content=body, headers=FHIR_JSON)
                        assert r.status_code == 400, r.text[:300]

                    times.append(timed(refuse))
                t = statistics.median(times)
                print(f"{'refuse invalid Bundle':<28}{mbs:>6.2f}{t:>10.2f}{t / mbs:>8.2f}")
        raw.close()
    finally:
        db.stop()


if __name__ == "__main__":
    main()
