"""Table-driven structural validation (pure: no database)."""

from __future__ import annotations

from typing import Any

import pytest

from resources.validation import ResourceInvalid, validate_resource

VALID: list[dict[str, Any]] = [
    {"resourceType": "Patient", "birthDate": "1970", "gender": "unknown"},
    {
        "resourceType": "Patient",
        "_birthDate": {"extension": [{"url": "http://x", "valueString": "a"}]},
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "valueQuantity": {"value": 13.2, "unit": "g/dL"},
        "effectiveDateTime": "2026-03-01T10:00:00+01:00",
    },
    {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": "Patient/1"},
        "payor": [{"reference": "Organization/x"}],
    },
    {"resourceType": "SubstancePolymer", "modification": ["cross-linked"]},
]

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"resourceType": "Patient", "gender": "xx"}, "Patient.gender"),
    ({"resourceType": "Patient", "active": "true"}, "Patient.active"),
    ({"resourceType": "Patient", "multipleBirthInteger": "2"}, "Patient.multipleBirthInteger"),
    ({"resourceType": "Patient", "name": [{"family": 5}]}, "Patient.name[0].family"),
    ({"resourceType": "Patient", "id": "bad id"}, "Patient.id"),
    ({"resourceType": "Patient", "contact": [{}]}, "Patient.contact[0]"),
    ({"resourceType": "Observation", "status": "final"}, "Observation.code"),
    (
        {
            "resourceType": "Coverage",
            "status": "active",
            "payor": [{"reference": "Organization/x"}],
        },
        "Coverage.beneficiary",
    ),
    ({"resourceType": "SubstancePolymer", "bogus": 1}, "SubstancePolymer.bogus"),
]


@pytest.mark.parametrize("resource", VALID)
def test_valid_resources_pass(resource: dict[str, Any]) -> None:
    validate_resource(resource, resource["resourceType"])


@pytest.mark.parametrize(("resource", "expression"), INVALID)
def test_invalid_resources_name_the_element(resource: dict[str, Any], expression: str) -> None:
    with pytest.raises(ResourceInvalid) as exc:
        validate_resource(resource, resource["resourceType"])
    assert expression in [e for _, e in exc.value.issues]


def test_type_mismatch() -> None:
    with pytest.raises(ResourceInvalid):
        validate_resource({"resourceType": "Patient"}, "Observation")


def test_unknown_type() -> None:
    with pytest.raises(ResourceInvalid):
        validate_resource({"resourceType": "Spaceship"}, "Spaceship")
