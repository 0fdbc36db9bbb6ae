"""The wrk driver sends what it is given and reports what wrk measured (a real wrk process
against a real local HTTP server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import wrk_load
from bench.wrk_load import Call

pytestmark = pytest.mark.skipif(
    not wrk_load.available(), reason="wrk is not installed (apt-get install wrk; .ci/run does)"
)


class Seen:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str, bytes]] = []


@pytest.fixture
def receiver() -> Iterator[tuple[str, Seen]]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with seen.lock:
                seen.requests.append(
                    (self.command, self.path, self.headers.get("X-Probe", ""), body)
                )
            status = 500 if self.path == "/fail" else 201 if self.command == "POST" else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = handle_one

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_sends_every_call_with_its_method_headers_and_body(receiver: tuple[str, Seen]) -> None:
    base, seen = receiver
    body = b'{"resourceType": "Bundle", "note": "quotes \\" and ]] stay"}'
    calls = [
        Call("GET", "/fhir/Patient?family=a&_count=10", {"X-Probe": "get"}),
        Call("POST", "/fhir", {"X-Probe": "post", "Content-Type": "application/json"}, body),
    ]
    figures = wrk_load.run("probe", base, calls, seconds=1, concurrency=2)
    assert figures.requests > 0 and figures.errors == 0
    kinds = {(m, p, probe, b) for m, p, probe, b in seen.requests}
    assert kinds == {("GET", calls[0].path, "get", b""), ("POST", "/fhir", "post", body)}


def test_reports_wrk_percentiles_and_rate(receiver: tuple[str, Seen]) -> None:
    base, seen = receiver
    figures = wrk_load.run("probe", base, [Call("GET", "/a")], seconds=1, concurrency=2)
    assert figures.throughput == pytest.approx(figures.requests / figures.seconds)
    assert 0 < figures.pct(50) <= figures.pct(95)
    assert abs(figures.requests - len(seen.requests)) <= 2  # in flight when wrk stopped


def test_counts_responses_outside_2xx_3xx_as_errors(receiver: tuple[str, Seen]) -> None:
    base, _ = receiver
    figures = wrk_load.run(
        "probe", base, [Call("GET", "/fail"), Call("GET", "/ok")], seconds=1, concurrency=2
    )
    assert 0 < figures.errors < figures.requests
