#!/usr/bin/env python3
"""Write the demo network (seed/data/20-*.json onwards) from tools/demo_network_vocabulary.json.

Why a generator: 80 experts, 200 members and 50 cases are too many to keep consistent by hand
(every reference must resolve, every rejected case must fail exactly the rules it names, owners
must be the experts the ranking would pick), yet the seed must stay data the loader reads, not
code it runs. So this script is run by a person, its output is committed, and a test checks that
running it again reproduces the committed files byte for byte (``--check`` does the same here).

Deterministic: one ``random.Random`` seeded from the vocabulary, fixed iteration orders, no clock.
Stdlib only, and nothing of ours is imported, so a change in the server's code never changes the
data silently. docs/seed.md says what is in the network and why it is shaped so.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = ROOT / "tools" / "demo_network_vocabulary.json"
OUT_DIR = ROOT / "seed" / "data"
B = "https://consilium.health/fhir"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
BCP47 = "urn:ietf:bcp:47"
CS_COVERED = f"{B}/CodeSystem/covered-serious-conditions"
CS_STATUS = f"{B}/CodeSystem/case-business-status"
CS_OUTCOME = f"{B}/CodeSystem/second-opinion-outcome"
CS_COMMUNICATION = f"{B}/CodeSystem/case-communication"
NETWORK_ORG = "Organization/net-consilium-experts"

Resource = dict[str, Any]
OPEN = ("requested", "accepted", "in-progress", "on-hold")

STATUS_DISPLAY = {
    "received": "Received",
    "eligible": "Eligible",
    "expert-assigned": "Expert assigned",
    "awaiting-expert": "Awaiting expert",
    "case-retrieved": "Case retrieved",
    "under-review": "Under review",
    "interim-report": "Interim report",
    "awaiting-information": "Awaiting information",
    "report-issued": "Report issued",
    "cancelled": "Cancelled",
    "coverage-not-in-force": "Coverage not in force",
    "benefit-not-included": "Benefit not included",
    "condition-not-covered": "Condition not covered",
    "investigations-incomplete": "Investigations incomplete",
    "diagnosis-not-firm": "Diagnosis not firm",
}
OUTCOME_DISPLAY = {
    "confirm-diagnosis": "Diagnosis confirmed",
    "alternative-diagnosis": "Alternative diagnosis",
    "alternative-treatment": "Alternative treatment",
}


# ----------------------------------------------------------------------------------- helpers
def ref(key: str) -> dict[str, str]:
    return {"reference": key}


def key(r: Resource) -> str:
    return f"{r['resourceType']}/{r['id']}"


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def provider(place: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A clinic or centre of excellence as an Organization (type prov); ``extra`` goes before
    the address, so the generated files keep their field order."""
    return {
        "resourceType": "Organization",
        "id": place["id"],
        "active": True,
        "type": [
            concept(
                "http://terminology.hl7.org/CodeSystem/organization-type",
                "prov",
                "Healthcare Provider",
            )
        ],
        "name": place["name"],
        **extra,
        "address": [{"city": place["city"], "state": place["state"], "country": place["country"]}],
    }


def business_days_after(start: date, days: int) -> date:
    d = start
    while days > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            days -= 1
    return d


def at(day: date, hh: int, mm: int = 0) -> str:
    return f"{day.isoformat()}T{hh:02d}:{mm:02d}:00Z"


def bundle(bid: str, resources: list[Resource]) -> Resource:
    return {
        "resourceType": "Bundle",
        "id": bid,
        "type": "collection",
        "entry": [{"fullUrl": f"{B}/{key(r)}", "resource": r} for r in resources],
    }


def render(doc: Resource) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def pdf(lines: list[str]) -> str:
    """A minimal one-page PDF (base64) with the given text lines: stdlib only, opens anywhere."""

    def esc(s: str) -> str:
        t = s.encode("latin-1", "replace").decode("latin-1")
        return t.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = "BT /F1 11 Tf 56 780 Td 14 TL " + " ".join(f"({esc(x)}) '" for x in lines) + " ET"
    stream = text.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return base64.b64encode(bytes(out)).decode()


class Network:
    """Builds the network's resources from the vocabulary, in load order."""

    def __init__(self, vocab: dict[str, Any]) -> None:
        self.v = vocab
        self.rng = random.Random(vocab["seed"])  # noqa: S311 - demo data, not secrets
        self.regions = {r["id"]: r for r in vocab["regions"]}
        self.centres = {c["id"]: c for c in vocab["centres"]}
        self.files: dict[str, list[Resource]] = {}
        self.clinics: dict[str, dict[str, Any]] = {}  # clinic id -> {"doctor": role id, ...}
        self.experts: list[dict[str, Any]] = []
        self.members: list[dict[str, Any]] = []
        self.used_names: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------------------- places
    def place(self, pid: str) -> tuple[str, str | None, str]:
        """(country, state, Location id) of a region or a centre."""
        if pid in self.regions:
            r = self.regions[pid]
            return r["country"], r["state"], pid
        c = self.centres[pid]
        return c["country"], c["state"], f"site-{pid.removeprefix('coe-')}"

    def organizations_and_locations(self) -> None:
        orgs: list[Resource] = []
        locations: list[Resource] = []
        for c in self.v["clinics"]:
            if c.get("core"):
                continue
            orgs.append(provider(c))
        for c in self.v["centres"]:
            orgs.append(provider(c, telecom=[{"system": "url", "value": c["url"]}]))
        for r in self.v["regions"]:
            if r.get("core"):
                continue
            locations.append(
                {
                    "resourceType": "Location",
                    "id": r["id"],
                    "status": "active",
                    "name": r["name"],
                    "mode": "kind",
                    "physicalType": concept(
                        "http://terminology.hl7.org/CodeSystem/location-physical-type",
                        "area",
                        "Area",
                    ),
                    "address": {"state": r["state"], "country": r["country"]},
                    "managingOrganization": ref(NETWORK_ORG),
                }
            )
        for c in self.v["centres"]:
            _, _, lid = self.place(c["id"])
            locations.append(
                {
                    "resourceType": "Location",
                    "id": lid,
                    "status": "active",
                    "name": c["name"],
                    "description": "International centre of excellence in the Consilium network",
                    "mode": "instance",
                    "physicalType": concept(
                        "http://terminology.hl7.org/CodeSystem/location-physical-type",
                        "bu",
                        "Building",
                    ),
                    "address": {"city": c["city"], "state": c["state"], "country": c["country"]},
                    "managingOrganization": ref(f"Organization/{c['id']}"),
                }
            )
        self.files["20-network-organizations.json"] = orgs
        self.files["21-network-locations.json"] = locations

    def plans(self) -> None:
        out = []
        for p in self.v["plans"]:
            out.append(
                {
                    "resourceType": "InsurancePlan",
                    "id": p["id"],
                    "status": "active",
                    "identifier": [{"system": f"{B}/sid/plan", "value": p["identifier"]}],
                    "type": [
                        concept(
                            "http://terminology.hl7.org/CodeSystem/insuranceplan-type",
                            "medical",
                            "Medical",
                        )
                    ],
                    "name": p["name"],
                    "ownedBy": ref(f"Organization/{p['insurer']}"),
                    "administeredBy": ref(f"Organization/{p['insurer']}"),
                    "coverage": [
                        {
                            "type": concept(
                                "http://terminology.hl7.org/CodeSystem/ex-benefitcategory",
                                "3",
                                "Consultation",
                            ),
                            "benefit": [
                                {
                                    "type": {
                                        "coding": [
                                            coding(
                                                "http://terminology.hl7.org/CodeSystem/v2-0336",
                                                "S",
                                                "Second Opinion",
                                            )
                                        ],
                                        "text": "Second medical opinion on a covered serious "
                                        "condition",
                                    },
                                    "requirement": "Covered serious condition; investigations "
                                    "completed by the treating consultant; firm diagnosis.",
                                    "limit": [
                                        {
                                            "value": {
                                                "value": p["opinions"],
                                                "unit": "opinions per year",
                                                "system": "http://unitsofmeasure.org",
                                                "code": "{opinion}/a",
                                            },
                                            "code": {"text": "Opinions per policy year"},
                                        },
                                        {
                                            "value": {
                                                "value": p["turnaround"],
                                                "unit": "days",
                                                "system": "http://unitsofmeasure.org",
                                                "code": "d",
                                            },
                                            "code": {"text": "Report turnaround"},
                                        },
                                    ],
                                }
                            ],
                        }
                    ],
                }
            )
        self.files["22-network-plans.json"] = out

    # ------------------------------------------------------------------------------- people
    def community(self, country: str, place: str | None) -> dict[str, Any]:
        pool = self.v["countries"][country]["communities"]
        local = [c for c in pool if place in c.get("regions", [])] if place else []
        choices = local or pool
        return self.rng.choices(choices, weights=[c["weight"] for c in choices])[0]

    def person(self, country: str, place: str | None) -> tuple[dict[str, Any], str, str, str]:
        """(community, gender, given, family), a name not used before in the network."""
        for _ in range(200):
            com = self.community(country, place)
            gender = self.rng.choice(("female", "male"))
            given = self.rng.choice(com[gender])
            family = self.rng.choice(com["family"])
            if (given, family) not in self.used_names:
                self.used_names.add((given, family))
                return com, gender, given, family
        raise RuntimeError(f"name pool of {country} exhausted")

    def language(self, code: str) -> dict[str, Any]:
        return concept(BCP47, code, self.v["languages"][code])

    def practitioners_and_roles(self) -> None:
        practitioners: list[Resource] = []
        roles: list[Resource] = []
        for c in self.v["clinics"]:
            if c.get("core"):
                self.clinics[c["id"]] = {"doctor": c["doctor"], **c}
                continue
            title, given, family, gender, langs = c["doctor"]
            short = c["id"].removeprefix("clinic-")
            pid = f"doc-{short}-{family.lower()}"
            practitioners.append(
                {
                    "resourceType": "Practitioner",
                    "id": pid,
                    "active": True,
                    "name": [{"family": family, "given": [given], "prefix": [title]}],
                    "gender": gender,
                    "communication": [self.language(x) for x in langs],
                }
            )
            roles.append(
                {
                    "resourceType": "PractitionerRole",
                    "id": f"role-{pid}",
                    "active": True,
                    "practitioner": ref(f"Practitioner/{pid}"),
                    "organization": ref(f"Organization/{c['id']}"),
                    "code": [{"text": "Treating consultant"}],
                }
            )
            self.clinics[c["id"]] = {**c, "doctor": f"role-{pid}"}
        unavailable = self.v["unavailable"]
        n = 0
        for placement in self.v["placements"]:
            pkey = placement["place"]
            country, state, lid = self.place(pkey)
            short = pkey.removeprefix("region-").removeprefix("coe-")
            seen: dict[str, int] = {}
            for spec in placement["specialties"]:
                seen[spec] = seen.get(spec, 0) + 1
                rid = f"net-exp-{spec}-{short}" + (f"-{seen[spec]}" if seen[spec] > 1 else "")
                pid = f"prac-{rid}"
                region_place = pkey if pkey in self.regions else None
                com, gender, given, family = self.person(country, region_place)
                s = self.v["specialties"][spec]
                langs: list[str] = []
                for x in [*com["speaks"], *self.v["expert_languages"].get(pkey, []), "en"]:
                    if x not in langs:
                        langs.append(x)
                if country == "GB" and s["surgeon"]:
                    prefix = "Mr" if gender == "male" else "Ms"
                else:
                    prefix = "Dr"
                quals = self.v["qualifications"][country]
                licences = quals["licence"]
                body = licences.get(state or "", licences.get("*", "licence"))
                number = f"{self.rng.randrange(10**6, 10**7)}"
                practitioners.append(
                    {
                        "resourceType": "Practitioner",
                        "id": pid,
                        "active": n != unavailable["inactive"],
                        "identifier": [
                            {"system": f"{B}/sid/practitioner", "value": pid},
                            {
                                "type": concept(
                                    "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "MD",
                                    "Medical License number",
                                ),
                                "system": f"{B}/sid/licence/{country.lower()}",
                                "value": f"{body}-{number}",
                            },
                        ],
                        "name": [{"family": family, "given": [given], "prefix": [prefix]}],
                        "gender": gender,
                        "communication": [self.language(x) for x in langs],
                        "qualification": [
                            {
                                "code": {"text": q["text"].format(title=s["title"])},
                                "issuer": {"display": q["issuer"]},
                            }
                            for q in quals["surgeon" if s["surgeon"] else "physician"]
                        ],
                    }
                )
                role: Resource = {
                    "resourceType": "PractitionerRole",
                    "id": rid,
                    "meta": {"profile": [f"{B}/StructureDefinition/second-opinion-expert"]},
                    "active": n != unavailable["inactive"],
                    "practitioner": ref(f"Practitioner/{pid}"),
                    "organization": ref(NETWORK_ORG),
                    "code": [{"text": "Second-opinion expert"}],
                    "specialty": [concept(SCT, code, display) for code, display in s["codes"]],
                    "location": [ref(f"Location/{lid}")],
                    "telecom": [{"system": "email", "value": f"{rid}@consilium.example"}],
                    "availableTime": [
                        {
                            "daysOfWeek": ["mon", "tue", "wed", "thu", "fri"],
                            "availableStartTime": "09:00:00",
                            "availableEndTime": "17:00:00",
                        }
                    ],
                    "availabilityExceptions": "Reports within the plan turnaround; not available "
                    "on public holidays.",
                }
                leave = unavailable["leave"]
                if n == leave["expert"]:
                    role["notAvailable"] = [
                        {
                            "description": leave["text"],
                            "during": {"start": leave["start"], "end": leave["end"]},
                        }
                    ]
                roles.append(role)
                self.experts.append(
                    {
                        "role": rid,
                        "spec": spec,
                        "codes": {code for code, _ in s["codes"]},
                        "country": country,
                        "state": state,
                        "languages": set(langs),
                        "available": n not in (unavailable["inactive"], leave["expert"]),
                        "open": 0,
                    }
                )
                n += 1
        self.files["23-network-practitioners.json"] = practitioners
        self.files["24-network-roles.json"] = roles

    def clinic_of(self, region: str) -> dict[str, Any]:
        return next(c for c in self.clinics.values() if region in c["regions"])

    def members_and_coverages(self) -> None:
        patients: list[Resource] = []
        coverages: list[Resource] = []
        serial = 10000
        for country, ins in self.v["insurers"].items():
            primaries: list[dict[str, Any]] = []
            for i in range(1, ins["members"] + 1):
                serial += 1
                pid = f"pat-{country.lower()}-{i:03d}"
                dependant_of = None
                if primaries and self.rng.random() < 0.18:
                    dependant_of = self.rng.choice(primaries)
                if dependant_of is None:
                    com, gender, given, family = self.person(country, None)
                    region = self.rng.choice(com["regions"])
                    city = self.rng.choice(self.v["cities"][region])
                    born = date(1948, 1, 1) + timedelta(days=self.rng.randrange(0, 365 * 56))
                    group = self.rng.choice(ins["groups"])
                    relationship = "self"
                else:
                    com = dependant_of["community"]
                    region, city = dependant_of["region"], dependant_of["city"]
                    family = dependant_of["family"]
                    pb: date = dependant_of["born"]
                    if self.rng.random() < 0.6:
                        relationship = "spouse"
                        gender = "female" if dependant_of["gender"] == "male" else "male"
                        born = pb + timedelta(days=self.rng.randrange(-2200, 2200))
                    else:
                        relationship = "child"
                        gender = self.rng.choice(("female", "male"))
                        born = pb + timedelta(days=self.rng.randrange(365 * 24, 365 * 34))
                        born = min(born, date(2006, 6, 30))
                    for _ in range(50):
                        given = self.rng.choice(com[gender])
                        if (given, family) not in self.used_names:
                            break
                    self.used_names.add((given, family))
                    group = dependant_of["group"]
                speaks = com["speaks"]
                preferred = speaks[0]
                if len(speaks) > 1 and speaks[0] == "en" and born.year < 1958:
                    preferred = speaks[1]  # an older member's first language
                if country == "IN" and born.year >= 1985:
                    preferred = "en"
                langs = [preferred] + [x for x in speaks if x != preferred]
                r = self.regions[region]
                address: dict[str, Any] = {"use": "home", "city": city, "country": r["country"]}
                if r["state"]:
                    address = {"use": "home", "city": city, "state": r["state"], "country": country}
                clinic = self.clinic_of(region)
                patients.append(
                    {
                        "resourceType": "Patient",
                        "id": pid,
                        "active": True,
                        "identifier": [
                            {"system": f"{B}/sid/patient", "value": f"CONS-{serial:05d}"}
                        ],
                        "name": [{"family": family, "given": [given]}],
                        "gender": gender,
                        "birthDate": born.isoformat(),
                        "address": [address],
                        "communication": [
                            {
                                "language": self.language(x),
                                **({"preferred": True} if j == 0 else {}),
                            }
                            for j, x in enumerate(langs)
                        ],
                        "managingOrganization": ref(f"Organization/{clinic['id']}"),
                    }
                )
                number = group[0].split("-")[-1]
                if dependant_of is None:
                    cert = f"{ins['prefix']}-{number}-{self.rng.randrange(1000, 10000)}"
                    while any(m["cert"] == cert for m in self.members):
                        cert = f"{ins['prefix']}-{number}-{self.rng.randrange(1000, 10000)}"
                    subscriber, subscriber_id = pid, cert
                else:
                    dependant_of["dependants"] += 1
                    subscriber_id = dependant_of["cert"]
                    cert = f"{subscriber_id}-{dependant_of['dependants']:02d}"
                    subscriber = dependant_of["id"]
                start = self.rng.choice(("2024-01-01", "2025-01-01", "2026-01-01"))
                member = {
                    "id": pid,
                    "country": country,
                    "community": com,
                    "gender": gender,
                    "family": family,
                    "given": given,
                    "born": born,
                    "region": region,
                    "city": city,
                    "group": group,
                    "plan": group[2],
                    "cert": cert,
                    "dependants": 0,
                    "language": preferred,
                    "clinic": clinic,
                    "insurer": ins["insurer"],
                    "turnaround": ins["turnaround"].get(group[2]),
                    "coverage": {
                        "resourceType": "Coverage",
                        "id": f"cov-{country.lower()}-{i:03d}",
                        "meta": {"profile": [f"{B}/StructureDefinition/second-opinion-coverage"]},
                        "identifier": [
                            {
                                "type": concept(
                                    "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "MB",
                                    "Member Number",
                                ),
                                "system": f"{B}/sid/certificate/{ins['insurer']}",
                                "value": cert,
                            }
                        ],
                        "status": "active",
                        "subscriber": ref(f"Patient/{subscriber}"),
                        "subscriberId": subscriber_id,
                        "beneficiary": ref(f"Patient/{pid}"),
                        "relationship": concept(
                            "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                            relationship,
                            relationship.capitalize(),
                        ),
                        "period": {"start": start, "end": "2028-12-31"},
                        "payor": [ref(f"Organization/{ins['insurer']}")],
                        "class": [
                            {
                                "type": concept(
                                    "http://terminology.hl7.org/CodeSystem/coverage-class",
                                    "group",
                                    "Group",
                                ),
                                "value": group[0],
                                "name": group[1],
                            },
                            {
                                "type": concept(
                                    "http://terminology.hl7.org/CodeSystem/coverage-class",
                                    "plan",
                                    "Plan",
                                ),
                                "value": group[2],
                            },
                        ],
                    },
                }
                self.members.append(member)
                coverages.append(member["coverage"])
                if dependant_of is None:
                    primaries.append(member)
        self.files["25-network-members.json"] = patients
        self.files["26-network-coverages.json"] = coverages

    # -------------------------------------------------------------------------------- cases
    def rank(self, member: dict[str, Any], codes: set[str], exclude: set[str]) -> dict[str, Any]:
        """The documented ranking (docs/cases.md) over the network's own experts."""
        pool = [
            e
            for e in self.experts
            if e["available"] and e["codes"] & codes and e["role"] not in exclude
        ]
        country, state = member["country"], self.regions[member["region"]]["state"]

        def sort_key(e: dict[str, Any]) -> tuple[bool, bool, bool, int, str]:
            same_country = e["country"] == country
            return (
                member["language"] not in e["languages"],
                not (same_country and state is not None and e["state"] == state),
                not same_country,
                e["open"],
                e["role"],
            )

        return sorted(pool, key=sort_key)[0]

    def pick_member(self, country: str, plan_ok: bool, taken: set[str]) -> dict[str, Any]:
        pool = [
            m
            for m in self.members
            if m["country"] == country
            and m["id"] not in taken
            and (m["plan"] != "MM-BASIC") == plan_ok
        ]
        m = self.rng.choice(pool)
        taken.add(m["id"])
        return m

    def cases(self) -> None:
        files = {
            name: []
            for name in (
                "27-network-conditions.json",
                "28-network-investigations.json",
                "29-network-requests.json",
                "30-network-reports.json",
                "31-network-tasks.json",
                "32-network-communications.json",
            )
        }
        scenarios: dict[str, list[dict[str, Any]]] = {}
        for s in self.v["scenarios"]:
            scenarios.setdefault(s["specialty"], []).append(s)
        taken: set[str] = set()
        first_opinions: dict[str, dict[str, Any]] = {}
        for number, spec in enumerate(self.v["cases"], start=1001):
            if "third_of" in spec:
                first = first_opinions[spec["third_of"]]
                member = first["member"]
                scenario = first["scenario"]
                suffix = "-third"
            else:
                member = self.pick_member(
                    spec["country"], "benefit-not-included" not in spec.get("reasons", []), taken
                )
                scenario = self.rng.choice(scenarios[spec["specialty"]])
                suffix = ""
            self.case(files, number, spec, member, scenario, suffix, first_opinions)
        self.files.update(files)

    def case(
        self,
        files: dict[str, list[Resource]],
        number: int,
        spec: dict[str, Any],
        member: dict[str, Any],
        scenario: dict[str, Any],
        suffix: str,
        first_opinions: dict[str, dict[str, Any]],
    ) -> None:
        state = spec["state"]
        reasons: list[str] = spec.get("reasons", [])
        base = member["id"].removeprefix("pat-") + suffix
        patient = f"Patient/{member['id']}"
        clinic = member["clinic"]
        doctor = f"PractitionerRole/{clinic['doctor']}"
        authored = date.fromisoformat(spec["date"])
        s = self.v["specialties"][scenario["specialty"]]
        case_no = f"SO-2026-{number}"
        if "coverage-not-in-force" in reasons:
            member["coverage"]["period"] = {"start": "2024-01-01", "end": "2026-06-30"}
            member["coverage"]["class"][0]["name"] += " (lapsed)"

        # Condition
        cond_code: dict[str, Any]
        if "condition-not-covered" in reasons:
            cond_code = {
                "coding": [coding(SCT, "44054006", "Diabetes mellitus type 2")],
                "text": "Type 2 diabetes mellitus with peripheral neuropathy",
            }
            text = cond_code["text"]
        else:
            codings = [coding(CS_COVERED, *scenario["condition"])]
            if scenario["snomed"]:
                codings.append(coding(SCT, *scenario["snomed"]))
            text = scenario["text"]
            cond_code = {"coding": codings, "text": text}
        firm = "diagnosis-not-firm" not in reasons
        condition = {
            "resourceType": "Condition",
            "id": f"cond-{base}",
            "clinicalStatus": concept(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
            ),
            "verificationStatus": concept(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "confirmed" if firm else "provisional",
            ),
            "category": [
                concept(
                    "http://terminology.hl7.org/CodeSystem/condition-category",
                    "encounter-diagnosis",
                    "Encounter Diagnosis",
                )
            ],
            "code": cond_code,
            "subject": ref(patient),
            "recordedDate": (authored - timedelta(days=12)).isoformat(),
            "asserter": ref(doctor),
        }
        files["27-network-conditions.json"].append(condition)

        # Investigations: an imaging report, a lab result when the scenario has one, the letter.
        supporting: list[str] = []
        complete = "investigations-incomplete" not in reasons
        imaging = {
            "resourceType": "DiagnosticReport",
            "id": f"dr-inv-{base}",
            "status": "final" if complete else "preliminary",
            "category": [
                concept("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology")
            ],
            "code": {
                "coding": [coding(LOINC, "18748-4", "Diagnostic imaging study")],
                "text": scenario["imaging"],
            },
            "subject": ref(patient),
            "effectiveDateTime": (authored - timedelta(days=16)).isoformat(),
            "issued": at(authored - timedelta(days=15), 10),
            "performer": [ref(f"Organization/{clinic['id']}")],
            "conclusion": f"Findings consistent with {text[0].lower() + text[1:]}."
            if complete
            else "Preliminary read only; the final report is pending.",
        }
        files["28-network-investigations.json"].append(imaging)
        supporting.append(key(imaging))
        if scenario["lab"] and complete:
            loinc, display, value, unit = scenario["lab"]
            obs = {
                "resourceType": "Observation",
                "id": f"obs-{base}",
                "status": "final",
                "category": [
                    concept(
                        "http://terminology.hl7.org/CodeSystem/observation-category",
                        "laboratory",
                        "Laboratory",
                    )
                ],
                "code": {"coding": [coding(LOINC, loinc, display)]},
                "subject": ref(patient),
                "effectiveDateTime": at(authored - timedelta(days=17), 8, 30),
                "valueQuantity": {
                    "value": value,
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
            files["28-network-investigations.json"].append(obs)
            supporting.append(key(obs))
        letter = (
            f"Diagnosis: {text}. Investigations: {scenario['imaging']}. Proposed plan attached."
        )
        docref = {
            "resourceType": "DocumentReference",
            "id": f"docref-{base}",
            "status": "current",
            "type": {
                "coding": [coding(LOINC, "11488-4", "Consult note")],
                "text": "Treating consultant's letter and treatment plan",
            },
            "subject": ref(patient),
            "date": at(authored - timedelta(days=2), 9),
            "author": [ref(doctor)],
            "description": "Treating consultant's letter: diagnosis, investigations done, "
            "proposed treatment plan.",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "language": "en",
                        "data": base64.b64encode(letter.encode()).decode(),
                        "title": "Consultant letter",
                    }
                }
            ],
        }
        files["28-network-investigations.json"].append(docref)
        supporting.append(key(docref))

        # The request
        sr_status = {"completed": "completed", "rejected": "revoked", "cancelled": "revoked"}.get(
            state, "active"
        )
        sr: Resource = {
            "resourceType": "ServiceRequest",
            "id": f"sr-{base}",
            "meta": {"profile": [f"{B}/StructureDefinition/second-opinion-request"]},
            "identifier": [{"system": f"{B}/sid/case", "value": case_no}],
        }
        if suffix:
            sr["replaces"] = [ref(f"ServiceRequest/sr-{first_opinions[spec['third_of']]['base']}")]
        sr.update(
            {
                "status": sr_status,
                "intent": "order",
                "category": [concept(SCT, "3457005", "Patient referral")],
                "priority": "routine",
                "code": {
                    "coding": [coding(SCT, "11429006", "Consultation")],
                    "text": "Third medical opinion" if suffix else "Second medical opinion",
                },
                "subject": ref(patient),
                "authoredOn": at(authored, 10),
                "requester": ref(doctor),
            }
        )
        if spec.get("performerType", True):
            sr["performerType"] = concept(SCT, *s["codes"][0])
        reason = [concept("http://terminology.hl7.org/CodeSystem/v2-0336", "S", "Second Opinion")]
        if "condition-not-covered" in reasons:
            reason.append({"text": text})
        else:
            reason.append({"coding": cond_code["coding"], "text": text})
        sr["reasonCode"] = reason
        sr["reasonReference"] = [ref(key(condition))]
        sr["insurance"] = [ref(f"Coverage/{member['coverage']['id']}")]
        sr["supportingInfo"] = [ref(k) for k in supporting]
        sr["note"] = [
            {
                "text": "The first two opinions disagree; the member asks for a third."
                if suffix
                else "Member asks for an expert review of the diagnosis and the treatment plan."
            }
        ]
        files["29-network-requests.json"].append(sr)

        # The owner, as the ranking would choose among the network's own experts.
        owner: str | None = None
        needs = {
            "expert-assigned",
            "case-retrieved",
            "under-review",
            "interim-report",
            "awaiting-information",
            "report-issued",
        }
        business = spec["business"]
        if business in needs or (state == "cancelled" and spec.get("owned")):
            exclude = {first_opinions[spec["third_of"]]["owner"]} if suffix else set()
            codes = {c for c, _ in s["codes"]} if spec.get("performerType", True) else set()
            if not codes:
                codes = {s["codes"][-1][0]}  # the covered condition's default specialty
            expert = self.rank(member, codes, exclude)
            owner = expert["role"]
            if state in OPEN:
                expert["open"] += 1

        # Report(s)
        task_output = None
        start = authored
        due = business_days_after(start, member["turnaround"] or 10)
        review_start = business_days_after(start, 1)
        if business in ("report-issued", "interim-report"):
            outcome = spec.get("outcome", "confirm-diagnosis")
            final = business == "report-issued"
            issued = business_days_after(start, spec.get("days", 6))
            if outcome == "alternative-treatment":
                conclusion = (
                    f"The diagnosis of {text[0].lower() + text[1:]} is confirmed. "
                    + (scenario["alt_treatment"])
                )
            elif outcome == "alternative-diagnosis":
                conclusion = (
                    f"The findings are better explained by {scenario['alt_diagnosis']} "
                    f"The proposed treatment for {text[0].lower() + text[1:]} should wait."
                )
            else:
                conclusion = (
                    f"The diagnosis of {text[0].lower() + text[1:]} is confirmed and the proposed "
                    "treatment plan is appropriate."
                )
            if not final:
                conclusion = "Interim opinion: " + conclusion + " A final report follows."
            report: Resource = {
                "resourceType": "DiagnosticReport",
                "id": f"so-report-{base}",
                "meta": {"profile": [f"{B}/StructureDefinition/second-opinion-report"]},
                "basedOn": [ref(key(sr))],
                "status": "final" if final else "preliminary",
                "category": [
                    concept("http://terminology.hl7.org/CodeSystem/v2-0074", "OTH", "Other")
                ],
                "code": {
                    "coding": [coding(LOINC, "11488-4", "Consult note")],
                    "text": "Second medical opinion report",
                },
                "subject": ref(patient),
                "effectiveDateTime": issued.isoformat(),
                "issued": at(issued, 16, 30),
                "performer": [ref(f"PractitionerRole/{owner}")],
                "resultsInterpreter": [ref(f"PractitionerRole/{owner}")],
                "conclusion": conclusion,
            }
            if final:
                report["conclusionCode"] = [concept(CS_OUTCOME, outcome, OUTCOME_DISPLAY[outcome])]
                report["presentedForm"] = [
                    {
                        "contentType": "application/pdf",
                        "language": "en",
                        "title": "Second opinion report",
                        "data": pdf(
                            [
                                "Consilium second medical opinion report",
                                f"Case {case_no}",
                                f"Patient: {member['given']} {member['family']}",
                                f"Expert: PractitionerRole/{owner}",
                                f"Outcome: {OUTCOME_DISPLAY[outcome]}",
                                conclusion[:110],
                            ]
                        ),
                    }
                ]
                task_output = key(report)
            files["30-network-reports.json"].append(report)
            if final and "label" in spec:
                first_opinions[spec["label"]] = {
                    "member": member,
                    "scenario": scenario,
                    "owner": owner,
                    "base": base,
                }

        # The case Task
        task: Resource = {
            "resourceType": "Task",
            "id": f"task-{base}",
            "meta": {"profile": [f"{B}/StructureDefinition/second-opinion-task"]},
            "identifier": [{"system": f"{B}/sid/case", "value": case_no}],
            "basedOn": [ref(key(sr))],
            "status": state,
            "businessStatus": concept(CS_STATUS, business, STATUS_DISPLAY[business]),
            "intent": "order",
            "code": concept(
                "http://hl7.org/fhir/CodeSystem/task-code", "fulfill", "Fulfill the focal request"
            ),
            "focus": ref(key(sr)),
            "for": ref(patient),
            "authoredOn": at(authored, 10, 5),
            "lastModified": at(business_days_after(start, spec.get("days", 2)), 12),
            "requester": ref(doctor),
            "insurance": [ref(f"Coverage/{member['coverage']['id']}")],
        }
        if owner:
            task["owner"] = ref(f"PractitionerRole/{owner}")
        if state == "rejected":
            task["statusReason"] = {
                "coding": [coding(CS_STATUS, r, STATUS_DISPLAY[r]) for r in reasons],
                "text": " ".join(self.v["rejections"][r] for r in reasons),
            }
        elif state == "cancelled":
            task["statusReason"] = {"text": spec["why"]}
            task["businessStatus"] = concept(CS_STATUS, "cancelled", "Cancelled")
        # A due date from acceptance on: a case rejected, received, or cancelled while
        # received (no expert yet) has none.
        never_accepted = state == "cancelled" and not spec.get("owned")
        if state not in ("requested", "rejected") and not never_accepted:
            task["restriction"] = {"period": {"start": start.isoformat(), "end": due.isoformat()}}
        started = ("case-retrieved", "under-review", "interim-report", "awaiting-information")
        if (
            business in started
            or business == "report-issued"
            or (state == "cancelled" and spec.get("started"))
        ):
            period = {"start": at(review_start, 9)}
            if task_output:
                period["end"] = at(business_days_after(start, spec.get("days", 6)), 16, 30)
            task["executionPeriod"] = period
        if task_output:
            task["output"] = [
                {"type": {"text": "Second opinion report"}, "valueReference": ref(task_output)}
            ]
        files["31-network-tasks.json"].append(task)

        if business == "awaiting-information":
            files["32-network-communications.json"].append(
                {
                    "resourceType": "Communication",
                    "id": f"comm-{base}-question",
                    "basedOn": [ref(key(sr))],
                    "partOf": [ref(key(task))],
                    "status": "completed",
                    "category": [
                        concept(CS_COMMUNICATION, "information-request", "Information request")
                    ],
                    "subject": ref(patient),
                    "about": [ref(key(task))],
                    "sent": at(business_days_after(start, 2), 11, 20),
                    "recipient": [ref(doctor)],
                    "sender": ref(f"PractitionerRole/{owner}"),
                    "payload": [{"contentString": scenario["question"]}],
                }
            )

    def build(self) -> dict[str, Resource]:
        self.organizations_and_locations()
        self.plans()
        self.practitioners_and_roles()
        self.members_and_coverages()
        self.cases()
        return {
            name: bundle("seed-network-" + name[3:-5].removeprefix("network-"), resources)
            for name, resources in self.files.items()
        }


def build() -> dict[str, str]:
    """File name → file text of the network, exactly as committed."""
    vocab = json.loads(VOCABULARY.read_text(encoding="utf-8"))
    return {name: render(doc) for name, doc in sorted(Network(vocab).build().items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    files = build()
    stale = [
        n
        for n, text in files.items()
        if not (OUT_DIR / n).is_file() or (OUT_DIR / n).read_text(encoding="utf-8") != text
    ]
    if args.check:
        for n in stale:
            print(f"differs: seed/data/{n}", file=sys.stderr)
        return 1 if stale else 0
    for n in stale:
        (OUT_DIR / n).write_text(files[n], encoding="utf-8")
        print(f"wrote seed/data/{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
