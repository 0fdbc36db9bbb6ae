"""Search latency per query shape at growing data sizes (p50/p95), against a raw baseline.

Usage: .venv/bin/python bench/search.py [--sizes 10000,100000] [--reps 40] [--data-dir D]

Data: ``bench/datagen.py`` (patients with coverage, conditions, lab observations, reports and
second-opinion requests). It is loaded with bulk ``insert_many`` of documents built by the
server's own index extraction — not through HTTP, which would take hours on the pure-Python
database — into the collections of a real app (so the app's indexes exist first). Each size has
its own database directory; a larger size starts from a copy of the smaller one and extends it.
With ``--data-dir`` the loaded directories are kept and reused by later runs.

Measurement: the database is restarted on the loaded data first, so the figures are those of a
server holding N resources, not of one still flushing a bulk load (a WiredTiger checkpoint of
the fresh load otherwise competes for the 2 cores). Each query goes through the whole FastAPI
stack in-process (Starlette TestClient: no socket), first page only, ``_count=20``. The raw
baseline replays the very ``find`` commands that request sent (recorded by a pymongo
CommandListener) from a bare FastAPI endpoint that returns the found resources as JSON: the
ratio is what the FHIR layer (parsing, planning, access checks, Bundle) adds to the database
work. Every size is measured twice: with auth off, and with auth on as the clinic that treats
the query's patient (its access filter applied to every query). Targets: p95 < 50 ms for
indexed single-page searches at 100k; 100k p95 <= 1.5x 10k.
"""

from __future__ import annotations

import argparse
import itertools
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.testclient import TestClient
from pymongo import MongoClient

import server.database
from auth.keys import KeyStore
from auth.tokens import issue_access_token
from bench.common import FindRecorder
from bench.datagen import CLINICS, LABS, MRN, clinic_of, document, resources
from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase
from server.repository import Repository
from server.storage import Documents
from server.timeutil import now

Shape = tuple[str, Callable[[random.Random, int], str]]
DB_NAME = "bench_search"


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
    """Bulk-insert ``count`` resources from ``items``; returns (resources, patients) loaded.

    Current documents only (searches never read history), through ``Repository.load_documents``.
    """
    state = app.state.consilium
    repo = Repository(state.store, state.hooks)
    batches: dict[str, list[Documents]] = defaultdict(list)
    loaded = patients = 0
    for res in items:
        batches[res["resourceType"]].append(document(res, now()))
        patients += res["resourceType"] == "Patient"
        loaded += 1
        batch = batches[res["resourceType"]]
        if len(batch) >= 500:
            repo.load_documents(res["resourceType"], batch, history=False)
            batch.clear()
        if loaded % 10_000 == 0:
            print(f"   ... {loaded} loaded", flush=True)
        if loaded >= count:
            break
    for rtype, batch in batches.items():
        if batch:
            repo.load_documents(rtype, batch, history=False)
    return loaded, patients


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def raw_app(uri: str, db_name: str, replays: list[list[dict[str, Any]]]) -> FastAPI:
    """Bare FastAPI + pymongo: run request ``n``'s recorded finds, return the resources."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    db = client[db_name]
    app = FastAPI()

    @app.get("/raw/{n}")
    def replay(n: int) -> Response:
        out: list[Any] = []
        for cmd in replays[n]:
            cursor = db[cmd["find"]].find(cmd.get("filter", {}), cmd.get("projection"))
            if cmd.get("sort"):
                cursor = cursor.sort(list(cmd["sort"].items()))
            if cmd.get("limit"):
                cursor = cursor.limit(cmd["limit"])
            out += [d.get("resource", d.get("_id")) for d in cursor]
        return Response(orjson.dumps(out, default=str), media_type="application/json")

    return app


def prepare(data_dir: Path, size: int, smaller: Path | None) -> tuple[Path, int]:
    """A database directory holding ``size`` resources: reused, or copied from ``smaller``
    and extended. Returns it and its number of patients."""
    target = data_dir / str(size)
    marker = target / "loaded.json"
    if marker.exists():
        return target, int(orjson.loads(marker.read_bytes())["patients"])
    shutil.rmtree(target, ignore_errors=True)
    have = patients = 0
    if smaller is not None:
        shutil.copytree(smaller, target)
        done = orjson.loads((target / "loaded.json").read_bytes())
        (target / "loaded.json").unlink()
        have, patients = int(done["resources"]), int(done["patients"])
    items = itertools.islice(resources(size), have, None)
    t0 = time.perf_counter()
    with EmbeddedDatabase(target / "db") as db:
        app = create_app(_settings(db.uri, target))
        with TestClient(app):
            n, p = load(app, items, size - have)
        app.state.consilium.store.close()
    print(f"   loaded {have + n} resources in {time.perf_counter() - t0:.0f} s", flush=True)
    marker.write_bytes(orjson.dumps({"resources": have + n, "patients": patients + p}))
    return target, patients + p


def _settings(uri: str, where: Path, auth: Literal["on", "off"] = "off") -> Settings:
    return Settings(
        mongodb_uri=uri, db_name=DB_NAME, data_dir=where / "data", auth=auth, audit="off"
    )


Row = dict[str, tuple[float, float, float, float]]  # shape -> (p50, p95, raw p95, matches)


_PATIENT_IN_URL = re.compile(r"(?:pat-|MRN|CERT)(\d+)")


def _clinic_headers(keys: KeyStore) -> Callable[[str, random.Random], dict[str, str]]:
    """A bearer token of the clinic that treats the URL's patient (a random clinic otherwise)."""
    tokens: dict[str, str] = {}

    def headers(url: str, rnd: random.Random) -> dict[str, str]:
        m = _PATIENT_IN_URL.search(url)
        clinic = clinic_of(int(m.group(1)) if m else rnd.randrange(CLINICS))
        if clinic not in tokens:
            tokens[clinic], _ = issue_access_token(
                keys,
                issuer="http://testserver/fhir",
                client_id="bench",
                scopes=["system/*.rs"],
                lifetime=3600,
                binding={"org": clinic, "role": "clinic"},
            )
        return {"Authorization": f"Bearer {tokens[clinic]}"}

    return headers


def measure(where: Path, patients: int, size: int, reps: int, *, as_clinic: bool) -> Row:
    """p50/p95 per shape; ``as_clinic``: with auth on, as the clinic treating the patient."""
    recorder = FindRecorder()
    real = getattr(server.database, "MongoClient")  # noqa: B009
    row: Row = {}
    with EmbeddedDatabase(where / "db") as db:
        with listening(real, recorder):
            app = create_app(_settings(db.uri, where, auth="on" if as_clinic else "off"))
        replays: list[list[dict[str, Any]]] = []
        raw = TestClient(raw_app(db.uri, DB_NAME, replays))
        with TestClient(app) as client:
            headers = _clinic_headers(KeyStore(where / "data" / "keys")) if as_clinic else None
            rnd = random.Random(size)
            for name, make in SHAPES:
                times: list[float] = []
                raw_times: list[float] = []
                hits: list[int] = []
                warm = "/fhir/" + make(rnd, patients)
                client.get(warm, headers=headers(warm, rnd) if headers else None)
                for _ in range(reps):
                    url = "/fhir/" + make(rnd, patients)
                    auth = headers(url, rnd) if headers else None
                    recorder.finds.clear()
                    t = time.perf_counter()
                    r = client.get(url, headers=auth)
                    times.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, (url, r.text[:300])
                    hits.append(r.json().get("total", 0))
                    replays.append([c for c in recorder.finds if not c["find"].startswith("_")])
                    t = time.perf_counter()
                    assert raw.get(f"/raw/{len(replays) - 1}").status_code == 200
                    raw_times.append((time.perf_counter() - t) * 1000)
                p50, p95, raw95 = statistics.median(times), pct(times, 95), pct(raw_times, 95)
                row[name] = (p50, p95, raw95, statistics.mean(hits))
                print(
                    f"{name:<46} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  raw p95 {raw95:5.1f} ms"
                    f"  FHIR/raw {p95 / raw95:4.2f}  (mean matches {statistics.mean(hits):.1f})",
                    flush=True,
                )
        app.state.consilium.store.close()
    return row


@contextmanager
def listening(real: Any, recorder: FindRecorder) -> Iterator[None]:
    """The app's MongoClient gets the recorder (the server has no listener hook of its own)."""

    def with_listener(*args: Any, **kwargs: Any) -> Any:
        return real(*args, event_listeners=[recorder], **kwargs)

    setattr(server.database, "MongoClient", with_listener)  # noqa: B010
    try:
        yield
    finally:
        setattr(server.database, "MongoClient", real)  # noqa: B010


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated resource counts")
    ap.add_argument("--reps", type=int, default=40, help="queries per shape per size")
    ap.add_argument("--data-dir", type=Path, help="keep loaded databases here and reuse them")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results: dict[tuple[int, bool], Row] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        smaller: Path | None = None
        for size in sizes:
            where, patients = prepare(data_dir, size, smaller)
            smaller = where
            for as_clinic in (False, True):
                who = "a clinic's token (auth on)" if as_clinic else "auth off"
                print(f"\n== {size} resources ({patients} patients), {who}", flush=True)
                results[(size, as_clinic)] = measure(
                    where, patients, size, args.reps, as_clinic=as_clinic
                )
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        print(f"\n== p95 ratio {hi} / {lo}: auth off, clinic token")
        for name in results[(lo, False)]:
            ratios = [results[(hi, c)][name][1] / results[(lo, c)][name][1] for c in (False, True)]
            print(f"{name:<46} {ratios[0]:5.2f}x {ratios[1]:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
