"""PRE_WRITE hook: a resource that claims one of our profiles must conform to it (→ 422).

Which profiles are checked:
* every profile in ``meta.profile`` that the Consilium IG defines;
* ``second-opinion-request`` for any ServiceRequest whose reasonCode holds v2-0336 ``S``, claimed
  or not: what makes a request a second opinion is its content, not its label.

A claimed profile we do not know (US Core, BSeR, CA:eReC, …) is accepted and logged, not
rejected: ``meta.profile`` is the client's assertion, FHIR lets a server ignore profiles it
cannot evaluate, and refusing them would lock out every client that tags resources for other
guides while protecting nothing (we have no definition to check them against). Warnings
(extensible bindings, undecidable SNOMED memberships) never block a write.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from profiles.conformance import (
    PROFILE_REQUEST,
    is_known_profile,
    profile_type,
    profile_urls,
    strip_version,
)
from profiles.validator import validate
from resources.servicerequest import is_second_opinion_request
from server.errors import FhirError, Issue
from server.hooks import HookPoint, WriteEvent

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.deps import AppState

log = logging.getLogger(__name__)


def profiles_to_check(resource: dict[str, Any]) -> list[str]:
    claimed = (resource.get("meta") or {}).get("profile") or []
    out: list[str] = []
    for url in claimed:
        if not isinstance(url, str):
            continue
        if is_known_profile(url):
            out.append(strip_version(url))
        else:
            log.info(
                "%s claims unknown profile %s: accepted unchecked",
                resource.get("resourceType"),
                url,
            )
    if is_second_opinion_request(resource) and PROFILE_REQUEST not in out:
        out.append(PROFILE_REQUEST)
    return list(dict.fromkeys(out))


def check_profiles(event: WriteEvent) -> None:
    resource = event.resource
    if resource is None:
        return
    issues: list[Issue] = []
    for url in profiles_to_check(resource):
        for issue in validate(resource, url):
            if issue.is_error:
                issues.append(
                    Issue(
                        "processing", f"{issue.diagnostics} [{url}]", expression=[issue.expression]
                    )
                )
            else:
                log.debug("profile warning on %s: %s", url, issue.diagnostics)
    if issues:
        raise FhirError(
            422,
            "processing",
            f"{event.resource_type} does not conform to its profile(s)",
            issues=issues,
        )


def _capability(statement: dict[str, Any]) -> None:
    """List our profiles as supportedProfile of the types they constrain."""
    by_type: dict[str, list[str]] = {}
    for url in sorted(profile_urls()):
        rtype = profile_type(url)
        if rtype:
            by_type.setdefault(rtype, []).append(url)
    for rest in statement.get("rest", []):
        for res in rest.get("resource", []):
            if res.get("type") in by_type:
                res["supportedProfile"] = by_type[res["type"]]


def plugin(app: FastAPI, state: AppState) -> None:
    state.hooks.register(HookPoint.PRE_WRITE, check_profiles)
    state.capability_contributors.append(_capability)
