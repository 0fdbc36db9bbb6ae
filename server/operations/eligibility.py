"""``ServiceRequest/[id]/$eligibility`` and ``ServiceRequest/$eligibility`` (our canonical).

The same decision the case engine takes at submission (``server.cases.coverage_check.check``:
the pure rules of ``resources.eligibility`` over the request, its insurer-held Coverage, its
Condition, its supporting results and the InsurancePlan named by the coverage's ``plan``
class), asked again on demand, e.g. by an insurer or after the member's cover changed; it
answers with a CoverageEligibilityResponse listing every failing rule.

Stored, not only returned — why: the decision is a business record. The insurer tracks
eligibility and utilisation (DOMAIN.md) and sees CoverageEligibility* resources through their
``insurer`` (auth/acl.py ``payors``) without seeing the clinical request; writing through the
repository makes the check audited, versioned and access-controlled like every other write; and
R4 requires ``CoverageEligibilityResponse.request``, so the question is stored too, as a
CoverageEligibilityRequest (item.detail → the ServiceRequest, item.diagnosis → the Condition).
Both are written in one transaction. Hence ``affectsState: true``: POST only.

The caller must be able to read the request, and the Coverage and Condition it names (a
redacted view is a 403: the check needs the whole resource); the facts are then read on the
server's own account (``Repository.unrestricted``), because utilisation is the member's, not
the caller's: a clinic cannot see another clinic's requests, yet they count. Only the decision
leaves the server, never the other requests.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from resources.domain import local_id
from resources.servicerequest import is_second_opinion_request
from server.cases import coverage_check
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.operations.links import local_key
from server.repository import Repository
from server.timeutil import fhir_instant, now

REDACTED = "REDACTED"


def parse_day(value: Any) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise FhirError(
            400,
            "invalid",
            "date must be a full date (YYYY-MM-DD)",
            expression=["Parameters.parameter('date')"],
        )
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise FhirError(400, "invalid", f"invalid date {value!r}") from exc


def _redacted(resource: dict[str, Any]) -> bool:
    security = (resource.get("meta") or {}).get("security") or []
    return any(isinstance(s, dict) and s.get("code") == REDACTED for s in security)


def _check_visible(repo: Repository, key: str | None) -> None:
    """The caller may read the linked resource in full (unknown or deleted links are the
    rules' business: member-not-found and the like; scope refusals, 403, propagate)."""
    if key is None:
        return
    rtype, rid = key.split("/")
    try:
        resource = repo.read(rtype, rid).resource
    except FhirError as exc:
        if exc.status in (404, 410):
            return
        raise
    if resource is not None and _redacted(resource):
        raise FhirError(
            403,
            "forbidden",
            f"the eligibility check needs the full {rtype}; you see a redacted view",
        )


def _target(call: Invocation) -> str:
    given = call.params.first("request")
    if call.level == "instance":
        if given is not None:
            raise FhirError(
                400,
                "invalid",
                "at the instance level the request is in the URL; drop the 'request' parameter",
                expression=["Parameters.parameter('request')"],
            )
        assert call.rid is not None
        return call.rid
    key = local_key(given, call.base)
    if key is None or not key.startswith("ServiceRequest/"):
        raise FhirError(
            400,
            "required",
            "give the 'request' parameter: a Reference to a ServiceRequest on this server",
            expression=["Parameters.parameter('request')"],
        )
    return key.split("/")[1]


def eligibility(call: Invocation) -> dict[str, Any]:
    repo = call.repo
    sr_id = _target(call)
    day_param = call.params.first("date")
    stored = repo.read("ServiceRequest", sr_id)
    service_request = stored.resource
    assert service_request is not None
    if _redacted(service_request):
        raise FhirError(
            403,
            "forbidden",
            "the eligibility check needs the full ServiceRequest; you see a redacted view",
        )
    if not is_second_opinion_request(service_request):
        raise FhirError(
            422,
            "business-rule",
            f"ServiceRequest/{sr_id} is not a second-opinion request (reasonCode v2-0336 S)",
        )
    if local_id(service_request.get("subject"), "Patient") is None:
        raise FhirError(422, "business-rule", f"ServiceRequest/{sr_id} has no Patient subject")
    _check_visible(repo, coverage_check.first_key(service_request.get("insurance"), "Coverage"))
    _check_visible(
        repo, coverage_check.first_key(service_request.get("reasonReference"), "Condition")
    )
    today = datetime.now(UTC).date()
    day = parse_day(day_param) if day_param is not None else today

    def write(tx: Repository) -> dict[str, Any]:
        system = tx.unrestricted()
        checked = coverage_check.check(system, service_request, day)
        return coverage_check.store_records(
            system, f"ServiceRequest/{sr_id}", checked, fhir_instant(now())
        )

    return repo.transaction(write)


OPERATION = Operation(load_definition("eligibility.json"), eligibility)
