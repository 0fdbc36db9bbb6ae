"""Plugin attaching the second-opinion domain hooks from ``resources/`` and the case engine
(``server/cases/``, docs/cases.md) to the pipeline.

The rules live in resources/{servicerequest,task,diagnosticreport,coverage}.py as pure functions
with a ``HOOKS`` table; they may not import ``server`` (layering), so this adapter registers them
and turns their ``BusinessRuleViolation`` into a 422 OperationOutcome with code business-rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from resources import coverage, diagnosticreport, servicerequest, task
from resources.domain import BusinessRuleViolation, Hook
from server import roster
from server.errors import FhirError, Issue
from server.hooks import HookPoint, WriteEvent

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.deps import AppState

MODULES: tuple[Any, ...] = (servicerequest, task, diagnosticreport, coverage)


def as_fhir_error(hook: Hook) -> Callable[[WriteEvent], None]:
    def run(event: WriteEvent) -> None:
        try:
            hook(event)
        except BusinessRuleViolation as exc:
            issues = [Issue("business-rule", d, expression=[e] if e else []) for d, e in exc.issues]
            raise FhirError(422, "business-rule", str(exc), issues=issues) from exc

    run.__name__ = getattr(hook, "__name__", "domain_hook")
    return run


def plugin(app: FastAPI, state: AppState) -> None:
    from server.cases import coordination
    from server.cases.hooks import install
    from server.notifications.plugin import install as notifications
    from server.reports.hook import install as install_report_pdf

    install(state.hooks)
    roster.install(state.hooks)
    coordination.install(state.hooks)
    notifications(app, state)  # after the case engine: its PRE_COMMIT writes are matched too
    for module in MODULES:
        for point_name, hook in module.HOOKS:
            state.hooks.register(HookPoint(point_name), as_fhir_error(hook))
    install_report_pdf(state.hooks)  # after the case guards and rules: the PDF of what is stored
