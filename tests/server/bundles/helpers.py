"""Builders for transaction/batch Bundles used by the bundle tests."""

from __future__ import annotations

import uuid
from typing import Any

FHIR = "application/fhir+json"
HEADERS = {"Content-Type": FHIR}


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def entry(
    method: str,
    url: str,
    resource: dict[str, Any] | None = None,
    full_url: str | None = None,
    **request: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        out["resource"] = resource
    if full_url is not None:
        out["fullUrl"] = full_url
    return out


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def patient(value: str = "123", family: str = "Okafor") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.3", "value": value}],
        "name": [{"family": family}],
    }


def observation(subject: str, code: str = "8867-4") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 72, "unit": "/min"},
    }
