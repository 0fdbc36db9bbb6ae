"""Notification bodies of the Backport IG form (pure): the ``history`` Bundle whose first entry
is the subscription-status ``Parameters`` (profile ``backport-subscription-status-r4``).

R4 has no SubscriptionStatus resource, so the IG carries it as Parameters; counts are strings
there (``eventsSinceSubscriptionStart`` is int64 in R5, which R4 lacks).
"""

from __future__ import annotations

import uuid
from typing import Any

from server.notifications.spec import BACKPORT

STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
Doc = dict[str, Any]


def _ref(base: str, key: str) -> str:
    return f"{base}/{key}" if base else key


def status_parameters(
    sub: Doc,
    status: str,
    kind: str,
    events: int,
    base: str = "",
    notification: Doc | None = None,
    error: str | None = None,
) -> Doc:
    """The status Parameters: ``kind`` is handshake | heartbeat | event-notification |
    query-status; ``notification`` = (number, timestamp, focus key or None) of one event."""
    params: list[Doc] = [
        {
            "name": "subscription",
            "valueReference": {"reference": _ref(base, f"Subscription/{sub['_id']}")},
        },
        {"name": "topic", "valueCanonical": sub.get("topic") or ""},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events)},
    ]
    if not sub.get("topic"):
        params.pop(1)  # a classic subscription has no topic
    if notification is not None:
        part: list[Doc] = [
            {"name": "event-number", "valueString": str(notification["n"])},
            {"name": "timestamp", "valueInstant": notification["timestamp"]},
        ]
        if notification.get("focus"):
            part.append(
                {
                    "name": "focus",
                    "valueReference": {"reference": _ref(base, notification["focus"])},
                }
            )
        params.append({"name": "notification-event", "part": part})
    if error:
        params.append(
            {
                "name": "error",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/subscription-error",
                            "code": "no-response",
                        }
                    ],
                    "text": error,
                },
            }
        )
    return {
        "resourceType": "Parameters",
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": params,
    }


def notification_bundle(
    status: Doc, timestamp: str, base: str = "", focus: Doc | None = None
) -> Doc:
    """``history`` Bundle: the status first, then (``id-only``/``full-resource``) the focus;
    ``focus`` = {key, vid, resource or None}."""
    sid = status["parameter"][0]["valueReference"]["reference"]
    entries: list[Doc] = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": status,
            "request": {"method": "GET", "url": f"{sid}/$status"},
            "response": {"status": "200"},
        }
    ]
    if focus is not None:
        created = int(focus["vid"]) == 1
        entry: Doc = {"fullUrl": _ref(base, focus["key"])}
        if focus.get("resource") is not None:
            entry["resource"] = focus["resource"]
        entry["request"] = {"method": "POST" if created else "PUT", "url": focus["key"]}
        entry["response"] = {"status": "201" if created else "200"}
        entries.append(entry)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "history",
        "timestamp": timestamp,
        "entry": entries,
    }
