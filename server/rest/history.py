"""History at instance, type and system level: Bundle type ``history``, newest first.

Paging is keyset-based (``_cursor`` = the (lastUpdated, key) of the last entry sent), so new
writes during paging never shift pages: they are newer than every cursor and sort before it.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

import server.rest.paths  # noqa: F401 - registers the fhirtype/fhirkey path convertors
from server.deps import BaseDep, RepoDep, StateDep, check_id, check_type
from server.errors import bad_request
from server.formats import fhir_response
from server.repository import Repository, Stored
from server.timeutil import fhir_instant, parse_fhir_instant

router = APIRouter()


def _encode_cursor(key: tuple[datetime, str]) -> str:
    raw = orjson.dumps([key[0].isoformat(), key[1]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        ts, key = orjson.loads(raw)
        if not isinstance(ts, str) or not isinstance(key, str):
            raise ValueError
        return datetime.fromisoformat(ts), key
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise bad_request(f"invalid _cursor {token!r}") from exc


def parse_count(request: Request, default: int, maximum: int) -> int:
    raw = request.query_params.get("_count")
    if raw is None:
        return default
    if not raw.isdigit():
        raise bad_request(f"_count must be a non-negative integer, got {raw!r}")
    return min(int(raw), maximum)


def _parse_instant_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = parse_fhir_instant(raw)
    if value is None:
        raise bad_request(f"{name} must be a FHIR instant, got {raw!r}")
    return value


def history_entry(base: str, stored: Stored) -> dict[str, Any]:
    url = f"{base}/{stored.resource_type}/{stored.id}"
    method = stored.method or "PUT"
    entry: dict[str, Any] = {"fullUrl": url}
    if stored.resource is not None:
        entry["resource"] = stored.resource
    entry["request"] = {
        "method": method,
        "url": stored.resource_type if method == "POST" else f"{stored.resource_type}/{stored.id}",
    }
    status = {"POST": "201 Created", "DELETE": "204 No Content"}.get(method, "200 OK")
    entry["response"] = {
        "status": status,
        "etag": stored.etag,
        "lastModified": fhir_instant(stored.last_updated),
    }
    return entry


def history_bundle(
    request: Request,
    repo: Repository,
    base: str,
    path: str,
    *,
    state_default: int,
    state_max: int,
    resource_type: str | None = None,
    rid: str | None = None,
) -> Response:
    count = parse_count(request, state_default, state_max)
    since = _parse_instant_param(request, "_since")
    at = _parse_instant_param(request, "_at")
    cursor = request.query_params.get("_cursor")
    after = _decode_cursor(cursor) if cursor else None
    items = list(
        repo.history(
            resource_type=resource_type,
            rid=rid,
            since=since,
            at_or_before=at,
            after_key=after,
            limit=count + 1,
        )
    )
    has_more = len(items) > count
    items = items[:count]
    keep = {k: v for k, v in request.query_params.items() if k not in ("_cursor",)}
    links = [
        {
            "relation": "self",
            "url": f"{base}/{path}"
            + (f"?{urlencode(request.query_params)}" if request.query_params else ""),
        }
    ]
    if has_more and items:
        nxt = {**keep, "_cursor": _encode_cursor(repo.history_key(items[-1]))}
        links.append({"relation": "next", "url": f"{base}/{path}?{urlencode(nxt)}"})
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "link": links,
        "entry": [history_entry(base, s) for s in items],
    }
    if not bundle["entry"]:
        del bundle["entry"]
    return fhir_response(request, bundle)


@router.get("/_history")
def system_history(request: Request, repo: RepoDep, base: BaseDep, state: StateDep) -> Response:
    s = state.settings
    return history_bundle(
        request,
        repo,
        base,
        "_history",
        state_default=s.default_page_size,
        state_max=s.max_page_size,
    )


@router.get("/{resource_type:fhirtype}/_history")
def type_history(
    resource_type: str, request: Request, repo: RepoDep, base: BaseDep, state: StateDep
) -> Response:
    check_type(resource_type)
    s = state.settings
    return history_bundle(
        request,
        repo,
        base,
        f"{resource_type}/_history",
        state_default=s.default_page_size,
        state_max=s.max_page_size,
        resource_type=resource_type,
    )


@router.get("/{resource_type:fhirtype}/{rid:fhirkey}/_history")
def instance_history(
    resource_type: str, rid: str, request: Request, repo: RepoDep, base: BaseDep, state: StateDep
) -> Response:
    check_type(resource_type)
    check_id(rid)
    if repo.current(resource_type, rid) is None:
        repo.read(resource_type, rid)  # raises the 404
    s = state.settings
    return history_bundle(
        request,
        repo,
        base,
        f"{resource_type}/{rid}/_history",
        state_default=s.default_page_size,
        state_max=s.max_page_size,
        resource_type=resource_type,
        rid=rid,
    )
