"""Realistic second-opinion clinical data for search benchmarks (deterministic per seed).

Per patient: a Patient, a Coverage, 1-3 Conditions, 5-12 laboratory Observations, a
DiagnosticReport over some of them and a ServiceRequest (the second-opinion request) — about
14.5 resources. ``document`` turns a resource into its stored documents with the server's own builder
(``server.storage.build_documents``) and index extraction, for bulk loading.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from auth.acl import compute_acl
from server.search.index import extract_index
from server.storage import Documents, build_documents
from server.timeutil import fhir_instant

CLINICS = 20
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
MRN = "urn:oid:2.16.840.1.113883.3.9999.1"
LABS = [
    ("2345-7", "Glucose", "mmol/L", 4.0, 9.0),
    ("718-7", "Hemoglobin", "g/dL", 10.0, 17.0),
    ("2160-0", "Creatinine", "mg/dL", 0.5, 2.5),
    ("6690-2", "Leukocytes", "10*3/uL", 3.0, 12.0),
    ("777-3", "Platelets", "10*3/uL", 140.0, 450.0),
    ("2951-2", "Sodium", "mmol/L", 133.0, 147.0),
    ("2823-3", "Potassium", "mmol/L", 3.3, 5.3),
    ("1742-6", "ALT", "U/L", 7.0, 60.0),
    ("2093-3", "Cholesterol", "mg/dL", 120.0, 280.0),
    ("4548-4", "HbA1c", "%", 4.5, 11.0),
]
CONDITIONS = [
    ("363346000", "Malignant neoplastic disease"),
    ("22298006", "Myocardial infarction"),
    ("24700007", "Multiple sclerosis"),
    ("49049000", "Parkinson's disease"),
    ("26929004", "Alzheimer's disease"),
    ("90688005", "Chronic kidney disease"),
    ("230690007", "Stroke"),
    ("86249004", "Motor neuron disease"),
]
FAMILIES = [
    "Okafor",
    "Smith",
    "Nguyen",
    "Garcia",
    "Müller",
    "Rossi",
    "Kowalski",
    "Patel",
    "Tanaka",
    "Dubois",
    "Silva",
    "Cohen",
]
GIVEN = [
    "Ada",
    "Ben",
    "Chloé",
    "David",
    "Eve",
    "Femi",
    "Grace",
    "Hiro",
    "Ines",
    "Jon",
    "Kemi",
    "Liam",
    "Maya",
    "Noor",
    "Omar",
    "Priya",
]
CITIES = ["Toronto", "Ottawa", "London", "Leeds", "Mumbai", "Pune", "Lagos", "Lyon"]
START = datetime(2018, 1, 1, tzinfo=UTC)


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def patient_bundle(i: int, rnd: random.Random) -> list[dict[str, Any]]:
    pid = f"pat-{i}"
    ref = {"reference": f"Patient/{pid}"}
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": MRN, "value": f"MRN{i:08d}"}],
            "name": [{"family": rnd.choice(FAMILIES) + str(i % 97), "given": [rnd.choice(GIVEN)]}],
            "gender": rnd.choice(["female", "male"]),
            "birthDate": f"{rnd.randint(1940, 2008)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
            "address": [{"city": rnd.choice(CITIES), "country": "CA"}],
            "managingOrganization": {"reference": f"Organization/{clinic_of(i)}"},
        },
        {
            "resourceType": "Coverage",
            "id": f"cov-{i}",
            "status": rnd.choice(["active"] * 9 + ["cancelled"]),
            "beneficiary": ref,
            "payor": [{"reference": f"Organization/ins-{i % 5}"}],
            "identifier": [
                {
                    "type": _cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MB", "Member"),
                    "value": f"CERT{i:08d}",
                }
            ],
            "class": [
                {
                    "type": _cc(
                        "http://terminology.hl7.org/CodeSystem/coverage-class", "group", "Group"
                    ),
                    "value": f"GRP{i % 40:03d}",
                }
            ],
        },
    ]
    conditions = []
    for k in range(rnd.randint(1, 3)):
        code, display = rnd.choice(CONDITIONS)
        conditions.append(f"cond-{i}-{k}")
        out.append(
            {
                "resourceType": "Condition",
                "id": f"cond-{i}-{k}",
                "clinicalStatus": _cc(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    rnd.choice(["active", "active", "resolved"]),
                    "status",
                ),
                "code": _cc(SCT, code, display),
                "subject": ref,
                "onsetDateTime": (START - timedelta(days=rnd.randint(0, 3000))).date().isoformat(),
            }
        )
    observations = []
    for k in range(rnd.randint(5, 12)):
        code, display, unit, lo, hi = rnd.choice(LABS)
        when = START + timedelta(minutes=rnd.randint(0, 8 * 365 * 24 * 60))
        observations.append(f"obs-{i}-{k}")
        out.append(
            {
                "resourceType": "Observation",
                "id": f"obs-{i}-{k}",
                "status": rnd.choice(["final"] * 8 + ["amended", "preliminary"]),
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "laboratory",
                            }
                        ]
                    }
                ],
                "code": _cc(LOINC, code, display),
                "subject": ref,
                "effectiveDateTime": fhir_instant(when),
                "valueQuantity": {
                    "value": round(rnd.uniform(lo, hi), 1),
                    "unit": unit,
                    "system": UCUM,
                    "code": unit,
                },
            }
        )
    out.append(
        {
            "resourceType": "DiagnosticReport",
            "id": f"rep-{i}",
            "status": "final",
            "code": _cc(LOINC, "11488-4", "Consult note"),
            "subject": ref,
            "effectiveDateTime": fhir_instant(START + timedelta(days=rnd.randint(0, 2900))),
            "result": [{"reference": f"Observation/{o}"} for o in observations[:3]],
        }
    )
    out.append(
        {
            "resourceType": "ServiceRequest",
            "id": f"sr-{i}",
            "status": rnd.choice(["active", "completed", "draft"]),
            "intent": "order",
            "code": _cc(SCT, "11429006", "Consultation"),
            "subject": ref,
            "reasonReference": [{"reference": f"Condition/{conditions[0]}"}],
            "insurance": [{"reference": f"Coverage/cov-{i}"}],
            "authoredOn": fhir_instant(START + timedelta(days=rnd.randint(0, 2900))),
        }
    )
    return out


def clinic_of(i: int) -> str:
    """The treating clinic of patient ``i`` (what a clinic's token is bound to)."""
    return f"clinic-{i % CLINICS}"


def resources(total: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """About ``total`` resources (whole patients), plus the payor and clinic Organizations."""
    rnd = random.Random(seed)
    for k in range(5):
        yield {"resourceType": "Organization", "id": f"ins-{k}", "name": f"Insurer {k}"}
    for k in range(CLINICS):
        yield {"resourceType": "Organization", "id": f"clinic-{k}", "name": f"Clinic {k}"}
    n = 5 + CLINICS
    i = 0
    while n < total:
        for r in patient_bundle(i, rnd):
            yield r
            n += 1
        i += 1


_patient_orgs: dict[str, set[str]] = {}


def _orgs_of(patients: set[str]) -> dict[str, set[str]]:
    return {p: _patient_orgs[p] for p in patients if p in _patient_orgs}


def document(resource: dict[str, Any], ts: datetime) -> Documents:
    """The stored documents of a first version, built by the server's own ``build_documents``.

    ``acl`` is computed as the server computes it for a write by an unbound client; it needs the
    patient's document first, which ``resources`` yields before the patient's other resources.
    """
    body = dict(resource)
    body["meta"] = {"versionId": "1", "lastUpdated": fhir_instant(ts)}
    rtype, rid = body["resourceType"], body["id"]
    acl = compute_acl(rtype, rid, body, None, None, _orgs_of)
    if rtype == "Patient":
        _patient_orgs[rid] = set(acl.get("orgs", []))
    return build_documents(
        rtype, rid, 1, ts, body, interaction="create", idx=extract_index(rtype, body), acl=acl
    )
