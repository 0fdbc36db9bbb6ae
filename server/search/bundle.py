"""The searchset Bundle: entries (match/include/outcome), links, total, _summary/_elements."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any
from urllib.parse import urlencode

from server.errors import operation_outcome
from server.search.execute import SearchResult, encode_page
from server.search.model import SearchRequest

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
ALWAYS = ("resourceType", "id", "meta")


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """Top-level element names flagged isSummary in R4B (fhir.resources model metadata)."""
    try:
        from fhir.resources.R4B import get_fhir_model_class

        model = get_fhir_model_class(resource_type)
    except Exception:  # unknown to the model library: keep only the mandatory elements
        return frozenset(ALWAYS)
    out = set(ALWAYS)
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("summary_element_property"):
            out.add(info.alias or name)
    return frozenset(out)


def _subsetted(resource: dict[str, Any], keep: Sequence[str] | frozenset[str]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k in keep or k in ALWAYS}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    out["meta"] = meta
    return out


def shape(resource: dict[str, Any], req: SearchRequest) -> dict[str, Any]:
    if req.summary == "true":
        return _subsetted(resource, summary_elements(resource["resourceType"]))
    if req.summary == "text":
        return _subsetted(resource, ("text",))
    if req.summary == "data":
        return _subsetted(resource, [k for k in resource if k != "text"])
    if req.elements is not None and req.summary in (None, "false"):
        return _subsetted(resource, req.elements)
    return resource


def _link(base: str, path: str, pairs: list[tuple[str, str]]) -> str:
    return f"{base}/{path}" + (f"?{urlencode(pairs)}" if pairs else "")


def searchset(base: str, path: str, req: SearchRequest, result: SearchResult) -> dict[str, Any]:
    echo = [(n, v) for n, v in req.echo if n != "_count"]
    count_pair = [("_count", str(result.count))]
    links = [
        {
            "relation": "self",
            "url": _link(
                base,
                path,
                req.echo
                + (
                    [("_page", encode_page(result.snapshot, result.offset))]
                    if req.page and result.snapshot
                    else []
                ),
            ),
        }
    ]
    if result.snapshot:
        if result.has_next:
            token = encode_page(result.snapshot, result.offset + result.count)
            links.append(
                {
                    "relation": "next",
                    "url": _link(base, path, echo + count_pair + [("_page", token)]),
                }
            )
        if result.prev_offset is not None:
            prev = encode_page(result.snapshot, result.prev_offset)
            links.append(
                {
                    "relation": "previous",
                    "url": _link(base, path, echo + count_pair + [("_page", prev)]),
                }
            )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None and req.total != "none":
        bundle["total"] = result.total
    bundle["link"] = links
    entries: list[dict[str, Any]] = []
    if req.summary != "count":
        for mode, items in (("match", result.matches), ("include", result.included)):
            for rtype, doc in items:
                entries.append(
                    {
                        "fullUrl": f"{base}/{rtype}/{doc['_id']}",
                        "resource": shape(doc["resource"], req),
                        "search": {"mode": mode},
                    }
                )
    if result.issues:
        entries.append(
            {
                "resource": operation_outcome(result.issues),
                "search": {"mode": "outcome"},
            }
        )
    if entries:
        bundle["entry"] = entries
    return bundle
