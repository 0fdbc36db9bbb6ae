"""Parsing a batch/transaction Bundle into typed entries, and shaping response entries.

Everything here is pure: what the client asked for per entry (``Entry``), and what happened
(``Outcome``) turned into a ``Bundle.entry.response``. Structural errors in one entry are
reported against ``Bundle.entry[i]`` so a client can find them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from resources.registry import is_resource_type
from resources.validation import ID_PATTERN
from server.conditional import create_criteria
from server.errors import FhirError, Issue, info_outcome
from server.repository import Stored
from server.timeutil import fhir_instant

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# http.html#transaction: DELETE, then POST, then PUT/PATCH, then GET/HEAD.
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    501: "Not Implemented",
}


def entry_error(index: int, status: int, diagnostics: str, code: str = "invalid") -> FhirError:
    return FhirError(status, code, diagnostics, expression=[f"Bundle.entry[{index}]"])


def locate(err: FhirError, index: int) -> FhirError:
    """Prefix every issue of ``err`` with the entry it came from."""
    where = f"Bundle.entry[{index}]"
    err.issues = [
        Issue(
            i.code,
            i.diagnostics if i.diagnostics.startswith(where) else f"{where}: {i.diagnostics}",
            i.severity,
            [where, *i.expression],
        )
        for i in err.issues
    ]
    return err


@dataclass
class Entry:
    index: int
    method: str
    url: str
    resource_type: str | None = None
    rid: str | None = None
    vid: int | None = None
    query: str = ""
    full_url: str | None = None
    resource: Any = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_none_exist: str | None = None
    if_modified_since: str | None = None
    error: FhirError | None = None  # a batch entry that could not even be parsed

    @property
    def is_conditional(self) -> bool:
        return self.rid is None and bool(self.query)


@dataclass
class Outcome:
    status: int
    stored: Stored | None = None
    resource: Any = None  # what to return (a read's resource, or the written version)
    location: bool = False
    outcome: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _relative(url: str, base: str) -> str:
    if "://" not in url:
        return url.lstrip("/")
    prefix = base.rstrip("/") + "/"
    if url.startswith(prefix):
        return url[len(prefix) :]
    raise ValueError(f"absolute URL {url!r} is not on this server ({base})")


def parse_url(entry: Entry, base: str) -> None:
    try:
        rel = _relative(entry.url, base)
    except ValueError as exc:
        raise entry_error(entry.index, 400, str(exc)) from exc
    split = urlsplit(rel)
    path, entry.query = split.path.strip("/"), split.query
    parts = path.split("/") if path else []
    i = entry.index
    if not parts or not is_resource_type(parts[0]):
        raise entry_error(i, 400, f"request.url {entry.url!r} must start with a resource type")
    entry.resource_type = parts[0]
    if len(parts) >= 2:
        if not ID_PATTERN.match(parts[1]):
            raise entry_error(i, 400, f"invalid id in request.url {entry.url!r}")
        entry.rid = parts[1]
    if len(parts) == 4 and parts[2] == "_history" and parts[3].isdigit() and len(parts[3]) < 18:
        entry.vid = int(parts[3])
    elif len(parts) > 2:
        raise entry_error(i, 400, f"unsupported request.url {entry.url!r} in a Bundle")
    m = entry.method
    if entry.vid is not None and m not in ("GET", "HEAD"):
        raise entry_error(i, 400, f"{m} cannot target a version ({entry.url!r})")
    if m == "POST" and entry.rid is not None:
        raise entry_error(i, 400, f"POST goes to [type], not {entry.url!r}")
    if m in ("PUT", "DELETE", "PATCH") and entry.rid is None and not entry.query:
        raise entry_error(i, 400, f"{m} needs [type]/[id] or [type]?criteria, got {entry.url!r}")
    if m in ("PUT", "DELETE", "PATCH") and entry.rid is not None and entry.query:
        raise entry_error(i, 400, f"{m} takes either an id or criteria, not both")


def parse_bundle(body: Any, base: str, max_entries: int) -> tuple[str, list[Entry]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError(400, "invalid", "POST to the base takes a Bundle", expression=["Bundle"])
    kind = body.get("type")
    if kind not in ("transaction", "batch"):
        raise FhirError(
            400,
            "invalid",
            f"Bundle.type must be transaction or batch, got {kind!r}",
            expression=["Bundle.type"],
        )
    raw = body.get("entry", [])
    if not isinstance(raw, list):
        raise FhirError(
            400, "structure", "Bundle.entry must be a list", expression=["Bundle.entry"]
        )
    if len(raw) > max_entries:
        raise FhirError(
            413,
            "too-costly",
            f"the Bundle has {len(raw)} entries; this server accepts at most {max_entries}",
            expression=["Bundle.entry"],
        )
    entries = []
    for i, item in enumerate(raw):
        try:
            entries.append(_parse_entry(i, item, base))
        except FhirError as err:
            if kind == "transaction":
                raise
            entries.append(Entry(i, "GET", "", error=err))
    return kind, entries


def _parse_entry(i: int, item: Any, base: str) -> Entry:
    if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
        raise entry_error(i, 400, "each entry needs a request", "structure")
    req = item["request"]
    method, url = req.get("method"), req.get("url")
    if method not in METHODS:
        raise entry_error(i, 400, f"request.method must be one of {', '.join(METHODS)}")
    if not isinstance(url, str) or not url:
        raise entry_error(i, 400, "request.url is required")
    full_url = item.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise entry_error(i, 400, "fullUrl must be a string")
    headers = {}
    for key in ("ifMatch", "ifNoneMatch", "ifNoneExist", "ifModifiedSince"):
        v = req.get(key)
        if v is not None and not isinstance(v, str):
            raise entry_error(i, 400, f"request.{key} must be a string")
        headers[key] = v
    entry = Entry(
        i,
        method,
        url,
        full_url=full_url,
        resource=item.get("resource"),
        if_match=headers["ifMatch"],
        if_none_match=headers["ifNoneMatch"],
        if_none_exist=headers["ifNoneExist"],
        if_modified_since=headers["ifModifiedSince"],
    )
    parse_url(entry, base)
    if method == "POST" and entry.query:
        # request.url "Patient?identifier=..." is a conditional create, as over REST.
        assert entry.resource_type is not None
        try:
            entry.if_none_exist = create_criteria(
                entry.resource_type, entry.query, entry.if_none_exist
            )
        except FhirError as exc:
            raise entry_error(i, exc.status, str(exc)) from exc
    if method in ("POST", "PUT", "PATCH") and not isinstance(entry.resource, dict):
        raise entry_error(i, 400, f"{method} entries need a resource")
    return entry


def processing_order(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (ORDER[e.method], e.index))


def status_line(status: int) -> str:
    return f"{status} {STATUS_TEXT.get(status, '')}".strip()


def response_entry(outcome: Outcome, base: str, prefer: str) -> dict[str, Any]:
    response: dict[str, Any] = {"status": status_line(outcome.status)}
    entry: dict[str, Any] = {}
    stored = outcome.stored
    if stored is not None:
        entry["fullUrl"] = f"{base}/{stored.resource_type}/{stored.id}"
        if outcome.location:
            response["location"] = (
                f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
            )
        response["etag"] = stored.etag
        response["lastModified"] = fhir_instant(stored.last_updated)
    if outcome.outcome is not None:
        response["outcome"] = outcome.outcome
    elif prefer == "OperationOutcome" and not outcome.extra.get("read"):
        what = f" {stored.resource_type}/{stored.id}" if stored is not None else ""
        response["outcome"] = info_outcome(f"{status_line(outcome.status)}{what}")
    elif outcome.resource is not None and (prefer == "representation" or outcome.extra.get("read")):
        entry["resource"] = outcome.resource
    entry["response"] = response
    return entry


def error_entry(err: FhirError) -> dict[str, Any]:
    response: dict[str, Any] = {"status": status_line(err.status), "outcome": err.outcome()}
    if "ETag" in err.headers:
        response["etag"] = err.headers["ETag"]
    return {"response": response}
