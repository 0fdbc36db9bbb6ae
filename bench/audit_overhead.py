"""Read throughput with audit on vs off (auth on, a real RS384 access token), in one run.

Usage: .venv/bin/python bench/audit_overhead.py [--patients 200] [--reads 3000] [--concurrency 8]

Target: audit-on read throughput >= 0.8 x audit-off. Two servers run as child processes on the
same embedded SecantusDB, database, key directory and public base URL (so one token is valid at
both); rounds alternate off/on to even out machine noise and the best round of each is kept.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import backend_token as common_backend_token
from bench.common import child_server, run_load
from server.embedded_db import EmbeddedDatabase, free_loopback_port

ADMIN = "bench-admin-" + uuid.uuid4().hex
BASE = "http://localhost"
PATIENT = {"resourceType": "Patient", "name": [{"family": "Bench"}], "gender": "female"}


def backend_token(server: str) -> str:
    return common_backend_token(server, ADMIN, BASE, "system/Patient.rs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EmbeddedDatabase(Path(tmp) / "db") as db:
        common = {
            "CONSILIUM_AUTH": "on",
            "CONSILIUM_ADMIN_TOKEN": ADMIN,
            "CONSILIUM_DATA_DIR": str(Path(tmp) / "data"),
            "CONSILIUM_BASE_URL": BASE,
            # several hours: one token for every round (the lifetime does not affect the cost)
            "CONSILIUM_ACCESS_TOKEN_LIFETIME_SECONDS": "36000",
        }
        on_port, off_port = free_loopback_port(), free_loopback_port()
        on, off = f"http://127.0.0.1:{on_port}", f"http://127.0.0.1:{off_port}"

        def cmd(port: int) -> list[str]:
            return ["bench/fhir_app.py", "--uri", db.uri, "--db", "bench", "--port", str(port)]

        # start one first so the key directory is created once, then the other reuses it
        with (
            child_server(cmd(off_port), f"{off}/healthz", {**common, "CONSILIUM_AUDIT": "off"}),
            child_server(cmd(on_port), f"{on}/healthz", {**common, "CONSILIUM_AUDIT": "on"}),
        ):
            admin = {"Authorization": f"Bearer {ADMIN}"}
            ids = [
                httpx.post(f"{off}/fhir/Patient", json=PATIENT, headers=admin).json()["id"]
                for _ in range(args.patients)
            ]
            token = backend_token(off)
            auth = {"Authorization": f"Bearer {token}"}
            best: dict[str, float] = {"off": 0.0, "on": 0.0}
            rounds: dict[str, list[float]] = {}
            from pymongo import MongoClient

            mongo: MongoClient[dict[str, object]] = MongoClient(db.uri)

            def settle() -> None:
                # the audit-on server materializes its log when idle; let it finish so that
                # work does not land inside the next round of either server
                while mongo.bench["_audit_log"].count_documents({}):
                    time.sleep(0.5)

            for rnd in range(args.rounds):
                for label, server in (("off", off), ("on", on)):
                    settle()
                    fig = run_load(
                        f"read, audit {label} (round {rnd + 1})",
                        lambda c, i, s=server: c.get(
                            f"{s}/fhir/Patient/{random.choice(ids)}", headers=auth
                        ),
                        total=args.reads,
                        concurrency=args.concurrency,
                    )
                    print(fig.line(), flush=True)
                    best[label] = max(best[label], fig.throughput)
                    rounds.setdefault(label, []).append(fig.throughput)
            settle()
            mongo.close()
            count = httpx.get(f"{on}/fhir/AuditEvent?_summary=count", headers=admin).json()
            print(f"AuditEvents recorded so far (audit-on server): {count.get('total')}")
        ratio = best["on"] / best["off"] if best["off"] else 0.0
        print(f"best read req/s: audit off {best['off']:.1f}, audit on {best['on']:.1f}")
        print(f"audit on / off (best rounds) = {ratio:.2f} (target >= 0.80)")
        paired = sorted(a / b for a, b in zip(rounds["on"], rounds["off"], strict=True) if b)
        print(f"audit on / off (median of paired rounds) = {paired[len(paired) // 2]:.2f}")


if __name__ == "__main__":
    main()
