"""FHIR read/create throughput against a raw pymongo+FastAPI baseline, in one run.

Usage: .venv/bin/python bench/read_create.py [--patients 300] [--reads 3000] [--concurrency 8]

Prints req/s, p50 and p95 for: FHIR create, raw insert, FHIR read, raw find_one, and the
read ratio FHIR/raw (target >= 0.8). Both servers run as child processes on the same embedded
SecantusDB and are driven by the same load loop. Auth is off here; the SMART/audit overhead has
its own figures (``--auth-audit``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import child_server, run_load
from server.embedded_db import EmbeddedDatabase, free_loopback_port

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:consilium:member", "value": "M-000"}],
    "name": [{"family": "Bench", "given": ["Mark"]}],
    "gender": "female",
    "birthDate": "1970-01-01",
}
HEADERS = {"Content-Type": "application/fhir+json"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EmbeddedDatabase(Path(tmp) / "db") as db:
        fport, rport = free_loopback_port(), free_loopback_port()
        fhir = f"http://127.0.0.1:{fport}"
        raw = f"http://127.0.0.1:{rport}"
        env = {"CONSILIUM_AUTH": "off", "CONSILIUM_AUDIT": "off"}
        with (
            child_server(
                ["bench/fhir_app.py", "--uri", db.uri, "--db", "bench", "--port", str(fport)],
                f"{fhir}/healthz",
                env,
            ),
            child_server(
                ["bench/baseline_app.py", "--uri", db.uri, "--db", "bench", "--port", str(rport)],
                f"{raw}/healthz",
            ),
        ):
            ids: list[str] = []

            def create(client, i):  # type: ignore[no-untyped-def]
                r = client.post(f"{fhir}/fhir/Patient", json=PATIENT, headers=HEADERS)
                ids.append(r.json()["id"])
                return r

            fc = run_load(
                "FHIR create (POST /fhir/Patient)",
                create,
                total=args.patients,
                concurrency=args.concurrency,
                expect=201,
            )
            rc = run_load(
                "raw insert_one",
                lambda c, i: c.post(f"{raw}/raw/Patient", json=PATIENT),
                total=args.patients,
                concurrency=args.concurrency,
                expect=201,
            )
            rng = random.Random(7)
            picks = [rng.choice(ids) for _ in range(args.reads)]
            # warm both paths once
            run_load(
                "warm",
                lambda c, i: c.get(f"{fhir}/fhir/Patient/{picks[i]}"),
                total=50,
                concurrency=2,
            )
            run_load(
                "warm", lambda c, i: c.get(f"{raw}/raw/Patient/{picks[i]}"), total=50, concurrency=2
            )
            # Alternating rounds: both sides see the same database state and machine load.
            rounds = []
            for n in range(args.rounds):
                fr = run_load(
                    f"FHIR read (GET /fhir/Patient/id) #{n + 1}",
                    lambda c, i: c.get(f"{fhir}/fhir/Patient/{picks[i]}"),
                    total=args.reads,
                    concurrency=args.concurrency,
                )
                rr = run_load(
                    f"raw find_one #{n + 1}",
                    lambda c, i: c.get(f"{raw}/raw/Patient/{picks[i]}"),
                    total=args.reads,
                    concurrency=args.concurrency,
                )
                rounds.append((fr, rr))

    print(
        f"# read/create benchmark: {args.patients} creates, {args.reads} reads, concurrency {args.concurrency}"
    )
    for fig in (fc, rc):
        print(fig.line())
    print(f"create ratio FHIR/raw: {fc.throughput / rc.throughput:.2f}")
    ratios = []
    for fr, rr in rounds:
        print(fr.line())
        print(rr.line())
        ratios.append(fr.throughput / rr.throughput)
    print("read ratio FHIR/raw per round: " + ", ".join(f"{x:.2f}" for x in ratios))
    print(f"read ratio FHIR/raw (median): {statistics.median(ratios):.2f}  (target >= 0.80)")


if __name__ == "__main__":
    main()
