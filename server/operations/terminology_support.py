"""What the terminology operations share: finding the ValueSet / CodeSystem / ConceptMap a call
names, and turning the pure functions' ``TerminologyError`` into an OperationOutcome.

Where a canonical URL is looked up, in order: the guide's own definitions (``profiles/``, the
authority: the stored copies are seeded from them), then the resources stored on this server
(``idx.url``, read through the caller's repository, so the access policy applies). An instance
call (``ValueSet/{id}/$expand``) reads the stored resource (404/410 as for a read).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from profiles.conformance import lookup, strip_version
from profiles.expansion import TerminologyError
from server.errors import FhirError
from server.operations import Invocation

Resource = dict[str, Any]
MAX_STORED = 50  # versions of one canonical we look through


def fhir_error(exc: TerminologyError) -> FhirError:
    return FhirError(exc.status, exc.code, exc.message)


def _param_error(name: str, text: str, code: str = "invalid") -> FhirError:
    return FhirError(400, code, text, expression=[f"Parameters.parameter('{name}')"])


def _stored(call: Invocation, resource_type: str, url: str) -> Iterator[Resource]:
    for doc in call.repo.find_visible(resource_type, {"idx.url": url}, limit=MAX_STORED):
        resource = doc.get("resource")
        if isinstance(resource, dict):
            yield resource


def by_canonical(
    call: Invocation, resource_type: str, url: str, version: str | None = None
) -> Resource:
    """The ``resource_type`` whose canonical is ``url`` (``url|version`` or ``version``
    pin it), from the guide or the store; 404 when neither holds it."""
    if "|" in url and version is None:
        url, version = url.split("|", 1)
    url = strip_version(url)
    candidates: list[Resource] = []
    own = lookup(url, resource_type)
    if own is not None:
        candidates.append(own)
    candidates.extend(_stored(call, resource_type, url))
    for res in candidates:
        if version is None or res.get("version") == version:
            return res
    known = sorted({str(r.get("version")) for r in candidates if r.get("version")})
    detail = f" (known versions: {', '.join(known)})" if known else ""
    shown = f"{url}|{version}" if version else url
    raise FhirError(404, "not-found", f"{resource_type} {shown} is not known{detail}")


def instance(call: Invocation, resource_type: str) -> Resource:
    assert call.rid is not None
    resource = call.repo.read(resource_type, call.rid).resource
    assert resource is not None
    return resource


def target(call: Invocation, resource_type: str, url_param: str, version_param: str) -> Resource:
    """The resource an operation works on: the instance in the URL, or the one ``url_param``
    names (type level). Both at once is ambiguous: 400."""
    url = call.params.first(url_param)
    version = call.params.first(version_param)
    if call.level == "instance":
        if url is not None:
            raise _param_error(
                url_param,
                f"at the instance level the {resource_type} is in the URL; drop {url_param!r}",
            )
        return instance(call, resource_type)
    if url is None:
        raise _param_error(
            url_param, f"give {url_param!r}: the canonical URL of the {resource_type}", "required"
        )
    return by_canonical(call, resource_type, str(url), version)


def exactly_one(call: Invocation, *names: str) -> str:
    """The one of ``names`` the call gives (400 when none or several)."""
    given = [n for n in names if call.params.first(n) is not None]
    if len(given) != 1:
        raise FhirError(
            400,
            "invalid",
            f"give exactly one of {', '.join(names)}"
            + (f"; got {', '.join(given)}" if given else ""),
        )
    return given[0]
