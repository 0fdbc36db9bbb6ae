"""Observation's ``combo-*`` parameters share keys with ``X`` and ``component-X`` instead of
writing them again (``server.search.index.key_layout``): the layout against the registry's own
expressions, the keys a write stores, how each field drives, and the searches over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.ingest import patient_file
from server.search.index import extract_index, key_layout, search_keys
from server.search.keys import KSEP, drive, key
from tests.server.search.conftest import DATASET, ids

LAYOUT = key_layout("Observation")


def _observations() -> list[dict[str, Any]]:
    """The search dataset's Observations (with and without components) and a bench file's."""
    generated = [e["resource"] for e in patient_file(60, 1)["entry"]]
    return [r for r in [*DATASET, *generated] if r["resourceType"] == "Observation"]


def test_the_layout_covers_every_combo_parameter_of_observation() -> None:
    assert set(LAYOUT.unions) == {"combo-code", "combo-data-absent-reason", "combo-value-concept"}
    assert LAYOUT.shared["value-quantity"] == "combo-value-quantity"
    assert LAYOUT.shared["component-value-quantity@u"] == "combo-value-quantity@u"
    assert LAYOUT.shared["code-value-quantity"] == "combo-code-value-quantity"
    assert not (set(LAYOUT.unions) | set(LAYOUT.shared)) & LAYOUT.stored


@pytest.mark.parametrize(
    "resource", _observations(), ids=lambda r: r.get("id", r["code"]["coding"][0]["code"])
)
def test_a_union_fields_values_are_its_parts_values(resource: dict[str, Any]) -> None:
    idx = extract_index("Observation", resource)
    for combo, parts in LAYOUT.unions.items():
        union = {v for part in parts for v in idx.get(part, [])}
        assert set(idx.get(combo, [])) == union, combo


@pytest.mark.parametrize(
    "resource", _observations(), ids=lambda r: r.get("id", r["code"]["coding"][0]["code"])
)
def test_a_shared_fields_values_are_among_the_keys_it_scans(resource: dict[str, Any]) -> None:
    idx = extract_index("Observation", resource)
    for f, target in LAYOUT.shared.items():
        assert set(idx.get(f, [])) <= set(idx.get(target, [])), f


def test_a_lab_observation_stores_each_value_once() -> None:
    obs = next(r for r in DATASET if r.get("id") == "o1")
    ks = search_keys("Observation", extract_index("Observation", obs))
    fields = {k.partition(KSEP)[0] for k in ks}
    assert {"code", "combo-value-quantity", "combo-code-value-quantity"} <= fields
    assert not fields & {"combo-code", "value-quantity", "code-value-quantity"}
    assert len(ks) == len(set(ks))


def test_a_combo_token_drives_on_both_parts_exactly() -> None:
    driven, checks = drive(
        LAYOUT, [{"idx.combo-code": "http://loinc.org|1", "idx.status": "final"}]
    )
    assert checks == []
    assert driven == [
        {
            "idx.status": "final",
            "ks": {
                "$in": [
                    key("code", "http://loinc.org|1"),
                    key("component-code", "http://loinc.org|1"),
                ]
            },
        }
    ]


def test_a_combo_token_list_is_one_in_over_both_parts() -> None:
    driven, checks = drive(LAYOUT, [{"idx.combo-code": {"$in": ["a", "b"]}}])
    assert checks == []
    assert driven == [
        {
            "ks": {
                "$in": [
                    key("code", "a"),
                    key("code", "b"),
                    key("component-code", "a"),
                    key("component-code", "b"),
                ]
            }
        }
    ]


def test_a_shared_field_scans_the_combo_keys_and_rechecks_its_own_condition() -> None:
    cond = {"$gt": "2500000005"}
    driven, checks = drive(LAYOUT, [{"idx.value-quantity": cond, "idx.status": "final"}])
    assert checks == [{"idx.value-quantity": cond}]
    assert driven == [
        {
            "idx.status": "final",
            "ks": {
                "$gte": key("combo-value-quantity", "2500000005") + "\x00",
                "$lt": "combo-value-quantity" + "\x1f",
            },
        }
    ]


def test_a_combo_token_without_equalities_does_not_drive() -> None:
    flt = {"idx.combo-code": {"$exists": True}}
    assert drive(LAYOUT, [flt]) == ([flt], [])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("Observation?combo-code=8480-6", ["Observation/bp1"]),  # a component's code only
        ("Observation?combo-code=http://loinc.org|85354-9", ["Observation/bp1"]),
        (
            "Observation?combo-code=http://loinc.org|2345-7",
            ["Observation/o1", "Observation/o2", "Observation/o4"],
        ),
        ("Observation?combo-code=718-7,8462-4", ["Observation/bp1", "Observation/o3"]),
        ("Observation?code=8480-6", []),  # a component's code is not the Observation's
        ("Observation?combo-code=8480-6&status=final", ["Observation/bp1"]),
        ("Observation?combo-value-quantity=gt100", ["Observation/bp1"]),
        ("Observation?combo-value-quantity=gt10", ["Observation/bp1", "Observation/o3"]),
        # the combo keys hold bp1's component values: the Observation's own value decides
        ("Observation?value-quantity=gt100", []),
        ("Observation?value-quantity=gt10", ["Observation/o3"]),
        ("Observation?value-quantity=13|http://unitsofmeasure.org|g/dL", ["Observation/o3"]),
        ("Observation?component-value-quantity=gt10", ["Observation/bp1"]),
        ("Observation?component-value-quantity=13", []),
        ("Observation?code-value-quantity=http://loinc.org|8480-6$gt100", []),
        (
            "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100",
            ["Observation/bp1"],
        ),
        ("Observation?combo-code-value-quantity=8480-6$gt100", ["Observation/bp1"]),
        ("Observation?combo-code-value-quantity=2345-7$gt7", ["Observation/o2"]),
        ("Observation?code-value-quantity=2345-7$lt5", ["Observation/o4"]),
        ("Observation?combo-code:missing=true", []),
        (
            "Observation?combo-code:not=2345-7&status=final",
            ["Observation/bp1", "Observation/long1"],
        ),
    ],
)
def test_search(data_client: TestClient, url: str, expected: list[str]) -> None:
    r = data_client.get(f"/fhir/{url}")
    assert r.status_code == 200, r.text
    assert sorted(ids(r.json())) == expected


def test_a_count_of_a_shared_field_counts_exact_matches(data_client: TestClient) -> None:
    """The combo keys hold bp1's component values too: a count must not count them."""
    r = data_client.get("/fhir/Observation?value-quantity=gt10&_summary=count")
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1
    r = data_client.get("/fhir/Observation?value-quantity=gt10&_total=accurate&_count=1")
    assert r.json()["total"] == 1
