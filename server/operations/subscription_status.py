"""``Subscription/[id]/$status`` (Subscriptions Backport IG): the subscription's status and
event count, for receivers that detect a gap in event numbers or an endpoint in ``error``.

The Subscription is read through the caller's repository first (policy: 404 when not
visible), so the state document is only ever shown to someone who may read the subscription.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.notifications.bundle import status_parameters
from server.notifications.store import NotifyStore
from server.operations import Invocation, Operation, load_definition
from server.timeutil import fhir_instant, now


def subscription_status(call: Invocation) -> dict[str, Any]:
    assert call.rid is not None
    stored = call.repo.read("Subscription", call.rid)
    resource = stored.resource or {}
    notify = NotifyStore(call.repo.store.db)
    sub = notify.subs.find_one({"_id": call.rid}, {"secret": 0}) or {"_id": call.rid}
    delivery = notify.delivery.find_one({"_id": call.rid}) or {}
    status = str(resource.get("status", sub.get("status", "off")))
    error = delivery.get("last_error") if status == "error" else None
    params = status_parameters(
        sub, status, "query-status", int(sub.get("events", 0)), call.base, error=error
    )
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": fhir_instant(now()),
        "total": 1,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": params,
                "search": {"mode": "match"},
            }
        ],
    }


OPERATION = Operation(load_definition("status.json"), subscription_status)
