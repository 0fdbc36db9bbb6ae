"""number and quantity search on exact decimals (search.html#number, #quantity) over HTTP.

The stored values are sent as raw JSON text, so each one reaches the server with the digits a
float could not hold (66.899999999999991, 30-digit integers). ``eq`` uses the implicit precision
range of the search value: ``100.00`` is [99.995, 100.005).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from server.app import create_app
from tests.server.search.conftest import ids

FHIR_JSON = {"Content-Type": "application/fhir+json"}
UCUM = "http://unitsofmeasure.org"

# id -> (LOINC code, literal value text, UCUM unit)
QUANTITIES = {
    "q100": ("2345-7", "100.00", "mg"),
    "q99995": ("2345-7", "99.995", "mg"),
    "q100004": ("2345-7", "100.004", "mg"),
    "q100005": ("2345-7", "100.005", "mg"),
    "q99994": ("2345-7", "99.994", "mg"),
    "h1": ("8302-2", "66.899999999999991", "[in_i]"),
    "h2": ("8302-2", "66.89999999999999", "[in_i]"),
    "big1": ("9999-1", "123456789012345678901234567890", "1"),
    "big2": ("9999-1", "123456789012345678901234567889", "1"),
    "neg": ("9999-2", "-0.5", "1"),
    "zero": ("9999-2", "0.0000", "1"),
}
# id -> literal RiskAssessment.prediction.probabilityDecimal
PROBABILITIES = {"ra1": "0.50", "ra2": "0.5000001", "ra3": "1E-7"}


def _observation(oid: str, code: str, value: str, unit: str) -> str:
    return (
        '{"resourceType":"Observation","id":"' + oid + '","status":"final",'
        '"code":{"coding":[{"system":"http://loinc.org","code":"' + code + '"}]},'
        '"valueQuantity":{"value":' + value + ',"unit":"' + unit + '","system":"' + UCUM + '",'
        '"code":"' + unit + '"}}'
    )


def _risk(rid: str, value: str) -> str:
    return (
        '{"resourceType":"RiskAssessment","id":"' + rid + '","status":"final",'
        '"subject":{"display":"someone"},"prediction":[{"probabilityDecimal":' + value + "}]}"
    )


@pytest.fixture(scope="module")
def decimal_client(mongo_uri: str, module_settings: Any) -> Iterator[TestClient]:
    settings = module_settings("decimals")
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as c:
        for oid, (code, value, unit) in QUANTITIES.items():
            r = c.put(
                f"/fhir/Observation/{oid}",
                content=_observation(oid, code, value, unit),
                headers=FHIR_JSON,
            )
            assert r.status_code == 201, r.text
        for rid, value in PROBABILITIES.items():
            r = c.put(f"/fhir/RiskAssessment/{rid}", content=_risk(rid, value), headers=FHIR_JSON)
            assert r.status_code == 201, r.text
        yield c
    app.state.consilium.store.close()
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(settings.db_name)
    cleanup.close()


CASES = [
    # eq: the implicit range of the search value's own precision
    ("value-quantity=100.00", ["q100", "q99995", "q100004"]),
    ("value-quantity=100", ["q100", "q99995", "q100004", "q100005", "q99994"]),
    ("value-quantity=100.005", ["q100005"]),
    ("value-quantity=1.0000e2", ["q100", "q99995", "q100004"]),  # same precision as 100.00
    ("value-quantity=66.899999999999991", ["h1"]),
    ("value-quantity=66.89999999999999", ["h1", "h2"]),  # [..985, ..995) holds ..991 too
    ("value-quantity=123456789012345678901234567890", ["big1"]),
    ("value-quantity=-0.5", ["neg"]),
    ("value-quantity=0.0000", ["zero"]),
    ("value-quantity=0", ["neg", "zero"]),  # [-0.5, 0.5)
    # comparisons on the exact value
    ("value-quantity=gt123456789012345678901234567889", ["big1"]),
    ("value-quantity=ge123456789012345678901234567889", ["big1", "big2"]),
    ("value-quantity=lt123456789012345678901234567890&code=9999-1", ["big2"]),
    (
        "value-quantity=gt66.89999999999999",
        ["h1", "q100", "q99995", "q100004", "q100005", "q99994", "big1", "big2"],
    ),
    ("value-quantity=gt66.89999999999999&code=8302-2", ["h1"]),
    ("value-quantity=le66.89999999999999&code=8302-2", ["h2"]),
    ("value-quantity=lt0", ["neg"]),
    ("value-quantity=le-0.5", ["neg"]),
    ("value-quantity=ge0&code=9999-2", ["zero"]),
    ("value-quantity=sa100.00", ["q100004", "q100005", "big1", "big2"]),
    ("value-quantity=eb100.00&code=2345-7", ["q99995", "q99994"]),
    ("value-quantity=ne100.00&code=2345-7", ["q100005", "q99994"]),
    ("value-quantity=ap100", ["q100", "q99995", "q100004", "q100005", "q99994"]),
    ("value-quantity=ap66.9", ["h1", "h2"]),
    # with units: the same exact ranges on the unit-qualified keys
    ("value-quantity=100.00|http://unitsofmeasure.org|mg", ["q100", "q99995", "q100004"]),
    ("value-quantity=100.00||mg", ["q100", "q99995", "q100004"]),
    ("value-quantity=66.899999999999991|http://unitsofmeasure.org|[in_i]", ["h1"]),
    ("value-quantity=100.00|http://unitsofmeasure.org|g", []),
    # composite: token + quantity
    ("code-value-quantity=http://loinc.org|8302-2$66.899999999999991", ["h1"]),
    ("code-value-quantity=http://loinc.org|2345-7$100.00", ["q100", "q99995", "q100004"]),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_quantity_search_on_exact_values(
    decimal_client: TestClient, query: str, expected: list[str]
) -> None:
    r = decimal_client.get(f"/fhir/Observation?{query}")
    assert r.status_code == 200, r.text
    assert sorted(ids(r.json())) == sorted(f"Observation/{i}" for i in expected)


NUMBER_CASES = [
    ("probability=0.50", ["ra1", "ra2"]),  # [0.495, 0.505)
    ("probability=0.5000001", ["ra2"]),
    ("probability=0.0000001", ["ra3"]),  # stored as 1E-7
    ("probability=gt0.5", ["ra2"]),
    ("probability=le0.50", ["ra1", "ra3"]),
    ("probability=lt0.0000002", ["ra3"]),
]


@pytest.mark.parametrize(("query", "expected"), NUMBER_CASES)
def test_number_search_on_exact_values(
    decimal_client: TestClient, query: str, expected: list[str]
) -> None:
    r = decimal_client.get(f"/fhir/RiskAssessment?{query}")
    assert r.status_code == 200, r.text
    assert sorted(ids(r.json())) == sorted(f"RiskAssessment/{i}" for i in expected)


def test_sort_by_quantity_follows_exact_numeric_order(decimal_client: TestClient) -> None:
    """Values no double can tell apart (the two 30-digit integers) still sort in order."""
    r = decimal_client.get("/fhir/Observation?_sort=value-quantity&_count=50")
    assert ids(r.json()) == [
        f"Observation/{i}"
        for i in (
            "neg",
            "zero",
            "h2",
            "h1",
            "q99994",
            "q99995",
            "q100",
            "q100004",
            "q100005",
            "big2",
            "big1",
        )
    ]


@pytest.mark.parametrize("value", ["1e999999999", "abc", "1e2e3", "1" * 101])
def test_an_unsearchable_number_is_a_400_when_strict(
    decimal_client: TestClient, value: str
) -> None:
    r = decimal_client.get(
        f"/fhir/Observation?value-quantity={value}", headers={"Prefer": "handling=strict"}
    )
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
