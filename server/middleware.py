"""ASGI middleware: request id and request-body size limit.

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
                message["headers"] = [*message.get("headers", []), rid_header]
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
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
