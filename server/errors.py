"""Every failure a client can cause is a ``FhirError`` that becomes an OperationOutcome.

Raising one from anywhere (handlers, repository, hooks) yields the right HTTP status and a
well-formed OperationOutcome; nothing else turns into a response body for an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: ``code`` from the FHIR issue-type value set."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: Sequence[str] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


@dataclass
class FhirError(Exception):
    status: int
    issues: list[Issue]
    headers: dict[str, str] = field(default_factory=dict)

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        *,
        expression: Sequence[str] = (),
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issues = issues or [Issue(code, diagnostics, expression=expression)]
        self.headers = headers or {}

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def info_outcome(diagnostics: str) -> dict[str, Any]:
    return operation_outcome([Issue("informational", diagnostics, severity="information")])


def bad_request(
    diagnostics: str, *, code: str = "invalid", expression: Sequence[str] = ()
) -> FhirError:
    return FhirError(400, code, diagnostics, expression=expression)


def not_found(diagnostics: str) -> FhirError:
    return FhirError(404, "not-found", diagnostics)


def gone(diagnostics: str) -> FhirError:
    return FhirError(410, "deleted", diagnostics)


def conflict(diagnostics: str) -> FhirError:
    return FhirError(409, "conflict", diagnostics)


def precondition_failed(diagnostics: str) -> FhirError:
    return FhirError(412, "conflict", diagnostics)
