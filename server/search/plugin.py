"""Attaches the search engine: index provider and CapabilityStatement details."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resources.registry import search_params_for
from server.search.index import index_models

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.deps import AppState

MODIFIER_DOC = (
    "string :exact :contains; token :text :not; reference :[type] :identifier; "
    "uri :below :above; every type :missing"
)


def capability(statement: dict[str, Any]) -> None:
    rest = statement["rest"][0]
    codes = {i["code"] for i in rest.get("interaction", [])}
    if "search-system" not in codes:
        rest.setdefault("interaction", []).append({"code": "search-system"})
    for res in rest.get("resource", []):
        refs = [c for c, p in search_params_for(res["type"]).items() if p.type == "reference"]
        res["searchInclude"] = ["*", *(f"{res['type']}:{c}" for c in refs)]
        res["searchRevInclude"] = ["*"]
    rest["searchParam"] = [
        {"name": n, "type": t, "documentation": d}
        for n, t, d in (
            ("_sort", "string", "multiple keys, - for descending"),
            ("_count", "number", "page size (default and maximum per server settings)"),
            ("_total", "token", "none | estimate | accurate"),
            ("_summary", "token", "true | text | data | count | false"),
            ("_elements", "string", "top-level elements to return"),
            ("_type", "token", "system search: resource types"),
        )
    ]
    rest["documentation"] = (
        rest.get("documentation", "") + f" Search modifiers: {MODIFIER_DOC}."
    ).strip()


def install(app: FastAPI, state: AppState) -> None:
    state.store.add_index_provider(index_models)
    state.capability_contributors.append(capability)
