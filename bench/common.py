"""Shared benchmark plumbing: servers in child processes, a threaded HTTP load loop, percentiles.

Why child processes: the load generator and the server must not share a GIL, or the figures
measure Python thread scheduling instead of the server.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymongo import monitoring

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figures:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    # percentiles computed by the load tool itself (wrk), when it keeps no per-request list
    percentiles: dict[float, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if p in self.percentiles:
            return self.percentiles[p]
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.throughput:9.1f} req/s   p50 {self.pct(50):7.2f} ms   "
            f"p95 {self.pct(95):7.2f} ms   n={self.requests} errors={self.errors}"
        )


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy")


@contextmanager
def child_server(
    module_args: Sequence[str], health_url: str, env: dict[str, str] | None = None
) -> Iterator[None]:
    log = open(os.devnull, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, *module_args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=log,
    )
    try:
        wait_healthy(health_url)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_load(
    name: str,
    make_request: Callable[[httpx.Client, int], httpx.Response],
    *,
    total: int,
    concurrency: int,
    expect: int = 200,
    max_seconds: float | None = None,
    timeout: float = 120,
) -> Figures:
    """Send ``total`` requests from ``concurrency`` keep-alive clients; time each one.

    ``max_seconds``: stop sending after that long (a slow figure then reports the requests it
    completed instead of holding the run for minutes). A transport error counts as an error.
    """
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))
    stop_at = time.perf_counter() + max_seconds if max_seconds else None
    done = 0

    def worker() -> None:
        nonlocal errors, done
        local: list[float] = []
        bad = 0
        with httpx.Client(timeout=timeout) as client:
            while stop_at is None or time.perf_counter() < stop_at:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                t0 = time.perf_counter()
                try:
                    status = make_request(client, i).status_code
                except httpx.HTTPError:
                    status = 0
                local.append((time.perf_counter() - t0) * 1000)
                if status != expect:
                    bad += 1
        with lock:
            latencies.extend(local)
            errors += bad
            done += len(local)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Figures(name, done, time.perf_counter() - start, latencies, errors)


def summary(values: list[float]) -> str:
    return f"mean {statistics.mean(values):.1f}" if values else "n/a"


def serve_app(build: Callable[[str, str], Any]) -> None:
    """``__main__`` of the benchmark servers: ``--uri --db --port``, then uvicorn on loopback."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    a = parser.parse_args()
    uvicorn.run(build(a.uri, a.db), host="127.0.0.1", port=a.port, log_level="warning")


def backend_token(
    server: str, admin: str, base: str, scope: str, post: Callable[..., Any] = httpx.post
) -> str:
    """A real SMART backend-services access token: register a ``private_key_jwt`` client with
    the admin token, then ``client_credentials`` with a signed assertion (RS384).

    Why not a token minted from the key directory: the figures must include what a real client
    costs the server (the registered client's scopes, the signature check), nothing less.
    ``base`` is the server's public base URL (the assertion's audience); ``post`` sends the two
    requests (a ``TestClient``'s, with ``server`` "", for an in-process app).
    """
    import uuid

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jose import jwk, jwt

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = {**jwk.construct(pem, "RS384").public_key().to_dict(), "kid": "k1", "alg": "RS384"}
    meta = {
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "jwks": {"keys": [public]},
        "scope": scope,
    }
    r = post(f"{server}/oauth/register", json=meta, headers={"Authorization": f"Bearer {admin}"})
    r.raise_for_status()
    cid = r.json()["client_id"]
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": cid,
            "sub": cid,
            "aud": f"{base}/oauth/token",
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
        },
        pem,
        algorithm="RS384",
        headers={"kid": "k1"},
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": scope,
    }
    r = post(f"{server}/oauth/token", data=form)
    r.raise_for_status()
    return str(r.json()["access_token"])


class FindRecorder(monitoring.CommandListener):
    """The ``find`` commands a FHIR request sends, for the raw floor to replay (a pymongo
    listener on the in-process app's client)."""

    def __init__(self) -> None:
        self.finds: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.finds.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
