"""SubscriptionTopics of the case (Subscriptions Backport IG), loaded from
``profiles/definitions/SubscriptionTopic-*.json``.

R4 has no SubscriptionTopic resource: the Backport IG's R4 form names a topic by its canonical
URL in ``Subscription.criteria`` (the IG's 1.2 build adds ``Basic`` + cross-version extensions as
an optional R4 representation). We ship the topics as data in the R4B/R5 ``SubscriptionTopic``
shape, which is what the canonical means, and read them here; they are not stored as resources.

A trigger is the topic's ``queryCriteria`` (``current``, ``previous``, ``resultForCreate``,
``requireBoth``) as FHIR search query strings, parsed and planned by the search engine exactly
like classic criteria, plus our ``topic-trigger-changed`` extension: search parameters whose
index values must differ between the previous and the current version (``status changed``,
``owner set``), which R5 writes as ``fhirPathCriteria``. Filters (``backport-filter-criteria``
on ``Subscription.criteria``) are searches on the trigger's type using only the topic's
``canFilterBy`` parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from profiles import definitions_dir
from server.notifications import spec as spec_mod
from server.search import query as qb
from server.search.model import SearchRequest

CHANGED_EXT = "https://consilium.health/fhir/StructureDefinition/topic-trigger-changed"


def _no_chain(*_: Any) -> list[str]:
    raise AssertionError("topic criteria have no chains")


def plan(resource_type: str, query: str) -> tuple[SearchRequest, qb.Plan]:
    _, _, req = spec_mod.parse_criteria(f"{resource_type}?{query}")
    return req, qb.build(resource_type, req.clauses, _no_chain, _no_chain)


@dataclass(frozen=True)
class Trigger:
    resource: str
    interactions: frozenset[str]
    current: qb.Plan | None
    previous: qb.Plan | None
    create_passes: bool
    require_both: bool
    changed: tuple[str, ...]


@dataclass(frozen=True)
class Topic:
    url: str
    title: str
    triggers: tuple[Trigger, ...]
    filters: dict[str, frozenset[str]]  # resource type → canFilterBy parameters


def _trigger(raw: dict[str, Any]) -> Trigger:
    rtype = str(raw["resource"]).rsplit("/", 1)[-1]
    q = raw.get("queryCriteria") or {}
    current = plan(rtype, q["current"])[1] if q.get("current") else None
    previous = plan(rtype, q["previous"])[1] if q.get("previous") else None
    changed = tuple(
        str(e["valueString"]) for e in raw.get("extension") or [] if e.get("url") == CHANGED_EXT
    )
    return Trigger(
        rtype,
        frozenset(raw.get("supportedInteraction") or ("create", "update")),
        current,
        previous,
        q.get("resultForCreate", "test-passes") == "test-passes",
        bool(q.get("requireBoth", False)),
        changed,
    )


@cache
def topics() -> dict[str, Topic]:
    out: dict[str, Topic] = {}
    for path in sorted(definitions_dir().glob("SubscriptionTopic-*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        filters: dict[str, set[str]] = {}
        for f in raw.get("canFilterBy") or []:
            filters.setdefault(str(f["resource"]), set()).add(str(f["filterParameter"]))
        out[raw["url"]] = Topic(
            raw["url"],
            raw.get("title", ""),
            tuple(_trigger(t) for t in raw.get("resourceTrigger") or []),
            {k: frozenset(v) for k, v in filters.items()},
        )
    return out


def topic_of(canonical: str) -> Topic:
    topic = topics().get(canonical.split("|", 1)[0])
    if topic is None:
        raise spec_mod.unprocessable(
            f"unknown SubscriptionTopic {canonical!r}; known: {sorted(topics())}", "criteria"
        )
    return topic


def check_filters(topic: Topic, filters: list[str]) -> list[tuple[str, str]]:
    """(type, query) per filter; 422 for a type the topic does not trigger on or a parameter
    it does not offer (``canFilterBy``), and for anything the search parser refuses."""
    out: list[tuple[str, str]] = []
    for raw in filters:
        rtype, query, req = spec_mod.parse_criteria(raw)
        allowed = topic.filters.get(rtype, frozenset())
        if rtype not in {t.resource for t in topic.triggers}:
            raise spec_mod.unprocessable(f"the topic does not trigger on {rtype}", "criteria")
        for clause in req.clauses:
            if clause.code not in allowed or clause.path:
                raise spec_mod.unprocessable(
                    f"the topic cannot filter {rtype} by {clause.name!r}; "
                    f"it offers {sorted(allowed)}",
                    "criteria",
                )
        out.append((rtype, query))
    return out
