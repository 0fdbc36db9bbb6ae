"""ServiceRequest: what makes a request a second-opinion request, eligibility, and opening the case.

* ``is_second_opinion_request``: ``reasonCode`` ∋ v2-0336 ``S`` (DOMAIN.md). Such a request must
  conform to ``second-opinion-request`` whether or not it claims it (server/profile_validation.py).
* ``check_eligibility``: the pure rule behind the eligibility check (an operation will call it
  with the resources it reads); the first failing condition decides the rejection reason.
* ``open_case``: POST_COMMIT hook. A second-opinion request **created with POST** opens its case
  (Task ``requested``/``received``). Why only POST: a POST is a new submission whose id the
  server chose, so nobody else can have created its Task yet; a PUT with a client-chosen id is a
  client managing its own records (migrations, the seed, BSeR-style initiators that write the
  Task themselves), and opening a second case there would duplicate theirs. The Task id is
  derived from the request id (uuid5), so a replayed event cannot open two cases.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from typing import Any

from profiles.conformance import (
    CS_BUSINESS_STATUS,
    PROFILE_REQUEST,
    PROFILE_TASK,
    VS_CONDITIONS,
)
from profiles.terminology import in_value_set
from resources.coverage import PlanBenefits, in_force
from resources.domain import (
    TASK_CODE,
    V2_0336,
    HookTable,
    WriteEventLike,
    claims,
    codings,
    has_coding,
    local_id,
    read_current,
)

log = logging.getLogger(__name__)
CASE_NAMESPACE = uuid.UUID("5b0f1d4e-7c1a-4d0e-9a51-c0a5111a0001")

# Condition.verificationStatus values that are not a firm diagnosis.
_NOT_FIRM = {"unconfirmed", "provisional", "differential", "refuted", "entered-in-error"}
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def is_second_opinion_request(resource: dict[str, Any] | None) -> bool:
    if not resource or resource.get("resourceType") != "ServiceRequest":
        return False
    return claims(resource, PROFILE_REQUEST) or has_coding(resource.get("reasonCode"), V2_0336, "S")


def covered_condition_codes(*concepts: Any) -> list[str]:
    """The codings (``system|code``) among ``concepts`` that are certainly covered conditions."""
    out = []
    for c in codings(list(concepts)):
        system, code = c.get("system"), c.get("code")
        if (
            isinstance(system, str)
            and isinstance(code, str)
            and in_value_set(VS_CONDITIONS, system, code) is True
        ):
            out.append(f"{system}|{code}")
    return out


def check_eligibility(
    service_request: dict[str, Any],
    coverage: dict[str, Any] | None,
    condition: dict[str, Any] | None,
    plan_benefits: PlanBenefits | None,
    *,
    today: date | None = None,
) -> tuple[bool, str | None]:
    """``(True, None)`` or ``(False, rejection reason code)`` from ``case-rejection-reason``.

    Order matters and follows the member's journey: is there a member, is the cover in force,
    does the plan include the benefit, is any left, is the condition covered, is the file
    complete. A condition is covered when the Condition's code (or the request's reason codes)
    holds a code certainly in the covered-conditions value set; an undecidable SNOMED descendant
    does not count — the insurer's own code is primary.
    """
    day = today or date.today()
    patient = local_id(service_request.get("subject"), "Patient")
    if coverage is None or (
        patient is not None and local_id(coverage.get("beneficiary"), "Patient") != patient
    ):
        return False, "member-not-found"
    if not in_force(coverage, day) or not coverage.get("payor"):
        return False, "coverage-not-in-force"
    if plan_benefits is None or not plan_benefits.included:
        return False, "benefit-not-included"
    per_year = plan_benefits.opinions_per_year
    if per_year is not None and plan_benefits.opinions_used >= per_year:
        return False, "benefit-exhausted"
    reasons = [
        cc for cc in service_request.get("reasonCode", []) if not has_coding(cc, V2_0336, "S")
    ]
    condition_code = [condition["code"]] if condition and condition.get("code") else []
    if not covered_condition_codes(*condition_code, *reasons):
        return False, "condition-not-covered"
    if condition is None or not service_request.get("supportingInfo"):
        return False, "investigations-incomplete"
    status = {
        c.get("code")
        for c in codings(condition.get("verificationStatus"))
        if c.get("system") == _VERIFICATION
    }
    if status & _NOT_FIRM:
        return False, "investigations-incomplete"
    return True, None


def case_task_id(request_id: str) -> str:
    return str(uuid.uuid5(CASE_NAMESPACE, f"ServiceRequest/{request_id}"))


def new_case_task(
    service_request: dict[str, Any], request_id: str, *, authored: str | None = None
) -> dict[str, Any]:
    """The Task that opens a case for a request: ``requested`` / ``received``."""
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": case_task_id(request_id),
        "meta": {"profile": [PROFILE_TASK]},
        "basedOn": [{"reference": f"ServiceRequest/{request_id}"}],
        "status": "requested",
        "businessStatus": {
            "coding": [{"system": CS_BUSINESS_STATUS, "code": "received", "display": "Received"}]
        },
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/{request_id}"},
        "for": service_request["subject"],
    }
    for key in ("requester", "insurance"):
        if key in service_request:
            task[key] = service_request[key]
    if authored:
        task["authoredOn"] = authored
    return task


def open_case(event: WriteEventLike) -> None:
    """POST_COMMIT: a newly POSTed, active second-opinion request gets its case Task."""
    sr = event.resource
    if event.interaction != "create" or event.resource_type != "ServiceRequest":
        return
    if not is_second_opinion_request(sr) or sr is None or sr.get("status") != "active":
        return
    if local_id(sr.get("subject"), "Patient") is None:
        return
    # The write's own session has ended: write in a fresh transaction, as the server itself
    # (the case Task is the server's bookkeeping; the requester's scopes need not cover Task).
    repo = event.repository.as_system()
    authored = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    task = new_case_task(sr, event.resource_id, authored=authored)
    if read_current(repo, "Task", task["id"]) is not None:
        return
    repo.create("Task", task, rid=task["id"])
    log.info("opened case Task/%s for ServiceRequest/%s", task["id"], event.resource_id)


HOOKS: HookTable = [("post_commit", open_case)]
