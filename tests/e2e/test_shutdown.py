"""Stopping ``consilium serve`` the way a terminal does: Ctrl-C signals the whole process group.

The order that must hold: uvicorn stops, the app drains its audit queue, then the embedded
database stops. Before the database child had a process group of its own, Ctrl-C stopped it at
the same moment as the server, the audit drain waited 30 s per call on a database that was gone,
and the log ended in a ServerSelectionTimeoutError.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.embedded_db import EmbeddedDatabase
from tests.e2e.serve_process import Server, alive, children

pytestmark = pytest.mark.slow
STOP_BOUND_SECONDS = 20
REQUESTS = 25


def _traffic(server: Server) -> list[str]:
    """Creates and reads, each with a request id the audit trail records."""
    ids = []
    with httpx.Client(base_url=server.base, timeout=10) as http:
        for i in range(REQUESTS):
            rid = f"shutdown-{i}"
            r = http.post(
                "/fhir/Patient",
                json={"resourceType": "Patient", "name": [{"family": f"Stop{i}"}]},
                headers={"Content-Type": "application/fhir+json", "X-Request-ID": rid},
            )
            assert r.status_code == 201
            ids.append(rid)
            read_id = f"shutdown-read-{i}"
            r = http.get(f"/fhir/Patient/{r.json()['id']}", headers={"X-Request-ID": read_id})
            assert r.status_code == 200
            ids.append(read_id)
    return ids


def _audited_request_ids(data_dir: Path) -> set[str]:
    """Open the stopped server's database and read its audit trail through FHIR search."""
    with EmbeddedDatabase(data_dir / "db") as db:
        settings = Settings(
            mongodb_uri=db.uri, data_dir=data_dir, auth="off", audit="on", log_level="warning"
        )
        app = create_app(settings)
        try:
            # Whatever the stopped server logged but did not materialize becomes searchable.
            app.state.consilium.audit_writer.flush(materialize=True)
            with TestClient(app) as client:
                bundle = client.get("/fhir/AuditEvent", params={"_count": "1000"}).json()
        finally:
            app.state.consilium.store.close()
    found = set()
    for entry in bundle.get("entry", []):
        for entity in entry["resource"].get("entity", []):
            value = entity.get("what", {}).get("identifier", {}).get("value")
            if value:
                found.add(value)
    return found


def test_ctrl_c_drains_audit_then_stops_database_quickly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Server(data_dir, env={"CONSILIUM_AUDIT": "on", "CONSILIUM_LOG_LEVEL": "INFO"})
    try:
        request_ids = _traffic(server)
        kids = children(server.proc.pid)
        assert kids, "the embedded database should run as a child process"
        os.killpg(server.proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        try:
            code = server.proc.wait(timeout=STOP_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within {STOP_BOUND_SECONDS}s of SIGINT")
    finally:
        if server.proc.poll() is None:
            server.kill()
    log = server.log.read_text(errors="replace")
    assert code == 0, log
    assert " ERROR " not in log and "Traceback" not in log, log
    assert not [k for k in kids if alive(k)], "embedded database outlived the server"
    missing = set(request_ids) - _audited_request_ids(data_dir)
    assert not missing, f"audit events lost at shutdown: {sorted(missing)}"
