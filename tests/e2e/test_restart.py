"""The real ``consilium serve`` process: data survives a restart, nothing is orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.embedded_db import free_loopback_port

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:  # pragma: no cover - ps missing
        return []
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still "exists"; read its state
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_loopback_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CONSILIUM_AUTH": "off", "CONSILIUM_LOG_LEVEL": "WARNING"}
        env.pop("CONSILIUM_MONGODB_URI", None)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "serve.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(data_dir),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text(errors="replace"))
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy")

    def stop(self, sig: int = signal.SIGTERM) -> list[int]:
        children = _children(self.proc.pid)
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        return children


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
