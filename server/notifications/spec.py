"""A Subscription resource → the typed ``Spec`` the matcher and the worker use (pure).

Classic R4 form: ``criteria`` is a FHIR search (``DiagnosticReport?based-on=ServiceRequest/1``),
parsed by the search engine's own parser (``server.search.params.parse``, strict), so a
Subscription is refused (422) for exactly the type, parameter or value a search would refuse.
Payload content (docs/notifications.md): ``channel.payload`` absent → ``empty``; present →
``full-resource`` unless the Subscriptions Backport IG's ``backport-payload-content`` extension on
it says ``id-only`` or ``empty``.

Server-side fields never stored in the resource: the HMAC secret (the ``SECRET_EXT`` extension on
``channel``, removed by the write hook before storage) and the owner (the writing party; a
trusted writer may name another party with ``OWNER_EXT``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from resources.registry import is_resource_type
from server.errors import FhirError
from server.search import params
from server.search.model import SearchRequest

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
PAYLOAD_EXT = f"{BACKPORT}/backport-payload-content"
FILTER_EXT = f"{BACKPORT}/backport-filter-criteria"
HEARTBEAT_EXT = f"{BACKPORT}/backport-heartbeat-period"
MAX_FILTERS = 10
SECRET_EXT = "https://consilium.health/fhir/StructureDefinition/subscription-hmac-secret"  # noqa: S105 - a URL
OWNER_EXT = "https://consilium.health/fhir/StructureDefinition/subscription-owner"
PAYLOADS = ("empty", "id-only", "full-resource")
MAX_HEADERS = 10
_HEADER = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}):[ \t]*([\x20-\x7e]{0,1024})$")
# Headers the server sets itself or that would change how the request is framed or routed.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "x-consilium-signature",
        "x-consilium-subscription",
        "x-consilium-event-number",
        "x-consilium-focus",
    }
)


def unprocessable(message: str, expression: str) -> FhirError:
    return FhirError(422, "invalid", message, expression=[expression])


@dataclass(frozen=True)
class Spec:
    id: str
    status: str
    resource_type: str
    query: str  # the criteria's query string, without the type
    endpoint: str
    payload: str  # empty | id-only | full-resource
    mime: str | None
    headers: tuple[tuple[str, str], ...] = ()
    end: str | None = None
    # The Backport IG form: the topic canonical, its filters as (type, query), heartbeat seconds.
    topic: str | None = None
    filters: tuple[tuple[str, str], ...] = ()
    heartbeat: int | None = None


def parse_criteria(criteria: Any) -> tuple[str, str, SearchRequest]:
    """(type, query string, parsed request); 422 for anything a strict search would refuse."""
    if not isinstance(criteria, str) or not criteria.strip():
        raise unprocessable("criteria must be a FHIR search like Type?param=value", "criteria")
    raw = criteria.strip()
    rtype, _, query = raw.partition("?")
    if not is_resource_type(rtype):
        raise unprocessable(f"criteria: {rtype!r} is not a resource type", "criteria")
    items = parse_qsl(query, keep_blank_values=True)
    try:
        req = params.parse(rtype, items, strict=True)
    except FhirError as exc:
        raise unprocessable(f"criteria: {exc}", "criteria") from exc
    result = [n for n, _ in req.echo if n in params.RESULT_PARAMS or n.startswith("_include")]
    if result or req.includes or req.revincludes or req.sort:
        raise unprocessable(
            "criteria may not use result parameters (_sort, _include …)", "criteria"
        )
    return rtype, query, req


def _payload(channel: dict[str, Any]) -> tuple[str, str | None]:
    mime = channel.get("payload")
    content: str | None = None
    for ext in (channel.get("_payload") or {}).get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == PAYLOAD_EXT:
            content = ext.get("valueCode")
    if content is not None and content not in PAYLOADS:
        raise unprocessable(f"payload content must be one of {PAYLOADS}", "channel.payload")
    if mime is None:
        return ("empty" if content is None else content), None
    if mime not in ("application/fhir+json", "application/json"):
        raise unprocessable("channel.payload must be application/fhir+json", "channel.payload")
    return content or "full-resource", str(mime)


def _headers(channel: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    raw = channel.get("header") or []
    if len(raw) > MAX_HEADERS:
        raise unprocessable(f"at most {MAX_HEADERS} channel headers", "channel.header")
    out: list[tuple[str, str]] = []
    for h in raw:
        m = _HEADER.match(h) if isinstance(h, str) else None
        if m is None:
            raise unprocessable(f"channel.header {h!r} is not 'Name: value'", "channel.header")
        if m[1].lower() in RESERVED_HEADERS:
            raise unprocessable(f"channel.header may not set {m[1]}", "channel.header")
        out.append((m[1], m[2]))
    return tuple(out)


def secret_of(resource: dict[str, Any]) -> str | None:
    """The HMAC secret the client sent (None: none in this version)."""
    for ext in (resource.get("channel") or {}).get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == SECRET_EXT:
            value = ext.get("valueString")
            if not isinstance(value, str) or not 16 <= len(value) <= 256:
                raise unprocessable(
                    "the HMAC secret must be a string of 16 to 256 characters", "channel.extension"
                )
            return value
    return None


def without_secret(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as stored: the secret extension removed (it is kept server-side only)."""
    channel = dict(resource.get("channel") or {})
    exts = [
        e
        for e in channel.get("extension") or []
        if not (isinstance(e, dict) and e.get("url") == SECRET_EXT)
    ]
    if exts:
        channel["extension"] = exts
    else:
        channel.pop("extension", None)
    return {**resource, "channel": channel}


def owner_of(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The party a trusted writer provisions the Subscription for (``OWNER_EXT``), if any:
    sub-extensions ``role`` (valueCode), ``organization`` (valueReference Organization/x),
    ``practitionerRole`` (valueReference) and ``scope`` (valueString, space-separated)."""
    for ext in resource.get("extension") or []:
        if not (isinstance(ext, dict) and ext.get("url") == OWNER_EXT):
            continue
        owner: dict[str, Any] = {"client_id": "provisioned", "scopes": ["system/*.rs"]}
        for sub in ext.get("extension") or []:
            url = sub.get("url")
            if url == "role":
                owner["role"] = sub.get("valueCode")
            elif url in ("organization", "practitionerRole"):
                ref = str((sub.get("valueReference") or {}).get("reference", ""))
                key = "organization" if url == "organization" else "practitioner_role"
                owner[key] = ref.rsplit("/", 1)[-1]
            elif url == "scope":
                owner["scopes"] = str(sub.get("valueString", "")).split()
        if owner.get("role") not in ("clinic", "specialist", "insurer", "coordinator"):
            raise unprocessable("the subscription owner needs a known role", "extension")
        return owner
    return None


def _heartbeat(channel: dict[str, Any]) -> int | None:
    for ext in channel.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == HEARTBEAT_EXT:
            value = ext.get("valueUnsignedInt")
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 86400:
                raise unprocessable(
                    "the heartbeat period is 1 to 86400 seconds", "channel.extension"
                )
            return value
    return None


def _topic(resource: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The Backport IG form: (topic canonical, filters), checked against the topic."""
    from server.notifications.topics import check_filters, topic_of

    canonical = str(resource["criteria"]).strip()
    topic = topic_of(canonical)
    raw = [
        e.get("valueString")
        for e in (resource.get("_criteria") or {}).get("extension") or []
        if isinstance(e, dict) and e.get("url") == FILTER_EXT
    ]
    if len(raw) > MAX_FILTERS or not all(isinstance(f, str) for f in raw):
        raise unprocessable(f"at most {MAX_FILTERS} filter criteria strings", "criteria")
    return topic.url, tuple(check_filters(topic, [str(f) for f in raw]))


def is_topic(resource: dict[str, Any]) -> bool:
    criteria = resource.get("criteria")
    return isinstance(criteria, str) and criteria.strip().startswith(("http://", "https://"))


def parse(resource: dict[str, Any]) -> tuple[Spec, SearchRequest | None]:
    """Validate a Subscription for the rest-hook channel; 422 with the element at fault.

    Classic criteria give the parsed search; the topic form gives None (its triggers and
    filters are planned from ``topics``)."""
    channel = resource.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise unprocessable("only channel.type rest-hook is supported", "channel.type")
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise unprocessable("a rest-hook subscription needs channel.endpoint", "channel.endpoint")
    payload, mime = _payload(channel)
    if is_topic(resource):
        topic, filters = _topic(resource)
        spec = Spec(
            id=str(resource.get("id", "")),
            status=str(resource.get("status", "")),
            resource_type="",
            query="",
            endpoint=endpoint,
            payload=payload,
            mime=mime,
            headers=_headers(channel),
            end=resource.get("end"),
            topic=topic,
            filters=filters,
            heartbeat=_heartbeat(channel),
        )
        return spec, None
    rtype, query, req = parse_criteria(resource.get("criteria"))
    spec = Spec(
        id=str(resource.get("id", "")),
        status=str(resource.get("status", "")),
        resource_type=rtype,
        query=query,
        endpoint=endpoint,
        payload=payload,
        mime=mime,
        headers=_headers(channel),
        end=resource.get("end"),
        heartbeat=_heartbeat(channel),
    )
    return spec, req
