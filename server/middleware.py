"""ASGI middleware: request id, request-body size limit, and no browser storage of FHIR answers.

Why ``Cache-Control: no-store`` on every ``/fhir`` response that sets none itself: reads carry
``ETag`` and ``Last-Modified`` and nothing else, and with that a browser applies heuristic
freshness (a tenth of the resource's age) and answers a later ``fetch`` of the same URL from its
own cache. The tracker then showed a case's status from before the last change after a reload.
``no-store`` rather than ``private, no-cache``: these are health records, often read on shared
clinic workstations, and must not be written to a browser's disk. Clients that want to save a
download still revalidate explicitly (``If-None-Match`` gives a 304).

Pure ASGI (not BaseHTTPMiddleware) so the body limit is enforced while streaming, before a large
body is buffered, and so neither adds a task switch to the read hot path.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import FhirError

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9\-_.]{1,64}$")
_NO_STORE = (b"cache-control", b"no-store")


class RequestIdAndSizeLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        supplied = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _REQUEST_ID_OK.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        rid_header = (b"x-request-id", request_id.encode())
        path = scope.get("path", "")
        fhir = path == "/fhir" or path.startswith("/fhir/")

        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(send, rid_header)
                return

        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise self._error()
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                sent = list(message.get("headers", []))
                sent.append(rid_header)
                if fhir and not any(k.lower() == b"cache-control" for k, _ in sent):
                    sent.append(_NO_STORE)
                message["headers"] = sent
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except FhirError:
            if started:
                raise
            await self._reject(send, rid_header)

    def _error(self) -> FhirError:
        return FhirError(413, "too-costly", f"request body exceeds {self.max_body_bytes} bytes")

    async def _reject(self, send: Send, rid_header: tuple[bytes, bytes]) -> None:
        body = orjson.dumps(self._error().outcome())
        headers: list[Any] = [
            (b"content-type", b"application/fhir+json; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            rid_header,
            _NO_STORE,
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
