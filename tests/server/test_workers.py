"""Two real server processes on one database, driven over HTTP (docs/workers.md).

Each test talks to process A and process B on their own ports, as a load balancer would send
two requests of one client to different workers: what one process issued or wrote, the other
must honour, and the read cache (on in both) must never hand out the version before a write
that was already acknowledged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from auth.store import AuthStore
from server.embedded_db import free_loopback_port
from tests.server.rest.test_oauth_authcode import (
    REDIRECT,
    SCOPES,
    auth_params,
    code_from,
    exchange,
    login,
    pkce_pair,
)
from tests.smart_helpers import ADMIN, backend_client, bearer, load_parties, register

ROOT = Path(__file__).resolve().parents[2]
LEASE = 1.0
BASE = "http://localhost:8080"  # the public base both processes name (no request reaches it)
DB_NAMES: list[str] = []  # the module's database, for the auth records a test adds directly
FHIR_JSON = {"Content-Type": "application/fhir+json", **bearer(ADMIN)}


def _start(port: int, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1"]
    with (Path(env["CONSILIUM_DATA_DIR"]) / f"server-{port}.log").open("wb") as log:
        return subprocess.Popen(
            [*cmd, "--port", str(port), *extra],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], data_dir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            logs = "".join(p.read_text() for p in data_dir.glob("*.log"))
            raise AssertionError(f"the server exited during start-up:\n{logs[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _environment(mongo_uri: str, db_name: str, data_dir: Path) -> dict[str, str]:
    return {
        "CONSILIUM_MONGODB_URI": mongo_uri,
        "CONSILIUM_DB_NAME": db_name,
        "CONSILIUM_DATA_DIR": str(data_dir),
        "CONSILIUM_AUTH": "on",
        "CONSILIUM_AUDIT": "off",
        "CONSILIUM_ADMIN_TOKEN": ADMIN,
        # Behind a load balancer every worker names the same public base (token issuer, aud).
        "CONSILIUM_BASE_URL": BASE,
        "CONSILIUM_READ_CACHE": "1000",
        "CONSILIUM_READ_CACHE_LEASE_SECONDS": str(LEASE),
        "CONSILIUM_LOG_LEVEL": "warning",
    }


@pytest.fixture(scope="module")
def pair(
    mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Processes A and B: one database, one data dir (the signing keys), two ports."""
    DB_NAMES[:] = [f"t_workers_{uuid.uuid4().hex[:8]}"]
    env = _environment(mongo_uri, DB_NAMES[0], tmp_path_factory.mktemp("w"))
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.Client] = []
    try:
        for _ in range(2):  # one after the other: the first start generates the keys
            port = free_loopback_port()
            procs.append(_start(port, env))
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, procs[-1], Path(env["CONSILIUM_DATA_DIR"]))
            clients.append(httpx.Client(base_url=url, follow_redirects=False, timeout=30))
        time.sleep(LEASE + 0.5)  # a new process serves cached versions after one lease
        load_parties(clients[0])  # type: ignore[arg-type]
        yield clients[0], clients[1]
    finally:
        for c in clients:
            c.close()
        for p in procs:
            _stop(p)
        cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
        cleanup.drop_database(DB_NAMES[0])
        cleanup.close()


def test_a_write_on_one_process_is_read_at_once_on_the_other(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    r = a.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    body = r.json()
    url = f"/fhir/Patient/{body['id']}"
    body.pop("meta")
    for n in range(2, 22):
        assert b.get(url, headers=bearer(ADMIN)).status_code == 200  # B caches version n-1
        assert b.get(url, headers=bearer(ADMIN)).headers["etag"] == f'W/"{n - 1}"'
        body["birthDate"] = f"19{n + 10}-01-01"
        assert a.put(url, json=body, headers=FHIR_JSON).status_code == 200
        seen = b.get(url, headers=bearer(ADMIN))  # right after A's acknowledgement
        assert seen.headers["etag"] == f'W/"{n}"', f"B served a stale version after write {n}"
        assert seen.json()["birthDate"] == body["birthDate"]


def test_a_delete_on_one_process_is_a_410_on_the_other(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    rid = a.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON).json()["id"]
    for _ in range(2):
        assert b.get(f"/fhir/Patient/{rid}", headers=bearer(ADMIN)).status_code == 200
    assert a.delete(f"/fhir/Patient/{rid}", headers=bearer(ADMIN)).status_code == 204
    assert b.get(f"/fhir/Patient/{rid}", headers=bearer(ADMIN)).status_code == 410


def test_a_search_on_the_other_process_sees_a_write_at_once(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    url = f"/fhir/Patient?family=Xproc{uuid.uuid4().hex[:8]}"
    body = {"resourceType": "Patient", "name": [{"family": url.rsplit("=", 1)[1]}]}
    for n in range(1, 11):
        for _ in range(2):  # B keeps the first page of n - 1 matches
            assert b.get(url, headers=bearer(ADMIN)).json()["total"] == n - 1
        assert a.post("/fhir/Patient", json=body, headers=FHIR_JSON).status_code == 201
        seen = b.get(url, headers=bearer(ADMIN)).json()  # right after A's acknowledgement
        assert seen["total"] == n, f"B served a stale first page after write {n}"


def _assertion_grant(server: httpx.Client, jti: str | None = None) -> dict[str, str]:
    """A client-credentials form with a fresh backend client's signed assertion."""
    client_id, key = backend_client(server)  # type: ignore[arg-type]
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": key.assertion(client_id, aud=f"{BASE}/oauth/token", jti=jti),
    }


def test_a_token_issued_by_one_process_works_on_the_other(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    form = _assertion_grant(a)
    token = a.post("/oauth/token", data=form).json()["access_token"]
    assert b.get("/fhir/Patient/pat-a", headers=bearer(token)).status_code == 200


def test_a_client_assertion_jti_replayed_on_the_other_process_is_refused(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    form = _assertion_grant(a, jti="once-only")
    assert a.post("/oauth/token", data=form).status_code == 200
    replay = b.post("/oauth/token", data=form)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


def test_an_authorization_code_from_one_process_is_redeemed_once_on_the_other(
    pair: tuple[httpx.Client, httpx.Client], mongo_uri: str
) -> None:
    a, b = pair
    meta = {
        "client_name": "viewer",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [REDIRECT],
        "scope": SCOPES,
    }
    app_id = str(register(a, meta)["client_id"])  # type: ignore[arg-type]
    user = f"dr-{uuid.uuid4().hex[:6]}"
    store = AuthStore(mongo_uri, DB_NAMES[0])
    try:
        store.add_user(
            user, "correct horse", "PractitionerRole/role-a", organization="clinic-a", role="clinic"
        )
    finally:
        store.close()
    verifier, challenge = pkce_pair()
    code = code_from(
        login(a, auth_params(app_id, challenge, aud=f"{BASE}/fhir"), patient="pat-a", username=user)  # type: ignore[arg-type]
    )
    first = exchange(b, app_id, code, verifier)  # type: ignore[arg-type]
    assert first.status_code == 200, first.text
    assert first.json()["patient"] == "pat-a"
    again = exchange(a, app_id, code, verifier)  # type: ignore[arg-type]
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_next_page_link_from_one_process_is_served_by_the_other(
    pair: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = pair
    first = a.get("/fhir/Organization?_count=2", headers=bearer(ADMIN))
    assert first.status_code == 200
    links = {link["relation"]: link["url"] for link in first.json()["link"]}
    nxt = httpx.URL(links["next"])
    second = b.get(f"{nxt.path}?{nxt.query.decode()}", headers=bearer(ADMIN))
    assert second.status_code == 200, second.text
    ids = {e["resource"]["id"] for e in first.json()["entry"]}
    assert ids.isdisjoint({e["resource"]["id"] for e in second.json()["entry"]})


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_serve_workers_2_shares_one_database_keys_and_cache_correctness(
    mongo_uri: str, tmp_path: Path
) -> None:
    db_name = f"t_workers2_{uuid.uuid4().hex[:8]}"
    env = _environment(mongo_uri, db_name, tmp_path)
    port = free_loopback_port()
    proc = _start(port, env, "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, tmp_path)
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < 2:  # uvicorn starts the workers one by one
            assert time.monotonic() < deadline, "fewer than two worker processes"
            time.sleep(0.2)
        # The parent made the signing key before the workers started: exactly one.
        assert len(list((tmp_path / "keys").glob("*.pem"))) == 1
        time.sleep(LEASE + 0.5)
        r = httpx.post(f"{url}/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
        assert r.status_code == 201, r.text
        body = r.json()
        body.pop("meta")
        for n in range(2, 12):
            for _ in range(3):  # new connections: either worker may answer
                httpx.get(f"{url}/fhir/Patient/{body['id']}", headers=bearer(ADMIN))
            body["birthDate"] = f"19{n + 10}-01-01"
            put = httpx.put(f"{url}/fhir/Patient/{body['id']}", json=body, headers=FHIR_JSON)
            assert put.status_code == 200
            for _ in range(3):
                got = httpx.get(f"{url}/fhir/Patient/{body['id']}", headers=bearer(ADMIN))
                assert got.headers["etag"] == f'W/"{n}"'
    finally:
        _stop(proc)
        cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
        cleanup.drop_database(db_name)
        cleanup.close()
    assert not _children(proc.pid)
