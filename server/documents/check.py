"""Is this Bundle a valid, self-contained FHIR document? ``document_problems`` says what is not.

Why our own checker beside the model validation: the R4 walker and the ``fhir.resources.R4B``
models (``resources.validation``) check each resource's structure, but not the Bundle-level
invariants of a document nor whether its references resolve inside it. Checked here (pure, on
plain JSON, one message per problem):

* bdl-9 (identifier with system and value), bdl-10 (timestamp), bdl-11 (a Composition first);
* bdl-1..4: no ``total``, ``search``, ``request`` or ``response`` in a document;
* every entry has a ``fullUrl`` and a resource, fullUrls are unique (bdl-7 without versions),
  a RESTful fullUrl ends in the resource's own type and id;
* every Reference of every resource resolves to an entry by the bundle.html#references rules
  (absolute → the fullUrl; relative ``Type/id`` → the entry's base + ``Type/id``; a versioned
  one → that ``meta.versionId``; ``#id`` → a contained resource); a relative reference in an
  entry whose fullUrl is a ``urn:`` cannot resolve;
* cmp-1 / cmp-2 on every section (text, entry or sub-section; emptyReason only when empty);
* the whole Bundle through ``validate_resource`` (R4 walk + R4B models).
"""

from __future__ import annotations

import re
from typing import Any

from resources.validation import ResourceInvalid, validate_resource
from server.documents.closure import reference_holders

RESTFUL = re.compile(r"^(?P<base>.+)/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})$")
RELATIVE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _split_version(ref: str) -> tuple[str, str | None]:
    if "/_history/" in ref:
        head, version = ref.split("/_history/", 1)
        return head, version
    return ref, None


def _resolve(ref: str, entry_url: str) -> str | None:
    """The fullUrl a reference names (bundle.html#references), or None when it cannot."""
    if ref.startswith("urn:"):
        return ref
    head, _ = _split_version(ref)
    if "://" in head:
        return head
    m = RESTFUL.match(entry_url)
    if m is None or not RELATIVE.match(head):
        return None
    return f"{m.group('base')}/{head}"


def _sections(sections: list[Any], path: str) -> list[str]:
    problems: list[str] = []
    for i, sec in enumerate(sections):
        here = f"{path}.section[{i}]"
        if not isinstance(sec, dict):
            continue
        if not (sec.get("text") or sec.get("entry") or sec.get("section")):
            problems.append(f"cmp-1: {here} has no text, entry or section")
        if sec.get("emptyReason") and sec.get("entry"):
            problems.append(f"cmp-2: {here} has an emptyReason and entries")
        if not sec.get("code"):
            problems.append(f"{here} has no code")
        problems += _sections(sec.get("section") or [], here)
    return problems


def document_problems(bundle: Any) -> list[str]:
    """Every reason ``bundle`` is not a valid, self-contained document (empty when it is)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return ["not a Bundle"]
    problems: list[str] = []
    if bundle.get("type") != "document":
        problems.append(f"type is {bundle.get('type')!r}, not 'document'")
    ident = bundle.get("identifier") or {}
    if not (ident.get("system") and ident.get("value")):
        problems.append("bdl-9: a document must have an identifier with a system and a value")
    if not bundle.get("timestamp"):
        problems.append("bdl-10: a document must have a timestamp")
    if "total" in bundle:
        problems.append("bdl-1: total is only for searchset and history Bundles")
    entries = bundle.get("entry") or []
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    if not isinstance(first, dict) or first.get("resourceType") != "Composition":
        problems.append("bdl-11: the first resource of a document must be a Composition")

    by_url: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        for element, rule in (("search", "bdl-2"), ("request", "bdl-3"), ("response", "bdl-4")):
            if element in entry:
                problems.append(f"{rule}: entry[{i}] has {element} in a document")
        url, resource = entry.get("fullUrl"), entry.get("resource")
        if not isinstance(url, str) or not url:
            problems.append(f"entry[{i}] has no fullUrl")
            continue
        if not isinstance(resource, dict):
            problems.append(f"entry[{i}] ({url}) has no resource")
            continue
        if url in by_url:
            problems.append(f"bdl-7: fullUrl {url} is not unique")
        by_url[url] = resource
        m = RESTFUL.match(url)
        if m and (m.group("type"), m.group("id")) != (
            resource.get("resourceType"),
            resource.get("id"),
        ):
            problems.append(f"entry[{i}]: fullUrl {url} does not name its resource")

    for url, resource in by_url.items():
        contained = {c.get("id") for c in resource.get("contained") or [] if isinstance(c, dict)}
        for path, holder in reference_holders(resource, str(resource.get("resourceType"))):
            ref = holder["reference"]
            if ref.startswith("#"):
                if ref != "#" and ref[1:] not in contained:
                    problems.append(f"{url} {path}: {ref} is not a contained resource")
                continue
            target = _resolve(ref, url)
            if target is None or target not in by_url:
                problems.append(f"{url} {path}: {ref} does not resolve inside the bundle")
                continue
            _, version = _split_version(ref)
            have = (by_url[target].get("meta") or {}).get("versionId")
            if version is not None and version != have:
                problems.append(f"{url} {path}: {ref} names version {version}, bundle has {have}")

    if isinstance(first, dict) and first.get("resourceType") == "Composition":
        problems += _sections(first.get("section") or [], "Composition")
    try:
        validate_resource(bundle, "Bundle")
    except ResourceInvalid as exc:
        problems += [f"invalid: {expr or 'Bundle'}: {msg}" for msg, expr in exc.issues]
    return problems
