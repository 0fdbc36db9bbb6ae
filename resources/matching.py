"""Matching a case to an expert: hard constraints, then a deterministic ranking.

Pure: the engine reads the network's PractitionerRoles (with their Practitioner and Locations)
and the open-case counts, turns them into ``Candidate``s with ``candidate_from``, builds the
case's ``Need`` with ``need_from`` and assigns the first of ``rank``. Nothing here reads the
clock or the database, so the same inputs always choose the same expert.

Hard constraints (a candidate failing any is never offered):

* **Specialty**: the candidate has one of the needed specialties (``system|code``). The need is
  the request's ``performerType`` when present — the treating consultant's explicit ask wins
  over our routing — else the covered condition's ``default-specialty``. With neither, nobody
  matches: a case we cannot route goes to ``awaiting-expert`` for a coordinator, rather than to
  a guess.
* **Available**: the role (and its Practitioner) is active, and it is not on leave today
  (``PractitionerRole.notAvailable.during`` covers today, or the role's period does not).
* **No conflict of interest**: never the requesting practitioner, the requesting
  PractitionerRole, or anyone of the requester's organization — a second opinion must be
  independent of the first.
* **Not excluded**: roles the engine excludes (experts who declined the case, experts already
  on it).

Ranking among the rest, best first (each key breaks the previous one's ties):

1. **Speaks the patient's preferred language** (``Patient.communication`` marked preferred,
   else the first): the report and any question to the member are in that language, and a
   translated second opinion loses nuance. It ranks above place because the review is of the
   record, remotely.
2. **Same country and region** (``state``) as the patient: local practice, the provincial or
   state formulary and licensure, and an in-person follow-up if the member wants one.
3. **Same country**: national guidelines and what treatment is available and paid for.
4. **Fewest open cases**: spreads the work so the turnaround promise holds.
5. **Role id**: an arbitrary but stable tie-break, so a replayed submission picks the same
   expert.

Regions are compared within the candidate's set of countries and set of regions, not per
Location: a role with Locations in two countries could match a region of one with the country
of the other. Network roles have Locations in one country, so this approximation is accepted
for the sake of a flat, comparable ``Candidate``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from profiles.terminology import CoveredMatch, default_specialty
from resources.calendar import period_covers
from resources.domain import codings, local_id


@dataclass(frozen=True)
class Candidate:
    """One PractitionerRole of the network, flattened for ranking."""

    role: str  # PractitionerRole id
    practitioner: str | None
    organization: str | None
    specialties: frozenset[str]  # "system|code"
    countries: frozenset[str]  # from the role's Location addresses (country)
    regions: frozenset[str]  # from the role's Location addresses (state)
    languages: frozenset[str]  # BCP-47 primary subtags from Practitioner.communication
    active: bool
    on_leave: bool
    open_cases: int


@dataclass(frozen=True)
class Need:
    """What a case needs of its expert, and whom it must not go to."""

    specialties: frozenset[str]
    country: str | None
    region: str | None
    language: str | None
    exclude_roles: frozenset[str] = frozenset()
    exclude_practitioners: frozenset[str] = frozenset()
    exclude_organizations: frozenset[str] = frozenset()


def _norm(value: str | None) -> str | None:
    """Compare places case- and space-insensitively ("ON" = "on ", "ca" = "CA")."""
    return value.strip().casefold() if isinstance(value, str) and value.strip() else None


def _norms(values: Iterable[str]) -> frozenset[str]:
    return frozenset(n for n in (_norm(v) for v in values) if n)


def primary_language(tag: str | None) -> str | None:
    """The BCP-47 primary subtag, lower case: ``en-CA`` → ``en``."""
    if not isinstance(tag, str) or not tag.strip():
        return None
    return tag.strip().replace("_", "-").split("-")[0].lower() or None


def token(coding: dict[str, Any]) -> str | None:
    system, code = coding.get("system"), coding.get("code")
    return f"{system}|{code}" if isinstance(system, str) and isinstance(code, str) else None


def eligible(candidate: Candidate, need: Need) -> bool:
    """The hard constraints (module docstring)."""
    return (
        bool(candidate.specialties & need.specialties)
        and candidate.active
        and not candidate.on_leave
        and candidate.role not in need.exclude_roles
        and (
            candidate.practitioner is None
            or candidate.practitioner not in need.exclude_practitioners
        )
        and (
            candidate.organization is None
            or candidate.organization not in need.exclude_organizations
        )
    )


def _sort_key(candidate: Candidate, need: Need) -> tuple[bool, bool, bool, int, str]:
    """Ascending: False (a match) sorts before True."""
    language = primary_language(need.language)
    country, region = _norm(need.country), _norm(need.region)
    countries, regions = _norms(candidate.countries), _norms(candidate.regions)
    same_language = language is not None and language in {
        primary_language(x) for x in candidate.languages
    }
    same_country = country is not None and country in countries
    same_region = same_country and region is not None and region in regions
    return (
        not same_language,
        not same_region,
        not same_country,
        candidate.open_cases,
        candidate.role,
    )


def rank(candidates: Iterable[Candidate], need: Need) -> list[Candidate]:
    """The candidates meeting every hard constraint, best first.

    Order: the patient's language, then same country and region, then same country, then
    fewest open cases, then role id (the module docstring says why, key by key).
    """
    return sorted((c for c in candidates if eligible(c, need)), key=lambda c: _sort_key(c, need))


def _languages(practitioner: dict[str, Any] | None) -> frozenset[str]:
    """Practitioner.communication: R4 CodeableConcepts (R5's ``{language: ...}`` also read)."""
    out: set[str] = set()
    for item in (practitioner or {}).get("communication", []):
        if not isinstance(item, dict):
            continue
        concept = item.get("language", item)
        for c in codings(concept):
            lang = primary_language(c.get("code"))
            if lang:
                out.add(lang)
    return frozenset(out)


def _on_leave(role: dict[str, Any], today: date) -> bool:
    for na in role.get("notAvailable", []):
        during = na.get("during") if isinstance(na, dict) else None
        if isinstance(during, dict) and period_covers(during, today):
            return True
    return False


def candidate_from(
    role: dict[str, Any],
    practitioner: dict[str, Any] | None,
    locations: list[dict[str, Any]],
    *,
    open_cases: int,
    today: date,
) -> Candidate:
    """Flatten a PractitionerRole with its Practitioner and its Locations.

    Active: ``PractitionerRole.active`` and ``Practitioner.active`` are not false (absent means
    in use, as records in a curated network are) and the role's ``period`` covers today.
    On leave: a ``notAvailable.during`` covers today (a ``notAvailable`` without ``during``
    says nothing about today and is ignored).
    """
    specialties = frozenset(
        t for t in (token(c) for c in codings(role.get("specialty", []))) if t is not None
    )
    addresses: list[dict[str, Any]] = [
        loc["address"]
        for loc in locations
        if isinstance(loc, dict) and isinstance(loc.get("address"), dict)
    ]
    active = (
        role.get("active") is not False
        and (practitioner or {}).get("active") is not False
        and period_covers(role.get("period"), today)
    )
    return Candidate(
        role=str(role.get("id")),
        practitioner=local_id(role.get("practitioner"), "Practitioner"),
        organization=local_id(role.get("organization"), "Organization"),
        specialties=specialties,
        countries=frozenset(a["country"] for a in addresses if isinstance(a.get("country"), str)),
        regions=frozenset(a["state"] for a in addresses if isinstance(a.get("state"), str)),
        languages=_languages(practitioner),
        active=active,
        on_leave=_on_leave(role, today),
        open_cases=open_cases,
    )


def _patient_language(patient: dict[str, Any] | None) -> str | None:
    comms = [c for c in (patient or {}).get("communication", []) if isinstance(c, dict)]
    ordered = [c for c in comms if c.get("preferred") is True] + comms
    for comm in ordered:
        for c in codings(comm.get("language")):
            lang = primary_language(c.get("code"))
            if lang:
                return lang
    return None


def _patient_address(patient: dict[str, Any] | None) -> dict[str, Any]:
    """The home address if one is marked, else the first (old addresses aside)."""
    addresses = [
        a
        for a in (patient or {}).get("address", [])
        if isinstance(a, dict) and a.get("use") != "old"
    ]
    for a in addresses:
        if a.get("use") == "home":
            return a
    return addresses[0] if addresses else {}


def needed_specialties(
    request: dict[str, Any], condition_match: CoveredMatch | None
) -> frozenset[str]:
    """performerType codings when present (the requester's ask), else the default specialty."""
    asked = frozenset(
        t for t in (token(c) for c in codings(request.get("performerType"))) if t is not None
    )
    if asked:
        return asked
    if condition_match is None:
        return frozenset()
    default = default_specialty(condition_match.condition)
    t = token(default) if default else None
    return frozenset({t}) if t else frozenset()


def need_from(
    request: dict[str, Any],
    condition_match: CoveredMatch | None,
    patient: dict[str, Any] | None,
    requester_role: dict[str, Any] | None,
    *,
    exclude_roles: frozenset[str] = frozenset(),
) -> Need:
    """The case's Need: specialty, the patient's place and language, and the conflict rule.

    The requester is excluded however the request names it: a PractitionerRole (and through
    ``requester_role``, its practitioner and organization), a Practitioner, or an Organization.
    """
    requester = request.get("requester")
    roles = set(exclude_roles)
    practitioners: set[str] = set()
    organizations: set[str] = set()
    for kind, bucket in (
        ("PractitionerRole", roles),
        ("Practitioner", practitioners),
        ("Organization", organizations),
    ):
        rid = local_id(requester, kind)
        if rid:
            bucket.add(rid)
    if requester_role is not None:
        if isinstance(requester_role.get("id"), str):
            roles.add(requester_role["id"])
        for kind, bucket in (("Practitioner", practitioners), ("Organization", organizations)):
            rid = local_id(requester_role.get(kind.lower()), kind)
            if rid:
                bucket.add(rid)
    address = _patient_address(patient)
    country, region = address.get("country"), address.get("state")
    return Need(
        specialties=needed_specialties(request, condition_match),
        country=country if isinstance(country, str) else None,
        region=region if isinstance(region, str) else None,
        language=_patient_language(patient),
        exclude_roles=frozenset(roles),
        exclude_practitioners=frozenset(practitioners),
        exclude_organizations=frozenset(organizations),
    )
