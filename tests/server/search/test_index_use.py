"""Every standard single-parameter search and the common combinations use an index.

The app's MongoClient gets a pymongo ``CommandListener``; every ``find`` the search engine sends
to a resource collection is replayed through ``explain`` and must not contain a COLLSCAN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from resources.registry import search_params_for
from server.search.index import indexed_fields
from server.search.types.composite import component_types
from tests.server.search.conftest import DATASET, load
from tests.server.search.plans import Recorder, assert_index_scans, recording_app

SAMPLE = {
    "token": "http://loinc.org|2345-7",
    "string": "oka",
    "date": "ge2020-01",
    "reference": "Patient/p1",
    "quantity": "gt5|http://unitsofmeasure.org|mmol/L",
    "number": "0.3",
    "uri": "http://consilium.health/fhir/x",
    "composite": "http://loinc.org|2345-7$gt5",
}
TYPES = ("Patient", "Observation", "Condition", "DiagnosticReport", "Coverage", "ServiceRequest")


@pytest.fixture(scope="module")
def recorded(
    mongo_uri: str, module_settings: Any
) -> Iterator[tuple[TestClient, Recorder, MongoClient[dict[str, Any]]]]:
    settings = module_settings("ixuse")
    app, recorder = recording_app(settings)
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    with TestClient(app) as client:
        load(client, DATASET)
        yield client, recorder, mongo
    app.state.consilium.store.close()
    mongo.drop_database(settings.db_name)
    mongo.close()


def _assert_index_scans(
    client: TestClient, recorder: Recorder, mongo: MongoClient[dict[str, Any]], url: str
) -> None:
    recorder.finds.clear()
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert not any(e["search"]["mode"] == "outcome" for e in r.json().get("entry", [])), (
        url,
        r.json()["entry"][-1],
    )
    assert_index_scans(mongo, recorder, url, require_ixscan=True)


def _single_parameter_urls() -> list[str]:
    urls = []
    for rtype in TYPES:
        params = search_params_for(rtype)
        fields = set(indexed_fields(rtype))
        for code, p in params.items():
            if p.type not in SAMPLE or not p.expression:
                continue
            if code == "_id":
                urls.append(f"/fhir/{rtype}?_id=p1")
                continue
            if not any(f == code or f.startswith(code + "@") for f in fields):
                continue
            value = SAMPLE[p.type]
            if p.type == "composite":
                second = component_types(p)[1]
                tail = {"quantity": "gt5", "date": "ge2020", "string": "ab"}.get(second, "x|y")
                value = f"http://loinc.org|2345-7${tail}"
            if p.type == "date":
                for v in ("2020", "gt2020", "le2020-03-01"):
                    urls.append(f"/fhir/{rtype}?{code}={v}")
            else:
                urls.append(f"/fhir/{rtype}?{code}={value}")
    return urls


def test_every_indexed_single_parameter_search_uses_an_index(
    recorded: tuple[TestClient, Recorder, MongoClient[dict[str, Any]]],
) -> None:
    client, recorder, mongo = recorded
    urls = _single_parameter_urls()
    assert len(urls) > 150
    for url in urls:
        _assert_index_scans(client, recorder, mongo, url)


@pytest.mark.parametrize(
    "url",
    [
        "/fhir/Observation?patient=p1&status=final",
        "/fhir/Observation?subject=Patient/p1&status=final,amended",
        "/fhir/Observation?code=http://loinc.org|2345-7&date=ge2020-01-01",
        "/fhir/Observation?code=2345-7&date=2020-01",
        "/fhir/Observation?code=2345-7&date=lt2021",
        "/fhir/Observation?patient=p1&code=2345-7",
        "/fhir/Patient?identifier=urn:x|1",
        "/fhir/Patient?name=oka&_sort=-birthdate",
        "/fhir/Patient/p1/Observation",
        "/fhir/Observation?subject:Patient.identifier=urn:x|1",
        "/fhir/Patient?_has:Observation:patient:code=718-7",
        "/fhir/Observation?code=2345-7&_include=Observation:subject",
        "/fhir/Patient?_id=p1&_revinclude=Observation:subject",
        "/fhir/Condition?patient=p1&clinical-status=active",
        "/fhir/Patient?family:exact=Okafor",
        "/fhir/Observation?code=2345-7&date=ge2020-01-01&date=lt2020-01-08",
        "/fhir/Observation?date=gt2020-01-01&date=le2020-01-03",
        "/fhir/Patient?name=oka,mul&_sort=-birthdate",
        "/fhir/Observation?value-quantity=lt5,gt7&patient=p1",
        "/fhir/Patient?family=oka&birthdate=1971&gender=female",
        "/fhir/Patient?birthdate:missing=true",
        "/fhir/Observation?subject:missing=true",
        "/fhir/Patient?_id=p1&_revinclude=*",
        "/fhir/Observation?date=ap2020-01-02",
        "/fhir/Observation?date=ap2025-11-20",
    ],
)
def test_common_combinations_use_an_index(
    recorded: tuple[TestClient, Recorder, MongoClient[dict[str, Any]]], url: str
) -> None:
    _assert_index_scans(*recorded, url)
