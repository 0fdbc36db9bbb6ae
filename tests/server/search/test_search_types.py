"""Each parameter type, modifier and prefix against the real embedded database (HTTP)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.server.search.conftest import ids

CASES = [
    # token
    ("Patient?identifier=urn:x|1", ["Patient/p1"]),
    ("Patient?identifier=1", ["Patient/p1", "Patient/p3"]),
    ("Patient?identifier=urn:x|", ["Patient/p1", "Patient/p2"]),
    ("Patient?gender=female", ["Patient/p1", "Patient/p3"]),
    ("Patient?gender:not=female", ["Patient/p2"]),
    ("Patient?gender=female,male", ["Patient/p1", "Patient/p2", "Patient/p3"]),
    ("Observation?code=http://loinc.org|718-7", ["Observation/o3"]),
    ("Observation?code:text=lab 718", ["Observation/o3"]),
    ("Observation?status=final&code=2345-7", ["Observation/o1", "Observation/o2"]),
    ("Patient?_tag=http://t|vip", ["Patient/p1"]),
    ("Patient?_tag:missing=true&gender=female", ["Patient/p3"]),
    # string
    ("Patient?name=oka", ["Patient/p1"]),
    ("Patient?name=MULLER", ["Patient/p2"]),
    ("Patient?family=c", []),  # "Zulu"/"Beta" must not match through two array elements
    ("Patient?given=jürgen", ["Patient/p2"]),
    ("Patient?name:exact=Okafor", ["Patient/p1"]),
    ("Patient?name:exact=okafor", []),
    ("Patient?name:contains=afo", ["Patient/p1"]),
    ("Patient?name=zzz,ada", ["Patient/p1"]),
    ("Patient?name=ada&name=okafor", ["Patient/p1"]),
    ("Patient?name=ada&name=zulu", []),
    # date
    ("Patient?birthdate=1971", ["Patient/p1"]),
    ("Patient?birthdate=1970-03", ["Patient/p2"]),
    ("Patient?birthdate=1985-06-01", []),
    ("Patient?birthdate=gt1971", ["Patient/p3"]),
    ("Patient?birthdate=ge1971", ["Patient/p1", "Patient/p3"]),
    ("Patient?birthdate=lt1971-04-12", ["Patient/p2"]),
    ("Patient?birthdate=le1971-04-12", ["Patient/p1", "Patient/p2"]),
    ("Patient?birthdate=ne1971", ["Patient/p2", "Patient/p3"]),
    ("Patient?birthdate=sa1970&birthdate=eb1980", ["Patient/p1"]),
    ("Observation?date=2020-01-01", ["Observation/o4"]),  # 2019-12-31T23:30-02:00 is UTC 2020
    ("Observation?date=2020-01-02T10:00:00Z", ["Observation/o1"]),
    ("Observation?date=2020-01-02T12:00+02:00", ["Observation/o1"]),
    ("Observation?date=ge2021&code=85354-9", ["Observation/bp1"]),
    ("Observation?date=2021-06-15", []),
    ("Observation?date=ge2020-01-02&date=lt2020-01-03", ["Observation/long1", "Observation/o1"]),
    (
        "Observation?date=gt2020-01-02T11:00Z&date=le2020-02-10",
        ["Observation/long1", "Observation/o2"],
    ),
    ("Observation?code=9999-9&date=ge2020-03-01&date=le2020-03-02", ["Observation/long1"]),
    ("Observation?code=9999-9&date=ge2021-03-01&date=le2021-03-02", []),
    ("Observation?date=ge2020-03-01&date=lt2020-01-01", []),
    ("Observation?date=ap2021-06", ["Observation/bp1", "Observation/o3"]),  # ±10% of the gap to now
    # number / quantity
    ("RiskAssessment?probability=0.3", ["RiskAssessment/ra1"]),
    ("RiskAssessment?probability=gt0.3", []),
    ("RiskAssessment?probability=ge0.3", ["RiskAssessment/ra1"]),
    ("Observation?value-quantity=5.4", ["Observation/o1"]),
    ("Observation?value-quantity=gt5", ["Observation/o1", "Observation/o2", "Observation/o3"]),
    (
        "Observation?value-quantity=lt6|http://unitsofmeasure.org|mmol/L",
        ["Observation/o1", "Observation/o4"],
    ),
    ("Observation?value-quantity=gt5||g/dL", ["Observation/o3"]),
    ("Observation?value-quantity=ap5", ["Observation/o1", "Observation/o4"]),
    # reference
    ("Observation?subject=Patient/p2", ["Observation/bp1", "Observation/o3"]),
    ("Observation?subject:Patient=p2", ["Observation/bp1", "Observation/o3"]),
    ("Observation?patient=p3", ["Observation/o4"]),
    ("Observation?subject=http://elsewhere/fhir/Patient/p3", ["Observation/o4"]),
    ("Patient?general-practitioner:missing=false", ["Patient/p1"]),
    ("Patient?general-practitioner:missing=true", ["Patient/p2", "Patient/p3"]),
    ("Observation?subject:missing=true", ["Observation/long1"]),
    ("Observation?subject:missing=true&code=9999-9", ["Observation/long1"]),
    ("Observation?date:missing=true", []),
    ("DiagnosticReport?result=Observation/o2", ["DiagnosticReport/r1"]),
    # uri
    ("ValueSet?url=http://consilium.health/fhir/ValueSet/covered", ["ValueSet/vs1"]),
    ("ValueSet?url:below=http://consilium.health/fhir/", ["ValueSet/vs1"]),
    ("ValueSet?url:above=http://consilium.health/fhir/ValueSet/covered/v2", ["ValueSet/vs1"]),
    ("ValueSet?url=http://consilium.health/fhir", []),
    ("Patient?_profile=http://p/one", ["Patient/p1"]),
    # composite
    ("Observation?component-code-value-quantity=8480-6$gt100", ["Observation/bp1"]),
    ("Observation?component-code-value-quantity=8462-4$gt100", []),
    # a value of each of a blood pressure's two components (fhirpathpy's `as` raised on two)
    ("Observation?component-value-quantity=gt110", ["Observation/bp1"]),
    ("Observation?component-value-quantity=lt90", ["Observation/bp1"]),
    ("Observation?component-value-quantity=gt130", []),
    ("Observation?code-value-quantity=http://loinc.org|2345-7$lt5", ["Observation/o4"]),
    # special
    ("Patient?_id=p1,p3", ["Patient/p1", "Patient/p3"]),
    ("Patient?_id:not=p1", ["Patient/p2", "Patient/p3"]),
    ("Patient?_lastUpdated=gt2000", ["Patient/p1", "Patient/p2", "Patient/p3"]),
    ("Patient?_lastUpdated=lt2000", []),
]


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_search(data_client: TestClient, url: str, expected: list[str]) -> None:
    r = data_client.get(f"/fhir/{url}")
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "searchset"
    assert sorted(ids(bundle)) == sorted(expected)
    assert bundle["total"] == len(expected)
