"""Attaches transactions, batches, conditional operations, PATCH and referential integrity.

Registers the integrity PRE_WRITE hook and ``refs`` index, and says in the
CapabilityStatement what the running server really does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server import integrity
from server.patch import PATCH_FORMATS

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.config import Settings
    from server.deps import AppState


def capability_contributor(settings: Settings) -> Any:
    def contribute(statement: dict[str, Any]) -> None:
        statement["patchFormat"] = sorted({*statement.get("patchFormat", []), *PATCH_FORMATS})
        delete_mode = "multiple" if settings.allow_multiple_conditional_delete else "single"
        for rest in statement.get("rest", []):
            codes = {i.get("code") for i in rest.get("interaction", [])}
            for code in ("transaction", "batch"):
                if code not in codes:
                    rest.setdefault("interaction", []).append({"code": code})
            for resource in rest.get("resource", []):
                interactions = resource.setdefault("interaction", [])
                if not any(i.get("code") == "patch" for i in interactions):
                    interactions.append({"code": "patch"})
                resource["conditionalCreate"] = True
                resource["conditionalUpdate"] = True
                resource["conditionalDelete"] = delete_mode
                policy = ["literal", "local"]
                if settings.enforce_referential_integrity:
                    policy.append("enforced")
                resource["referencePolicy"] = policy

    return contribute


def install(app: FastAPI, state: AppState) -> None:
    integrity.install(state.store, state.hooks, state.settings)
    state.capability_contributors.append(capability_contributor(state.settings))
