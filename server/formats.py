"""Content negotiation and FHIR response building (JSON only; XML is refused with 406/415).

Why hand-rolled responses instead of FastAPI's JSONResponse: resources are already plain dicts,
and orjson writes them several times faster (``server.fhirjson`` adds exact decimals); headers (ETag, Location, Last-Modified) and the
``_pretty``/``_format`` switches are FHIR-specific anyway.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from server import fhirjson
from server.errors import FhirError

FHIR_JSON = "application/fhir+json"
JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "text/json"}
FORMAT_ALIASES = {
    "json": FHIR_JSON,
    "application/json": "application/json",
    "application/fhir+json": FHIR_JSON,
    "application/json+fhir": FHIR_JSON,
    "text/json": "application/json",
}
XML_TYPES = {"xml", "text/xml", "application/xml", "application/fhir+xml", "application/xml+fhir"}
PATCH_JSON = "application/json-patch+json"


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def response_media_type(request: Request) -> str:
    """Pick the response type from ``_format`` (wins) or Accept; 406 when only XML/others fit."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        key = fmt.strip().lower()
        if key in FORMAT_ALIASES:
            return FORMAT_ALIASES[key]
        raise FhirError(406, "not-supported", f"_format {fmt!r} is not supported; use json")
    accept = request.headers.get("accept")
    if not accept or accept == "*/*" or accept == FHIR_JSON:
        return FHIR_JSON
    best: tuple[float, str] | None = None
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        q = 1.0
        for p in pieces[1:]:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        chosen = None
        if media in ("application/fhir+json", "application/json+fhir", "*/*", "application/*"):
            chosen = FHIR_JSON
        elif media in ("application/json", "text/json", "text/*"):
            chosen = "application/json"
        elif media == "text/html":  # browsers: give them JSON rather than a 406
            chosen = FHIR_JSON
        if chosen and (best is None or q > best[0]):
            best = (q, chosen)
    if best is None:
        raise FhirError(
            406,
            "not-supported",
            f"cannot produce any of Accept: {accept}; use application/fhir+json",
        )
    return best[1]


async def negotiate(request: Request) -> None:
    """Router dependency: settle the response format before any work (a 406 must not follow a
    committed write)."""
    request.state.media_type = response_media_type(request)


def check_body_type(request: Request, allowed: set[str] | None = None) -> str:
    ctype = request.headers.get("content-type")
    if not ctype:
        raise FhirError(415, "not-supported", "Content-Type is required; use application/fhir+json")
    media = _media(ctype)
    if media in (allowed or JSON_TYPES):
        return media
    raise FhirError(
        415, "not-supported", f"unsupported Content-Type {media!r}; use application/fhir+json"
    )


async def read_json_body(request: Request, allowed: set[str] | None = None) -> Any:
    check_body_type(request, allowed)
    raw = await request.body()
    if not raw.strip():
        raise FhirError(400, "structure", "the request body is empty")
    try:
        return fhirjson.loads(raw)
    except fhirjson.JsonError as exc:
        raise FhirError(400, "structure", f"the body is not valid JSON: {exc}") from exc


def dumps(body: Any, pretty: bool) -> bytes:
    """Decimals come out as the exact digits they were sent with (see ``server.fhirjson``)."""
    return fhirjson.dumps(body, pretty=pretty)


def is_pretty(request: Request) -> bool:
    return request.query_params.get("_pretty", "").lower() == "true"


def fhir_response(
    request: Request,
    body: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    media_type: str | None = None,
) -> Response:
    media = media_type or getattr(request.state, "media_type", None) or response_media_type(request)
    content = b"" if body is None else dumps(body, is_pretty(request))
    return Response(
        content=content,
        status_code=status,
        headers=headers,
        media_type=f"{media}; charset=utf-8" if body is not None else None,
    )
