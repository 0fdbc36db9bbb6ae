"""Notifications benchmark: what 100 active subscriptions cost a write, and how fast a
notification reaches its receiver.

In one run, on one embedded SecantusDB, in-process ASGI client (authorization off, so the figures
are the matcher's and the worker's, not the token check's), a real HTTP receiver on 127.0.0.1:

* ``writes, 0 subscriptions`` / ``writes, 100 subscriptions``: DiagnosticReport creates, with no
  Subscription and then with 100 active Subscriptions on DiagnosticReport (the worst case: every
  one is a candidate of every write; none matches these writes), alternating rounds;
* ``latency``: one matching subscription; time from the write's response (committed) to the
  receiver holding the notification, one write at a time on an otherwise idle server.

    .venv/bin/python bench/notifications.py [--writes 300] [--samples 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase
from tests.server.notifications.conftest import subscription
from tests.server.notifications.receiver import Receiver


def report(status: str = "preliminary") -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "conclusion": "Reviewed the whole file.",
    }


def writes(client: TestClient, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        r = client.post("/fhir/DiagnosticReport", json=report())
        assert r.status_code == 201, r.text
    return n / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = EmbeddedDatabase(Path(tmp) / "db")
        db.start()
        try:
            run(db.uri, Path(tmp), args.writes, args.samples, args.rounds)
        finally:
            db.stop()


def run(uri: str, tmp: Path, n: int, samples: int, rounds: int) -> None:
    receiver = Receiver().start()
    settings = Settings(
        mongodb_uri=uri,
        db_name="bench_notify",
        data_dir=tmp / "data",
        auth="off",
        audit="off",
        notify_allow_loopback=True,
    )
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as client:
        writes(client, 50)  # warm-up
        subs: list[str] = []
        without: list[float] = []
        with_subs: list[float] = []
        for _ in range(rounds):
            for sid in subs:  # back to none
                client.delete(f"/fhir/Subscription/{sid}")
            subs = []
            without.append(writes(client, n))
            for _ in range(100):
                criteria = f"DiagnosticReport?based-on=ServiceRequest/{uuid.uuid4()}&status=final"
                r = client.post("/fhir/Subscription", json=subscription(receiver.url, criteria))
                subs.append(r.json()["id"])
            with_subs.append(writes(client, n))
        for sid in subs:
            client.delete(f"/fhir/Subscription/{sid}")
        best0, best100 = max(without), max(with_subs)
        print(f"writes, 0 subscriptions     {best0:8.1f} req/s   (best of {rounds} x {n})")
        print(f"writes, 100 subscriptions   {best100:8.1f} req/s   (best of {rounds} x {n})")
        print(f"ratio                       {best100 / best0:8.2f}x   (target >= 0.8x)")

        r = client.post(
            "/fhir/Subscription",
            json=subscription(receiver.url, "DiagnosticReport?status=final", payload="id-only"),
        )
        sid = r.json()["id"]
        laps: list[float] = []
        for _ in range(samples):
            before = len(
                [g for g in receiver.received() if g.headers["x-consilium-subscription"] == sid]
            )
            r = client.post("/fhir/DiagnosticReport", json=report("final"))
            committed = time.perf_counter()
            deadline = committed + 5
            while time.perf_counter() < deadline:
                got = [
                    g for g in receiver.received() if g.headers["x-consilium-subscription"] == sid
                ]
                if len(got) > before:
                    break
                time.sleep(0.0005)
            laps.append((time.perf_counter() - committed) * 1000)
            time.sleep(0.02)  # idle between samples
        print(
            f"latency commit -> receiver  p50 {statistics.median(laps):7.1f} ms   "
            f"p95 {pct(laps, 0.95):7.1f} ms   max {max(laps):7.1f} ms   n={samples}"
        )
    receiver.stop()


if __name__ == "__main__":
    main()
