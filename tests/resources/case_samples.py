"""The small second-opinion case the pure-rule tests start from (each test edits a copy)."""

from __future__ import annotations

from typing import Any

B = "https://consilium.health/fhir"
CSC = f"{B}/CodeSystem/covered-serious-conditions"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
S = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0336", "code": "S"}]}

REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "status": "active",
    "subject": {"reference": "Patient/p1"},
    "requester": {"reference": "PractitionerRole/t1"},
    "reasonCode": [S],
    "reasonReference": [{"reference": "Condition/c1"}],
    "insurance": [{"reference": "Coverage/cov1"}],
    "supportingInfo": [{"reference": "DiagnosticReport/d1"}],
}
COVERAGE: dict[str, Any] = {
    "resourceType": "Coverage",
    "status": "active",
    "beneficiary": {"reference": "Patient/p1"},
    "payor": [{"reference": "Organization/ins"}],
    "period": {"start": "2026-01-01", "end": "2026-12-31"},
}
CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "code": {"coding": [{"system": CSC, "code": "multiple-sclerosis"}]},
    "verificationStatus": {"coding": [{"system": VER, "code": "confirmed"}]},
    "subject": {"reference": "Patient/p1"},
}
