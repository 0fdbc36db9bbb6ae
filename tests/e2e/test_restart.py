"""The real ``consilium serve`` process: data survives a restart, nothing is orphaned."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.serve_process import Server
from tests.e2e.serve_process import alive as _alive

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_data_and_history_survive_restart_without_orphans(data_dir: Path) -> None:
    server = Server(data_dir)
    try:
        headers = {"Content-Type": "application/fhir+json"}
        r = httpx.post(
            f"{server.base}/fhir/Patient",
            json={"resourceType": "Patient", "name": [{"family": "Durable"}]},
            headers=headers,
        )
        assert r.status_code == 201
        patient = r.json()
        r = httpx.put(
            f"{server.base}/fhir/Patient/{patient['id']}",
            json={**patient, "gender": "female"},
            headers=headers,
        )
        assert r.status_code == 200
    finally:
        children = server.stop()
    assert children, "the embedded database should run as a child process"
    time.sleep(0.5)
    assert not [c for c in children if _alive(c)], "embedded database outlived the server"

    again = Server(data_dir)
    try:
        r = httpx.get(f"{again.base}/fhir/Patient/{patient['id']}")
        assert r.status_code == 200
        assert r.json()["gender"] == "female"
        assert r.json()["meta"]["versionId"] == "2"
        history = httpx.get(f"{again.base}/fhir/Patient/{patient['id']}/_history").json()
        assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"', 'W/"1"']
    finally:
        children = again.stop(signal.SIGINT)
    time.sleep(0.5)
    assert not [c for c in children if _alive(c)]


def test_killed_server_takes_its_database_down_and_data_survives(data_dir: Path) -> None:
    server = Server(data_dir)
    try:
        r = httpx.post(
            f"{server.base}/fhir/Patient",
            json={"resourceType": "Patient", "name": [{"family": "Crash"}]},
            headers={"Content-Type": "application/fhir+json"},
        )
        assert r.status_code == 201
        patient_id = r.json()["id"]
    finally:
        children = server.stop(signal.SIGKILL)
    # PDEATHSIG sends the database SIGTERM; its graceful stop takes about 4 s, and when
    # SecantusDB's signal handler deadlocks, the child's watchdog kills it after its 20 s grace.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and [c for c in children if _alive(c)]:
        time.sleep(0.2)
    assert not [c for c in children if _alive(c)], "embedded database outlived a killed server"

    again = Server(data_dir)
    try:
        assert httpx.get(f"{again.base}/fhir/Patient/{patient_id}").status_code == 200
    finally:
        again.stop()
