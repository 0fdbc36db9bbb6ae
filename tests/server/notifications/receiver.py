"""A real HTTP receiver for notification tests: ``http.server`` in a thread on 127.0.0.1.

``stop()`` closes the socket (the endpoint is then really down: connection refused) and
``start()`` opens it again on the same port, so a test can take the receiver down and bring it
back. Every POST is recorded with its headers and body."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def number(self) -> int:
        return int(self.headers["x-consilium-event-number"])


class Receiver:
    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.port = port
        self.status = status
        self.got: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.got.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.got)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` notifications, polling until ``timeout`` (then what arrived)."""
        return wait_until(lambda: len(self.received()) >= count, timeout, self.received)


def wait_until(cond: Callable[[], bool], timeout: float, result: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cond():
        time.sleep(0.02)
    return result()
