"""What a document shows of a Coverage: the reviewer's needs only (docs/documents.md).

Why trim at all, when the caller may read the whole Coverage: a document travels (it is filed,
forwarded, printed) and the second-opinion expert decides nothing about cover — the service
checked eligibility at submission. What a reviewer needs is who pays, for which plan, and that
the cover is in force; the member/certificate number, subscriber, relationship, group policy
number and employer name are identifiers a forwarded document should not spread.
"""

from __future__ import annotations

from typing import Any

from server.documents.compose import spec

Resource = dict[str, Any]
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-class"


def _kept_class(c: dict[str, Any]) -> bool:
    kinds = spec()["coverage-summary-class-types"]
    codings = (c.get("type") or {}).get("coding") or []
    return any(cd.get("system") == CLASS_SYSTEM and cd.get("code") in kinds for cd in codings)


def coverage_summary(key: str, resource: Resource) -> Resource:
    """What the reviewer needs of a Coverage: status, type, beneficiary, in-force period, payor
    and the plan class; never the member/certificate number, subscriber, group policy number or
    employer (docs/documents.md). Tagged ``SUBSETTED``; other resources pass unchanged."""
    if resource.get("resourceType") != "Coverage":
        return resource
    keep = spec()["coverage-summary-elements"]
    out = {k: resource[k] for k in keep if k in resource}
    classes = [
        {k: c[k] for k in ("type", "value", "name") if k in c}
        for c in resource.get("class") or []
        if _kept_class(c)
    ]
    if classes:
        out["class"] = classes
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), dict(SUBSETTED)]
    out["meta"] = meta
    return out
