"""Search latency per query shape at growing data sizes (p50/p95), on the embedded SecantusDB.

Usage: .venv/bin/python bench/search.py [--sizes 10000,100000] [--reps 40]

Data: ``bench/datagen.py`` (patients with coverage, conditions, lab observations, reports and
second-opinion requests). It is loaded with bulk ``insert_many`` of documents built by the
server's own index extraction — not through HTTP, which would take hours on the pure-Python
database — into the collections of a real app (so the app's indexes exist first). Sizes are
loaded incrementally (the 100k set extends the 10k set). Each query goes through the whole
FastAPI stack in-process (Starlette TestClient: no socket), first page only, ``_count=20``.
Targets: p95 < 50 ms for indexed single-page searches at 100k; 100k latency <= 1.5x 10k.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from bench.datagen import LABS, MRN, document, resources
from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase
from server.timeutil import now

Shape = tuple[str, Callable[[random.Random, int], str]]


def _pid(r: random.Random, n: int) -> int:
    return r.randrange(n)


def _two_days(r: random.Random) -> str:
    year, day = r.randint(2020, 2024), r.randint(10, 17)
    return (
        f"Observation?code={r.choice(LABS)[0]}&date=ge{year}-03-{day}"
        f"&date=lt{year}-03-{day + 2}&_sort=-date"
    )


SHAPES: list[Shape] = [
    ("Patient?identifier", lambda r, n: f"Patient?identifier={MRN}|MRN{_pid(r, n):08d}"),
    ("Patient?_id", lambda r, n: f"Patient?_id=pat-{_pid(r, n)}"),
    ("Patient?family (prefix)", lambda r, n: f"Patient?family=okafor{_pid(r, n) % 97}"),
    (
        "Patient?birthdate (day)",
        lambda r, n: (
            f"Patient?birthdate=19{r.randint(40, 99)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}"
        ),
    ),
    ("Observation?patient", lambda r, n: f"Observation?patient=pat-{_pid(r, n)}"),
    (
        "Observation?patient+status",
        lambda r, n: f"Observation?patient=pat-{_pid(r, n)}&status=final",
    ),
    (
        "Observation?patient+code",
        lambda r, n: (
            f"Observation?patient=pat-{_pid(r, n)}&code=http://loinc.org|{r.choice(LABS)[0]}"
        ),
    ),
    (
        "Observation?code+date (day)",
        lambda r, n: (
            f"Observation?code=http://loinc.org|{r.choice(LABS)[0]}&date=202{r.randint(0, 4)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}"
        ),
    ),
    (
        "Observation?code+date (2-day range)",
        lambda r, n: _two_days(r),
    ),
    (
        "Observation?patient&_sort=-date",
        lambda r, n: f"Observation?subject=Patient/pat-{_pid(r, n)}&_sort=-date",
    ),
    (
        "Condition?patient+clinical-status",
        lambda r, n: f"Condition?patient=pat-{_pid(r, n)}&clinical-status=active",
    ),
    ("Coverage?identifier", lambda r, n: f"Coverage?identifier=CERT{_pid(r, n):08d}"),
    (
        "ServiceRequest?patient+status",
        lambda r, n: f"ServiceRequest?patient=pat-{_pid(r, n)}&status=active",
    ),
    (
        "DiagnosticReport?subject+_include",
        lambda r, n: (
            f"DiagnosticReport?subject=Patient/pat-{_pid(r, n)}&_include=DiagnosticReport:result"
        ),
    ),
    ("Patient/x/Observation (compartment)", lambda r, n: f"Patient/pat-{_pid(r, n)}/Observation"),
    (
        "Observation?subject.identifier (chain)",
        lambda r, n: f"Observation?subject:Patient.identifier={MRN}|MRN{_pid(r, n):08d}",
    ),
    (
        "Patient?_has:Coverage:beneficiary:identifier",
        lambda r, n: f"Patient?_has:Coverage:beneficiary:identifier=CERT{_pid(r, n):08d}",
    ),
]


def load(app: Any, items: Iterator[dict[str, Any]], count: int) -> tuple[int, int]:
    """Bulk-insert ``count`` resources from ``items``; returns (resources, patients) loaded."""
    store = app.state.consilium.store
    batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    loaded = patients = 0
    for res in items:
        batches[res["resourceType"]].append(document(res, now()))
        patients += res["resourceType"] == "Patient"
        loaded += 1
        batch = batches[res["resourceType"]]
        if len(batch) >= 500:
            store.resources(res["resourceType"]).insert_many(batch, ordered=False)
            batch.clear()
        if loaded % 10_000 == 0:
            print(f"   ... {loaded} loaded", flush=True)
        if loaded >= count:
            break
    for rtype, batch in batches.items():
        if batch:
            store.resources(rtype).insert_many(batch, ordered=False)
    return loaded, patients


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated resource counts")
    ap.add_argument("--reps", type=int, default=40, help="queries per shape per size")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results: dict[str, dict[int, tuple[float, float, float]]] = defaultdict(dict)
    with tempfile.TemporaryDirectory() as tmp:
        db = EmbeddedDatabase(Path(tmp) / "db")
        db.start()
        try:
            settings = Settings(  # type: ignore[call-arg]
                mongodb_uri=db.uri,
                db_name="bench_search",
                data_dir=Path(tmp) / "data",
                auth="off",
                audit="off",
            )
            app = create_app(settings)
            items = resources(max(sizes))
            total = patients = 0
            with TestClient(app) as client:
                for size in sizes:
                    t0 = time.perf_counter()
                    n, p = load(app, items, size - total)
                    total, patients = total + n, patients + p
                    print(
                        f"\n== {total} resources ({patients} patients), bulk-loaded in "
                        f"{time.perf_counter() - t0:.0f} s",
                        flush=True,
                    )
                    rnd = random.Random(size)
                    for name, make in SHAPES:
                        times: list[float] = []
                        hits: list[int] = []
                        client.get("/fhir/" + make(rnd, patients))  # warm-up
                        for _ in range(args.reps):
                            url = "/fhir/" + make(rnd, patients)
                            t = time.perf_counter()
                            r = client.get(url)
                            times.append((time.perf_counter() - t) * 1000)
                            assert r.status_code == 200, (url, r.text[:300])
                            hits.append(r.json().get("total", 0))
                        p50, p95 = statistics.median(times), pct(times, 95)
                        results[name][size] = (p50, p95, statistics.mean(hits))
                        print(
                            f"{name:<46} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
                            f"(mean matches {statistics.mean(hits):.1f})",
                            flush=True,
                        )
        finally:
            db.stop()
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        print(f"\n== p95 ratio {hi} / {lo}")
        for name, by_size in results.items():
            ratio = by_size[hi][1] / by_size[lo][1] if by_size[lo][1] else float("nan")
            print(f"{name:<46} {ratio:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
