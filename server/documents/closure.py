"""The reference closure of a document: every resource a held resource points at, read through
the caller's repository, until nothing points outside the set.

Why a closure (and not just the section entries): a FHIR document is self-contained — a reader
must be able to resolve every reference from the Bundle alone (documents.html, "the document
bundle SHALL include ... all resources referenced"). So the requester's PractitionerRole, its
Practitioner and Organization, the Coverage's payor, the expert's Location all come along.

Why references are *reduced*, not kept dangling, when a target cannot be held: a document must
not point at something it does not contain, and the caller may not see everything a visible
resource points at (a specialist sees the request but not its Coverage), some targets are
missing or deleted (integrity off), some are on other servers. The reference is replaced by a
display-only Reference (``{"display": "Coverage/c1 (not included in this document)"}``: still a
valid Reference, still tells a human what was there) and the omission is recorded once per
target as an ``Issue`` whose wording never says whether the target is missing or invisible
(``server.operations.links.follow``), so a document cannot be used to probe for resources.

Reads go through ``links.follow`` → ``Repository.read``: the policy and redaction apply to every
resource of the closure exactly as to a REST read.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from server.bundles.references import local_target
from server.errors import Issue
from server.operations.links import follow
from server.repository import Repository

Resource = dict[str, Any]
Shape = Callable[[str, Resource], Resource]
MAX_RESOURCES = 2000  # a case file holds dozens; the cap only stops a runaway directory graph
NOT_INCLUDED = "not included in this document"


@dataclass
class Closure:
    """The held resources (``Type/id`` → resource, in the order they were reached) and the
    omissions (one ``Issue`` per target that could not be held)."""

    resources: dict[str, Resource] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)

    def holds(self, key: str) -> bool:
        return key in self.resources


def reference_holders(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(FHIRPath-like path, Reference object)`` of every Reference with a ``reference`` in
    ``node`` (extensions, backbones and contained resources included), depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield path, node
        for key, value in node.items():
            if key != "reference" and isinstance(value, dict | list):
                yield from reference_holders(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from reference_holders(item, f"{path}[{i}]")


def reduce_reference(holder: dict[str, Any]) -> None:
    """Turn a Reference the document cannot resolve into a display-only one, in place."""
    ref = holder.pop("reference")
    holder.setdefault("display", f"{ref} ({NOT_INCLUDED})")


def version_of(reference: str) -> str | None:
    return reference.split("/_history/", 1)[1] if "/_history/" in reference else None


def close(
    repo: Repository,
    seeds: dict[str, Resource],
    base: str,
    *,
    failed: dict[str, Issue] | None = None,
    shape: Shape | None = None,
    limit: int = MAX_RESOURCES,
) -> Closure:
    """The closure of ``seeds`` (already read by the caller; copied, never changed in place).

    ``failed``: targets the caller already tried and could not read (with the Issue it
    recorded): references to them are reduced without a second Issue. ``shape(key, resource)``
    may trim each held resource before its references are followed (the case file's Coverage
    summary), so what it removes is not followed either.
    """
    out = Closure()
    out.failed = set(failed or {})
    queue: deque[str] = deque()

    def admit(key: str, resource: Resource) -> None:
        held = copy.deepcopy(resource)
        out.resources[key] = shape(key, held) if shape else held
        queue.append(key)

    def omit(key: str | None, issue: Issue) -> None:
        if key is not None:
            out.failed.add(key)
        out.issues.append(issue)

    def check_version(path: str, holder: dict[str, Any], target: str) -> None:
        """A versioned reference resolves only to that version (bundle.html#references)."""
        wanted = version_of(holder["reference"])
        have = str((out.resources[target].get("meta") or {}).get("versionId", ""))
        if wanted is not None and wanted != have:
            reduce_reference(holder)
            msg = f"{path}: version {wanted} of {target} ({NOT_INCLUDED}: it holds {have})"
            omit(None, Issue("not-found", msg, "information", [path]))

    for key, resource in seeds.items():
        admit(key, resource)
    while queue:
        key = queue.popleft()
        resource = out.resources[key]
        contained = {c.get("id") for c in resource.get("contained") or [] if isinstance(c, dict)}
        for path, holder in list(reference_holders(resource, key)):
            ref = holder["reference"]
            if ref.startswith("#"):
                if ref != "#" and ref[1:] not in contained:
                    reduce_reference(holder)
                    omit(None, Issue("not-found", f"{path}: {ref} is not contained", "warning"))
                continue
            target = local_target(ref, (base,))
            if target is None:
                reduce_reference(holder)
                omit(
                    None,
                    Issue(
                        "not-supported",
                        f"{path}: {ref} is not a reference to this server; {NOT_INCLUDED}",
                        "information",
                        [path],
                    ),
                )
                continue
            if target in out.resources:
                check_version(path, holder, target)
                continue
            if target in out.failed:
                reduce_reference(holder)
                continue
            if len(out.resources) >= limit:
                reduce_reference(holder)
                omit(target, Issue("too-costly", f"{path}: {target} {NOT_INCLUDED} (size limit)"))
                continue
            issues: list[Issue] = []
            found = follow(repo, holder, path, issues, base)
            if found is None:
                reduce_reference(holder)
                for issue in issues:
                    omit(target, issue)
                continue
            admit(*found)
            check_version(path, holder, target)
    return out
