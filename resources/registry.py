"""The resource types this server knows, and their search parameters, loaded from R4 data.

Why data, not code: adding a type or a parameter is a JSON change (official definitions under
``definitions/``, our own in ``profiles/``), and the CapabilityStatement, the search engine and
the index extractor all read the same registry, so they cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DEFINITIONS = Path(__file__).resolve().parent / "definitions"
FHIR_VERSION = "4.0.1"


@dataclass(frozen=True)
class SearchParam:
    """One SearchParameter, reduced to what the server needs to index and query it."""

    code: str
    type: str
    base: tuple[str, ...]
    expression: str | None
    url: str
    description: str = ""
    target: tuple[str, ...] = ()
    modifier: tuple[str, ...] = ()
    comparator: tuple[str, ...] = ()
    components: tuple[tuple[str, str], ...] = ()  # (definition url, FHIRPath expression)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SearchParam:
        return cls(
            code=d["code"],
            type=d["type"],
            base=tuple(d.get("base", ())),
            expression=d.get("expression"),
            url=d.get("url", ""),
            description=d.get("description", ""),
            target=tuple(d.get("target", ())),
            modifier=tuple(d.get("modifier", ())),
            comparator=tuple(d.get("comparator", ())),
            components=tuple(
                (c.get("definition", ""), c.get("expression", "")) for c in d.get("component", ())
            ),
            raw=d,
        )


def _load_json(name: str) -> Any:
    return json.loads((DEFINITIONS / name).read_text(encoding="utf-8"))


@cache
def resource_types() -> tuple[str, ...]:
    return tuple(_load_json("resource-types.json"))


@cache
def resource_type_set() -> frozenset[str]:
    return frozenset(resource_types())


def is_resource_type(name: str) -> bool:
    return name in resource_type_set()


def _extra_search_parameter_files() -> list[Path]:
    """Our own SearchParameters (the Consilium IG) live beside the profiles, as JSON."""
    from profiles import definitions_dir

    folder = definitions_dir() / "search-parameters"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


@cache
def search_parameters() -> dict[str, dict[str, SearchParam]]:
    """``{resource type: {code: SearchParam}}``, with Resource/DomainResource params on every type."""
    raw: list[dict[str, Any]] = list(_load_json("search-parameters.json"))
    for path in _extra_search_parameter_files():
        doc = json.loads(path.read_text(encoding="utf-8"))
        raw.extend(doc if isinstance(doc, list) else [doc])
    common: dict[str, SearchParam] = {}
    per_type: dict[str, dict[str, SearchParam]] = {t: {} for t in resource_types()}
    for d in raw:
        if d.get("type") == "special" or not d.get("code"):
            continue
        param = SearchParam.from_json(d)
        for base in param.base:
            if base in ("Resource", "DomainResource"):
                common[param.code] = param
            elif base in per_type:
                per_type[base][param.code] = param
    for t, params in per_type.items():
        for code, p in common.items():
            params.setdefault(code, p)
        per_type[t] = dict(sorted(params.items()))
    return per_type


def search_params_for(resource_type: str) -> dict[str, SearchParam]:
    return search_parameters().get(resource_type, {})


@cache
def patient_compartment() -> dict[str, tuple[str, ...]]:
    """``{resource type: (param codes linking it to a Patient)}`` from the R4 CompartmentDefinition."""
    doc = _load_json("compartmentdefinition-patient.json")
    return {r["code"]: tuple(r.get("param", ())) for r in doc.get("resource", []) if r.get("param")}
