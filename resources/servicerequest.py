"""ServiceRequest: what makes a request a second-opinion request, and the Task that opens its case.

* ``is_second_opinion_request``: ``reasonCode`` ∋ v2-0336 ``S`` (DOMAIN.md). Such a request must
  conform to ``second-opinion-request`` whether or not it claims it (server/profile_validation.py).
* ``new_case_task``: the case Task (``requested``/``received``) the engine (server/cases/) opens
  inside the submission's transaction. Its id is derived from the request id (uuid5,
  ``case_task_id``), so a replayed submission cannot open two cases.
* The eligibility rules live in resources/eligibility.py; ``check_eligibility`` here is a
  deprecated adapter for callers of the old single-reason rule.

No hooks: opening the case used to be a POST_COMMIT hook; the case engine does it now, in the
client's own transaction (docs/cases.md), so ``HOOKS`` is empty.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from profiles.conformance import CS_BUSINESS_STATUS, PROFILE_REQUEST, PROFILE_TASK
from resources.coverage import PlanBenefits
from resources.domain import TASK_CODE, V2_0336, HookTable, claims, has_coding, local_id
from resources.eligibility import RESULT_TYPES, EligibilityFacts, evaluate

CASE_NAMESPACE = uuid.UUID("5b0f1d4e-7c1a-4d0e-9a51-c0a5111a0001")


def is_second_opinion_request(resource: dict[str, Any] | None) -> bool:
    if not resource or resource.get("resourceType") != "ServiceRequest":
        return False
    return claims(resource, PROFILE_REQUEST) or has_coding(resource.get("reasonCode"), V2_0336, "S")


def check_eligibility(
    service_request: dict[str, Any],
    coverage: dict[str, Any] | None,
    condition: dict[str, Any] | None,
    plan_benefits: PlanBenefits | None,
    *,
    today: date | None = None,
) -> tuple[bool, str | None]:
    """Deprecated: use ``resources.eligibility.evaluate``. ``(eligible, first failure code)``.

    Kept so callers of the old rule keep working until they move. The old rule never resolved
    ``supportingInfo`` nor knew who wrote the Coverage, so this adapter assumes what it did:
    the Coverage is attested, and every DiagnosticReport/Observation the request references
    is a final result. (No DeprecationWarning: the test suite turns warnings into errors.)
    """
    supporting = [
        {"resourceType": t, "status": "final"}
        for ref in service_request.get("supportingInfo", [])
        for t in RESULT_TYPES
        if local_id(ref, t) is not None
    ]
    verdict = evaluate(
        EligibilityFacts(
            request=service_request,
            coverage=coverage,
            coverage_attested=True,
            condition=condition,
            supporting=supporting,
            benefits=plan_benefits,
            day=today or date.today(),
        )
    )
    return verdict.eligible, verdict.failures[0].code if verdict.failures else None


def case_task_id(request_id: str) -> str:
    return str(uuid.uuid5(CASE_NAMESPACE, f"ServiceRequest/{request_id}"))


def new_case_task(
    service_request: dict[str, Any],
    request_id: str,
    *,
    authored: str | None = None,
    start: str | None = None,
    due: str | None = None,
) -> dict[str, Any]:
    """The Task that opens a case for a request: ``requested`` / ``received``, BSeR-shaped.

    ``focus`` and ``basedOn`` → the request, ``for`` → its subject, ``requester`` and
    ``insurance`` copied from it, ``code`` task-code ``fulfill``. ``authored`` is
    ``Task.authoredOn``; ``start``/``due`` fill ``restriction.period`` (the due date is the
    plan's turnaround in business days, ``resources.calendar.business_days_after``), and are
    omitted when not given (the engine may only know the due date after eligibility).
    """
    ref = {"reference": f"ServiceRequest/{request_id}"}
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": case_task_id(request_id),
        "meta": {"profile": [PROFILE_TASK]},
        "basedOn": [dict(ref)],
        "status": "requested",
        "businessStatus": {
            "coding": [{"system": CS_BUSINESS_STATUS, "code": "received", "display": "Received"}]
        },
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "focus": dict(ref),
    }
    if "subject" in service_request:
        task["for"] = service_request["subject"]
    if authored:
        task["authoredOn"] = authored
    for key in ("requester", "insurance"):
        if key in service_request:
            task[key] = service_request[key]
    period = {k: v for k, v in (("start", start), ("end", due)) if v}
    if period:
        task["restriction"] = {"period": period}
    return task


HOOKS: HookTable = []
