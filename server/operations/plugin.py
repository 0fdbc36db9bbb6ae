"""Attaches the operations to the CapabilityStatement (the router itself is in server/app.py).

System-level operations go in ``rest.operation``, type- and instance-level ones in
``rest.resource[type].operation`` (every type when the definition names none, as
``$validate``); each names its OperationDefinition's canonical URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.operations import registry

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.deps import AppState


def capability(statement: dict[str, Any]) -> None:
    rest = statement["rest"][0]
    by_type = {r.get("type"): r for r in rest.get("resource", [])}
    for op in registry().values():
        entry = {"name": op.name, "definition": op.url}
        if op.at("system"):
            rest.setdefault("operation", []).append(dict(entry))
        if op.at("type") or op.at("instance"):
            # No resource types: the operation applies to every type (``$validate``).
            for rtype in op.resource_types or tuple(by_type):
                resource = by_type.get(rtype)
                if resource is not None:
                    resource.setdefault("operation", []).append(dict(entry))


def install(app: FastAPI, state: AppState) -> None:
    state.capability_contributors.append(capability)
