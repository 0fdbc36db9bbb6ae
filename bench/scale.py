"""Speed at scale (issue #14): read, create, transaction ingest and search at 10k / 100k (/ 1M)
resources, each figure beside the raw FastAPI+pymongo floor on the same database, in one run.

Usage: .venv/bin/python bench/scale.py [--sizes 10000,100000] [--max 1000000] [--quick]

Everything runs with auth ON: the FHIR server (``bench/fhir_app.py``, a real ``uvicorn``
subprocess) is called with a real SMART backend-services token (a ``private_key_jwt`` client
registered with the admin token, ``client_credentials`` grant). The floor
(``bench/baseline_app.py``, also a ``uvicorn`` subprocess) is a bare FastAPI app doing the one
pymongo call a request needs, without auth. Load: ``--concurrency`` keep-alive clients in
threads (like ``wrk -c16``), throughput and p50/p95 per figure.

Data: Patients whose family is ``Rarely`` (``--rare``, 10 matches), ``Manning`` (``--many``,
10,000 matches) or one of many others (a few matches each), and 10 Observations for every
Patient but the ``Manning`` ones. The first size holds the rare and the many Patients (so both
queries have their full match count at every size); each larger size adds other Patients and
their Observations to the same database. The load does not go through HTTP (hours on the
embedded database): the documents are built by the server's own functions
(``stored_documents``: ``build_documents`` with ``extract_index``, ``compute_acl`` and the
integrity hook's ``local_targets``) and inserted in large batches through
``Repository.load_documents``. Before measuring, ``layout_check`` compares what the loader builds
with what the server stored for the same resources written through HTTP, and stops the run when
they differ (a layout change the loader does not follow would make the figures meaningless).

Searches (first page, ``_count=10``): ``Patient?family=Rarely`` (10 matches),
``Patient?family=Manning`` (10,000 matches) and ``Observation?subject=Patient/x`` (10 matches).
The floor replays the very finds the FHIR server sent to match that request (recorded with a
pymongo CommandListener from an in-process app on the same database and token; several for a
windowed search), each with its sort and limit, and returns the first page of what they found.

Targets (Medplum on this machine kind) are printed beside each figure; ``scale`` is the search
p95 at a size divided by the p95 at the first size (target <= 1.5).
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson
from bson import json_util
from fastapi.testclient import TestClient
from pymongo import MongoClient

import server.database
from auth.acl import compute_acl
from bench import wrk_load
from bench.common import Figures, FindRecorder, backend_token, child_server, run_load
from bench.wrk_load import Call
from server.app import create_app
from server.bundles.references import local_targets
from server.config import Settings
from server.embedded_db import EmbeddedDatabase, free_loopback_port
from server.integrity import bases
from server.repository import Repository
from server.search.index import extract_index
from server.storage import Documents, build_documents
from server.timeutil import fhir_instant, now

DB_NAME = "bench_scale"
BASE = "http://localhost"
RARE, MANY = "Rarely", "Manning"
OBS_PER_PATIENT = 10
BATCH = 2_000
SCOPE = "system/*.cruds"
JSON = {"Content-Type": "application/fhir+json"}
# Medplum on this machine kind (issue #14): (figure, unit, target, higher is better)
TARGETS = {
    "read": 1_500.0,
    "create": 320.0,
    "ingest": 1_000.0,
    "search": 400.0,
}
SCALE_TARGET = 1.5


# ------------------------------------------------------------------------------------ the data
@dataclass(frozen=True)
class Plan:
    """How many Patients carry the two queried families (the rest get scattered ones)."""

    rare: int = 10
    many: int = 10_000

    def family(self, j: int) -> str:
        if j < self.rare:
            return RARE
        if j < self.rare + self.many:
            return MANY
        return f"Fam{j % 9973}"  # never a prefix match of RARE or MANY

    def has_observations(self, j: int) -> bool:
        return not self.rare <= j < self.rare + self.many

    @property
    def base_size(self) -> int:
        """Resources in the first block: both families in full, the rare with Observations."""
        return self.rare * (1 + OBS_PER_PATIENT) + self.many


def patient(j: int, plan: Plan) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"p-{j}",
        "identifier": [{"system": "urn:consilium:bench", "value": f"B{j:08d}"}],
        "name": [{"family": plan.family(j), "given": ["Ada"]}],
        "gender": "female" if j % 2 else "male",
        "birthDate": f"{1940 + j % 60}-{1 + j % 12:02d}-{1 + j % 28:02d}",
    }


def observation(j: int, k: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o-{j}-{k}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
        "subject": {"reference": f"Patient/p-{j}"},
        "effectiveDateTime": f"2024-{1 + k % 12:02d}-{1 + j % 28:02d}T08:00:00Z",
        "valueQuantity": {
            "value": 4 + (j * 7 + k) % 50 / 10,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    }


def stream(plan: Plan) -> Iterator[dict[str, Any]]:
    """Patients in order, each followed by its Observations; endless."""
    for j in itertools.count():
        yield patient(j, plan)
        if plan.has_observations(j):
            for k in range(OBS_PER_PATIENT):
                yield observation(j, k)


def stored_documents(
    resource: dict[str, Any], ts: datetime, ref_bases: tuple[str, ...] = ()
) -> Documents:
    """The documents the server stores for the first version of ``resource`` written by a
    trusted backend client, built by the server's own functions (not a copy of the layout):
    ``build_documents`` with the index values of ``extract_index``, the ownership facts of
    ``compute_acl`` and the reference targets the integrity hook keeps (``local_targets``)."""
    body = dict(resource)
    body["meta"] = {"versionId": "1", "lastUpdated": fhir_instant(ts)}
    rtype, rid = body["resourceType"], body["id"]
    acl = compute_acl(rtype, rid, body, None, None, lambda patients: {})
    refs = [t for t in local_targets(body, ref_bases) if t != f"{rtype}/{rid}"]
    return build_documents(
        rtype,
        rid,
        1,
        ts,
        body,
        interaction="create",
        idx=extract_index(rtype, body),
        acl=acl,
        refs=refs,
    )


@dataclass
class Loaded:
    """What is in the database so far (one database grows through the sizes)."""

    resources: int = 0
    patients: int = 0
    observed: list[int] = field(default_factory=list)  # patients that have Observations


def load(settings: Settings, items: Iterator[dict[str, Any]], upto: int, into: Loaded) -> float:
    """Insert resources from ``items`` until ``upto`` are loaded (whole patients); seconds taken.

    Current and history documents from ``stored_documents``, ``BATCH`` at a time through
    ``Repository.load_documents`` into the collections and indexes the app creates. (Before the
    one ``ks`` key index, docs/indexing.md, this dropped and rebuilt ~40 ``idx.*`` indexes per
    type around the load; maintaining them ran at ~110 documents/s.)
    """
    app = create_app(settings.model_copy(update={"audit": "off"}))  # no materializer thread
    state = app.state.consilium
    store = state.store
    repo = Repository(store, state.hooks)
    ref_bases = bases(settings)
    batches: dict[str, list[Documents]] = {}
    t0 = time.perf_counter()

    def flush(rtype: str, batch: list[Documents]) -> None:
        repo.load_documents(rtype, batch)
        batch.clear()

    try:
        for res in items:
            rtype = res["resourceType"]
            batch = batches.setdefault(rtype, [])
            batch.append(stored_documents(res, now(), ref_bases))
            into.resources += 1
            if rtype == "Patient":
                into.patients += 1
            elif res["id"].endswith("-0"):
                into.observed.append(int(res["id"].split("-")[1]))
            if len(batch) >= BATCH:
                flush(rtype, batch)
            if into.resources % 50_000 == 0:
                print(f"   ... {into.resources} built and inserted", flush=True)
            # stop on a patient boundary (after a patient's last Observation)
            if into.resources >= upto and rtype == "Observation" and res["id"].endswith("-9"):
                break
        for rtype, batch in batches.items():
            if batch:
                flush(rtype, batch)
    finally:
        store.close()
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- layout check
def layout_check(uri: str, written: list[tuple[str, str]]) -> list[str]:
    """Differences between what the server stored for resources written through HTTP and what
    ``stored_documents`` builds for the same bodies (empty: the loader follows the layout)."""
    problems: list[str] = []
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    try:
        db = client[DB_NAME]
        for rtype, rid in written:
            stored = db[rtype].find_one({"_id": rid})
            if stored is None:
                problems.append(f"{rtype}/{rid} not stored")
                continue
            body = {k: v for k, v in stored["resource"].items() if k != "meta"}
            built = stored_documents(body, stored["ts"]).current
            for key in sorted(set(stored) | set(built)):
                if stored.get(key) != built.get(key):
                    problems.append(
                        f"{rtype}.{key}: server {stored.get(key)!r} / loader {built.get(key)!r}"
                    )
    finally:
        client.close()
    return problems


# ------------------------------------------------------------------------ recording queries
@contextmanager
def recording_app(settings: Settings) -> Iterator[tuple[TestClient, FindRecorder]]:
    """An in-process app on the same database and keys whose MongoClient reports its finds
    (the server has no listener hook of its own, so its module's MongoClient is wrapped)."""
    recorder = FindRecorder()
    real = server.database.MongoClient

    def with_listener(*args: Any, **kwargs: Any) -> Any:
        return real(*args, event_listeners=[recorder], **kwargs)

    server.database.MongoClient = with_listener  # type: ignore[assignment,misc]
    try:  # audit off: no materializer thread outliving the store
        app = create_app(settings.model_copy(update={"audit": "off"}))
    finally:
        server.database.MongoClient = real  # type: ignore[misc]
    try:
        yield TestClient(app, base_url=BASE), recorder
    finally:
        app.state.consilium.store.close()


def record_filters(
    client: TestClient, recorder: FindRecorder, rtype: str, urls: list[str], token: str
) -> list[dict[str, Any]]:
    """For each search URL, the ``find``s on ``rtype``'s collection the server sent to match it
    (a windowed search sends several, ``server/search/execute.py``), without the page's fetch
    by ``_id``. Recorded on the second request: the first one of a key sizes its windows
    without the density the following ones know."""
    out: list[dict[str, Any]] = []
    for url in urls:
        for _ in range(2):
            recorder.finds.clear()
            r = client.get(url, headers={"Authorization": f"Bearer {token}"})
            if r.status_code != 200:
                raise SystemExit(f"recording {url}: {r.status_code} {r.text[:300]}")
        steps = [
            {"filter": c.get("filter", {}), "sort": c.get("sort"), "limit": c.get("limit", 0)}
            for c in recorder.finds
            if c["find"] == rtype and "_id" not in c.get("filter", {})
        ]
        out.append({"collection": rtype, "steps": steps})
    return out


# ------------------------------------------------------------------------------ measurement
@dataclass
class Row:
    figure: str
    size: int
    fhir: Figures
    raw: Figures
    unit: str = "req/s"
    per_request: int = 1  # resources per request (ingest)
    target: float | None = None

    def rate(self, f: Figures) -> float:
        return f.throughput * self.per_request


def ingest_bundle(n_entries: int) -> dict[str, Any]:
    """A transaction Bundle: one Patient and Observations referring to it by ``urn:uuid``."""
    pat = f"urn:uuid:{uuid.uuid4()}"
    entries = [
        {
            "fullUrl": pat,
            "resource": {
                "resourceType": "Patient",
                "name": [{"family": "Ingest", "given": ["Bo"]}],
                "gender": "male",
            },
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for k in range(n_entries - 1):
        obs = observation(0, k)
        del obs["id"]
        obs["subject"] = {"reference": pat}
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@dataclass
class Options:
    sizes: list[int]
    plan: Plan
    requests: int
    concurrency: int
    creates: int
    bundles: int
    bundle_entries: int
    ingest_concurrency: int
    audit: str
    seconds: float = 20.0  # at most this long per figure
    read_cache: int = 0  # CONSILIUM_READ_CACHE for the server (0: its default, off)
    load: str = "python"  # the load tool: "wrk" or "python" (the threaded httpx loop)


class Driver:
    """Sends a figure's calls with the chosen load tool (``--load``): ``wrk`` for ``seconds``
    with ``concurrency`` connections, or the threaded ``httpx`` loop for ``total`` requests
    capped at ``seconds``. Both count a response other than the expected one as an error
    (wrk: outside 2xx/3xx)."""

    def __init__(self, opts: Options, probes: dict[str, Call]) -> None:
        self.opts = opts
        self.probes = probes  # per base URL: a cheap request that needs the database

    def figure(
        self,
        name: str,
        base: str,
        calls: list[Call],
        *,
        total: int | None = None,
        concurrency: int | None = None,
        expect: int = 200,
        seconds: float | None = None,
    ) -> Figures:
        conc = concurrency or self.opts.concurrency
        secs = seconds or self.opts.seconds
        if self.opts.load == "wrk":
            figures = wrk_load.run(name, base, calls, seconds=secs, concurrency=conc)
            self.drain(base)
            return figures

        def send(client: httpx.Client, i: int) -> httpx.Response:
            call = calls[i % len(calls)]
            return client.request(
                call.method, base + call.path, headers=call.headers, content=call.body
            )

        return run_load(
            name,
            send,
            total=total or self.opts.requests,
            concurrency=conc,
            expect=expect,
            max_seconds=secs,
        )

    def drain(self, base: str, quick_ms: float = 100, limit_s: float = 600) -> None:
        """Until the server has finished what wrk left in flight: wrk stops at its deadline and
        closes its connections, but the server still runs the requests it had accepted (16
        searches of 10,000 matches are a minute of work), which the next figure would pay for.
        Done when the probe answers in under ``quick_ms`` twice in a row."""
        call = self.probes[base]
        deadline, quick = time.monotonic() + limit_s, 0
        while quick < 2 and time.monotonic() < deadline:
            t0 = time.perf_counter()
            httpx.request(call.method, base + call.path, headers=call.headers, timeout=limit_s)
            quick = quick + 1 if (time.perf_counter() - t0) * 1000 < quick_ms else 0

    def warm(self, base: str, calls: list[Call]) -> None:
        """A short run first: cold caches right after the database restart are not the figure."""
        self.figure(
            "warm",
            base,
            calls,
            total=max(self.opts.requests // 5, 10),
            seconds=self.opts.seconds / 4,
        )


def measure_size(
    opts: Options, settings: Settings, env: dict[str, str], uri: str, size: int, data: Loaded
) -> list[Row]:
    fport, rport = free_loopback_port(), free_loopback_port()
    fhir, raw = f"http://127.0.0.1:{fport}", f"http://127.0.0.1:{rport}"
    rows: list[Row] = []
    rnd = random.Random(size)
    n = opts.requests
    with (
        child_server(
            ["bench/fhir_app.py", "--uri", uri, "--db", DB_NAME, "--port", str(fport)],
            f"{fhir}/healthz",
            env,
        ),
        child_server(
            ["bench/baseline_app.py", "--uri", uri, "--db", DB_NAME, "--port", str(rport)],
            f"{raw}/healthz",
        ),
    ):
        token = backend_token(fhir, env["CONSILIUM_ADMIN_TOKEN"], BASE, SCOPE)
        auth = {"Authorization": f"Bearer {token}"}
        # the loader must build what the server stores: write one of each through HTTP, compare
        written = []
        for res in (patient(10**9, opts.plan), observation(10**9, 0)):
            r = httpx.put(
                f"{fhir}/fhir/{res['resourceType']}/{res['id']}",
                json=res,
                headers={**auth, **JSON},
            )
            if r.status_code not in (200, 201):
                raise SystemExit(f"layout check write failed: {r.status_code} {r.text[:300]}")
            written.append((res["resourceType"], res["id"]))
        problems = layout_check(uri, written)
        if problems:
            raise SystemExit(
                "loader out of date with the stored layout:\n  " + "\n  ".join(problems)
            )

        # ---- searches: the URLs, and the filters the server sends for them (for the floor)
        observed = rnd.sample(data.observed, min(64, len(data.observed)))
        shapes: list[tuple[str, str, str, list[str]]] = [
            (
                f"search family={RARE} ({opts.plan.rare})",
                "rare",
                "Patient",
                [f"Patient?family={RARE}"],
            ),
            (
                f"search family={MANY} ({opts.plan.many})",
                "many",
                "Patient",
                [f"Patient?family={MANY}"],
            ),
            (
                f"search Observation?subject ({OBS_PER_PATIENT})",
                "subject",
                "Observation",
                [f"Observation?subject=Patient/p-{j}" for j in observed],
            ),
        ]
        with recording_app(settings) as (inproc, recorder):
            for _, key, rtype, urls in shapes:
                urls[:] = [f"/fhir/{u}&_count=10" for u in urls]
                filters = record_filters(inproc, recorder, rtype, urls, token)
                r = httpx.post(f"{raw}/raw/queries/{key}", content=json_util.dumps(filters))
                r.raise_for_status()
        with httpx.Client(headers=auth, timeout=300) as warm:
            for _, key, _, urls in shapes:
                for u in urls[:4]:
                    warm.get(f"{fhir}{u}").raise_for_status()
                    httpx.get(f"{raw}/raw/search/{key}/0", timeout=300).raise_for_status()
        load = Driver(
            opts,
            {
                fhir: Call("GET", "/fhir/Patient/p-0", auth),
                raw: Call("GET", "/raw/Patient/p-0"),
            },
        )
        for name, key, _, urls in shapes:
            fhir_calls = [Call("GET", u, auth) for u in urls]
            raw_calls = [Call("GET", f"/raw/search/{key}/{i}") for i in range(len(urls))]
            # warm both sides (cold caches right after the restart), then measure
            load.warm(fhir, fhir_calls)
            load.warm(raw, raw_calls)
            fr = load.figure(name, fhir, fhir_calls)
            rr = load.figure(name, raw, raw_calls)
            rows.append(Row(name, size, fr, rr, target=TARGETS["search"]))

        # ---- read
        picks = [f"p-{rnd.randrange(data.patients)}" for _ in range(n)]
        fhir_reads = [Call("GET", f"/fhir/Patient/{rid}", auth) for rid in picks]
        raw_reads = [Call("GET", f"/raw/Patient/{rid}") for rid in picks]
        load.warm(fhir, fhir_reads)
        load.warm(raw, raw_reads)
        # random ids, then the issue's own measurement: wrk on one URL (a hit, cache on)
        for name, k in (("read Patient/id", len(picks)), ("read one Patient (same id)", 1)):
            fr = load.figure(name, fhir, fhir_reads[:k])
            rr = load.figure(name, raw, raw_reads[:k])
            rows.append(Row(name, size, fr, rr, target=TARGETS["read"]))

        # ---- create
        body = orjson.dumps(
            {
                "resourceType": "Patient",
                "name": [{"family": "Bench", "given": ["Mark"]}],
                "gender": "female",
                "birthDate": "1970-01-01",
            }
        )
        fr = load.figure(
            "create",
            fhir,
            [Call("POST", "/fhir/Patient", {**auth, **JSON}, body)],
            total=opts.creates,
            expect=201,
        )
        rr = load.figure(
            "create",
            raw,
            [Call("POST", "/raw/Patient", JSON, body)],
            total=opts.creates,
            expect=201,
        )
        rows.append(Row("create Patient", size, fr, rr, target=TARGETS["create"]))

        # ---- transaction ingest
        bundles = [orjson.dumps(ingest_bundle(opts.bundle_entries)) for _ in range(opts.bundles)]
        minimal = {**auth, **JSON, "Prefer": "return=minimal"}
        ingest = {
            "total": opts.bundles,
            "concurrency": opts.ingest_concurrency,
            "seconds": opts.seconds * 2,
        }
        fr = load.figure(
            "ingest", fhir, [Call("POST", "/fhir", minimal, b) for b in bundles], **ingest
        )
        rr = load.figure(
            "ingest", raw, [Call("POST", "/raw/bundle", JSON, b) for b in bundles], **ingest
        )
        rows.append(
            Row(
                f"ingest transaction x{opts.bundle_entries}",
                size,
                fr,
                rr,
                unit="res/s",
                per_request=opts.bundle_entries,
                target=TARGETS["ingest"],
            )
        )
    for row in rows:
        errors = row.fhir.errors + row.raw.errors
        if errors:  # kept in the table: a figure with errors is not a figure to trust
            print(f"   WARNING {row.figure} at {size}: {errors} failed requests", flush=True)
    return rows


# ---------------------------------------------------------------------------------- report
def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def table(rows: list[Row]) -> str:
    sizes = sorted({r.size for r in rows})
    first = {r.figure: r for r in rows if r.size == sizes[0]}
    head = (
        f"{'figure':<34} {'size':>8} {'unit':>5} {'FHIR':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'floor':>8} {'p95 ms':>7} {'F/floor':>7} {'target':>8} {'':4} {'scale':>6}"
    )
    lines = [head, "-" * len(head)]
    order = list(dict.fromkeys(r.figure for r in rows))
    for r in sorted(rows, key=lambda r: (order.index(r.figure), r.size)):
        rate = r.rate(r.fhir)
        target = f">={r.target:.0f}" if r.target else ""
        ok = verdict(rate >= r.target) if r.target else ""
        scale = ""
        if r.figure.startswith("search") and r.size != sizes[0]:
            ratio = r.fhir.pct(95) / max(first[r.figure].fhir.pct(95), 1e-9)
            scale = f"{ratio:5.2f}x {verdict(ratio <= SCALE_TARGET)}"
        lines.append(
            f"{r.figure:<34} {r.size:>8} {r.unit:>5} {rate:>8.0f} {r.fhir.pct(50):>7.1f} "
            f"{r.fhir.pct(95):>7.1f} {r.rate(r.raw):>8.0f} {r.raw.pct(95):>7.1f} "
            f"{rate / max(r.rate(r.raw), 1e-9):>7.2f} {target:>8} {ok:4} {scale:9} "
            f"n={r.fhir.requests}/{r.raw.requests}"
            + (f" errors={r.fhir.errors}/{r.raw.errors}" if r.fhir.errors + r.raw.errors else "")
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- main
def run(opts: Options, work: Path) -> list[Row]:
    admin = "bench-admin-" + uuid.uuid4().hex
    data_dir = work / "data"
    env = {
        "CONSILIUM_AUTH": "on",
        "CONSILIUM_AUDIT": opts.audit,
        "CONSILIUM_ADMIN_TOKEN": admin,
        "CONSILIUM_DATA_DIR": str(data_dir),
        "CONSILIUM_BASE_URL": BASE,
        "CONSILIUM_ACCESS_TOKEN_LIFETIME_SECONDS": "36000",
        "CONSILIUM_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        **({"CONSILIUM_READ_CACHE": str(opts.read_cache)} if opts.read_cache else {}),
    }
    items = stream(opts.plan)
    data = Loaded()
    rows: list[Row] = []
    for size in opts.sizes:
        target = max(size, opts.plan.base_size)
        with EmbeddedDatabase(work / "db") as db:
            settings = Settings(
                mongodb_uri=db.uri,
                db_name=DB_NAME,
                data_dir=data_dir,
                auth="on",
                audit=opts.audit,  # type: ignore[arg-type]
                admin_token=admin,
                base_url=BASE,
                access_token_lifetime_seconds=36000,
            )
            took = load(settings, items, target, data)
            print(
                f"== {data.resources} resources ({data.patients} patients), "
                f"load {took:.0f} s ({(data.resources) / max(took, 1e-9):.0f} res/s cumulative)",
                flush=True,
            )
        # restart the database: measure a server holding N resources, not one flushing a load
        with EmbeddedDatabase(work / "db") as db:
            settings = settings.model_copy(update={"mongodb_uri": db.uri})
            size_rows = measure_size(opts, settings, env, db.uri, data.resources, data)
        print(table(size_rows), flush=True)  # each size as soon as it is measured
        rows += size_rows
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated resource counts")
    ap.add_argument("--max", type=int, default=0, help="also measure at this size (1000000)")
    ap.add_argument("--requests", type=int, default=1000, help="requests per search/read figure")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20, help="time cap per figure")
    ap.add_argument("--creates", type=int, default=1000)
    ap.add_argument("--bundles", type=int, default=12)
    ap.add_argument("--bundle-entries", type=int, default=100)
    ap.add_argument("--ingest-concurrency", type=int, default=4)
    ap.add_argument("--rare", type=int, default=10)
    ap.add_argument("--many", type=int, default=10_000)
    ap.add_argument("--audit", choices=["on", "off"], default="on", help="server default: on")
    ap.add_argument("--work-dir", type=Path, help="database directory (default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    ap.add_argument(
        "--read-cache",
        type=int,
        default=0,
        help="CONSILIUM_READ_CACHE entries for the server (read cache + first search pages)",
    )
    ap.add_argument(
        "--load",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load tool: wrk (the issue's; Debian package wrk), the threaded httpx loop, "
        "or auto: wrk when it is on PATH",
    )
    a = ap.parse_args(argv)
    tool = a.load
    if tool == "auto":
        tool = "wrk" if wrk_load.available() else "python"
    elif tool == "wrk" and not wrk_load.available():
        raise SystemExit("--load wrk: no wrk on PATH (apt-get install wrk)")
    sizes = sorted(int(s) for s in a.sizes.split(","))
    if a.max:
        sizes = sorted({*sizes, a.max})
    opts = Options(
        sizes=sizes,
        plan=Plan(a.rare, a.many),
        requests=a.requests,
        concurrency=a.concurrency,
        creates=a.creates,
        bundles=a.bundles,
        bundle_entries=a.bundle_entries,
        ingest_concurrency=a.ingest_concurrency,
        audit=a.audit,
        seconds=a.seconds,
        read_cache=a.read_cache,
        load=tool,
    )
    if a.quick:
        opts = Options(
            [150, 400], Plan(3, 100), 20, 2, 10, 2, 10, 2, a.audit, 10.0, a.read_cache, tool
        )
    cache = f"read cache {opts.read_cache} entries" if opts.read_cache else "read cache off"
    print(
        f"# scale benchmark: sizes {opts.sizes}, {opts.requests} requests per figure, "
        f"concurrency {opts.concurrency}, load {opts.load}, auth on (SMART backend token), audit {opts.audit}, "
        f"{cache}",
        flush=True,
    )
    with ExitStack() as stack:
        work = a.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        rows = run(opts, work)
    print()
    print(table(rows))
    print(
        "\nFHIR/floor: FHIR rate / raw FastAPI+pymongo rate on the same database; target: "
        f"Medplum on this machine kind; scale: search p95 / p95 at the first size "
        f"(target <= {SCALE_TARGET}x)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
