"""Finding the expert for a case: the network's candidates read from the directory, ranked by
the pure rule ``resources.matching.rank``.

Candidates are the PractitionerRoles that claim the ``second-opinion-expert`` profile; their
open caseload is the number of open case Tasks (and board sub-Tasks) they own right now, read in
the caller's transaction so two cases matched in one Bundle see each other.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from profiles.conformance import PROFILE_EXPERT
from profiles.terminology import CoveredMatch
from resources.domain import local_id
from resources.matching import Candidate, candidate_from, need_from, rank
from server.cases.store import OPEN
from server.repository import Repository

MAX_EXPERTS = 5000


def _by_key(repo: Repository, keys: set[str]) -> dict[str, dict[str, Any]]:
    return {f"{t}/{d['_id']}": d["resource"] for t, d in repo.fetch_visible(sorted(keys))}


def caseloads(repo: Repository, roles: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    if not roles:
        return counts
    for doc in repo.find_visible(
        "Task", {"acl.owners": {"$in": roles}}, fields=["acl.owners", "resource.status"]
    ):
        if (doc.get("resource") or {}).get("status") in OPEN:
            for owner in (doc.get("acl") or {}).get("owners", []):
                counts[owner] += 1
    return counts


def candidates(repo: Repository, today: date) -> list[Candidate]:
    roles = [
        d["resource"]
        for d in repo.find_visible(
            "PractitionerRole", {"resource.meta.profile": PROFILE_EXPERT}, limit=MAX_EXPERTS
        )
    ]
    linked: set[str] = set()
    for role in roles:
        for ref in [role.get("practitioner"), *(role.get("location") or [])]:
            for rtype in ("Practitioner", "Location"):
                rid = local_id(ref, rtype)
                if rid:
                    linked.add(f"{rtype}/{rid}")
    resources = _by_key(repo, linked)
    loads = caseloads(repo, [str(r["id"]) for r in roles])
    out = []
    for role in roles:
        pid = local_id(role.get("practitioner"), "Practitioner")
        locations = [
            resources[f"Location/{lid}"]
            for lid in (local_id(ref, "Location") for ref in role.get("location") or [])
            if lid and f"Location/{lid}" in resources
        ]
        out.append(
            candidate_from(
                role,
                resources.get(f"Practitioner/{pid}") if pid else None,
                locations,
                open_cases=loads[str(role["id"])],
                today=today,
            )
        )
    return out


def best_expert(
    repo: Repository,
    request: dict[str, Any],
    condition: CoveredMatch | None,
    today: date,
    *,
    exclude: frozenset[str] = frozenset(),
) -> Candidate | None:
    """The best-ranked available expert for ``request`` (``exclude``: roles that declined the
    case, its current owner on a reassign, the first opinion's expert on a third opinion)."""
    patient_id = local_id(request.get("subject"), "Patient")
    requester_id = local_id(request.get("requester"), "PractitionerRole")
    keys = {f"Patient/{patient_id}"} if patient_id else set()
    if requester_id:
        keys.add(f"PractitionerRole/{requester_id}")
    found = _by_key(repo, keys)
    need = need_from(
        request,
        condition,
        found.get(f"Patient/{patient_id}"),
        found.get(f"PractitionerRole/{requester_id}"),
        exclude_roles=exclude,
    )
    ranked = rank(candidates(repo, today), need)
    return ranked[0] if ranked else None
