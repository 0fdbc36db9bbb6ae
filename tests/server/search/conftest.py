"""A read-only search dataset, loaded once per test module over HTTP (PUT with fixed ids)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from server.app import create_app

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


def _obs(
    oid: str, patient: str, code: str, value: float, unit: str, when: str, status: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
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
        "code": {
            "coding": [{"system": LOINC, "code": code, "display": f"Test {code}"}],
            "text": f"lab {code}",
        },
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


DATASET: list[dict[str, Any]] = [
    {"resourceType": "Organization", "id": "org1", "name": "Acme Clinic"},
    {
        "resourceType": "Practitioner",
        "id": "pr1",
        "name": [{"family": "House", "given": ["Gregory"]}],
    },
    {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:x", "value": "1"}],
        "name": [{"family": "Okafor", "given": ["Adaeze"]}],
        "gender": "female",
        "birthDate": "1971-04-12",
        "generalPractitioner": [{"reference": "Practitioner/pr1"}],
        "managingOrganization": {"reference": "Organization/org1"},
        "meta": {"tag": [{"system": "http://t", "code": "vip"}], "profile": ["http://p/one"]},
    },
    {
        "resourceType": "Patient",
        "id": "p2",
        "identifier": [{"system": "urn:x", "value": "2"}],
        "name": [{"family": "Müller", "given": ["Jürgen"]}],
        "gender": "male",
        "birthDate": "1970-03-15",
        "managingOrganization": {"reference": "Organization/org1"},
    },
    {
        "resourceType": "Patient",
        "id": "p3",
        "identifier": [{"system": "urn:y", "value": "1"}],
        "name": [{"family": "Zulu", "given": ["Beta"]}],
        "gender": "female",
        "birthDate": "1985",
    },
    _obs("o1", "p1", "2345-7", 5.4, "mmol/L", "2020-01-02T10:00:00Z", "final"),
    _obs("o2", "p1", "2345-7", 7.1, "mmol/L", "2020-02-10", "final"),
    _obs("o3", "p2", "718-7", 13, "g/dL", "2021-06", "amended"),
    _obs("o4", "p3", "2345-7", 4.8, "mmol/L", "2019-12-31T23:30:00-02:00", "preliminary"),
    {
        "resourceType": "Observation",
        "id": "bp1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": "Patient/p2"},
        "effectiveDateTime": "2021-01-01",
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
            },
        ],
    },
    {
        "resourceType": "Observation",
        "id": "long1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "9999-9"}]},
        "effectivePeriod": {"start": "2019-06-01", "end": "2020-06-01"},
    },
    {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": SCT, "code": "254637007", "display": "Lung cancer"}]},
        "onsetDateTime": "2019",
    },
    {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "11488-4"}]},
        "subject": {"reference": "Patient/p1"},
        "result": [{"reference": "Observation/o1"}, {"reference": "Observation/o2"}],
    },
    {
        "resourceType": "RiskAssessment",
        "id": "ra1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "prediction": [{"probabilityDecimal": 0.3}],
    },
    {
        "resourceType": "ValueSet",
        "id": "vs1",
        "status": "active",
        "url": "http://consilium.health/fhir/ValueSet/covered",
    },
    {
        "resourceType": "Provenance",
        "id": "prov1",
        "target": [{"reference": "Observation/o1"}],
        "recorded": "2020-01-02T10:05:00Z",
        "agent": [{"who": {"reference": "Practitioner/pr1"}}],
    },
]


def load(client: TestClient, resources: list[dict[str, Any]]) -> None:
    for res in resources:
        r = client.put(f"/fhir/{res['resourceType']}/{res['id']}", json=res)
        assert r.status_code in (200, 201), r.text


@pytest.fixture(scope="module")
def data_client(mongo_uri: str, module_settings: Any) -> Iterator[TestClient]:
    """One app + database for a whole module of read-only searches over ``DATASET``."""
    settings = module_settings("search")
    name = settings.db_name
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as c:
        load(c, DATASET)
        yield c
    app.state.consilium.store.close()
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(name)
    cleanup.close()


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == mode
    ]
