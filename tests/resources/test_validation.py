"""Table-driven structural validation (pure: no database)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from resources.validation import R4B_NESTED_LIMIT, ResourceInvalid, validate_resource

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


# The R4B model layer: which resources it checks is part of the result (``Checked``).
EXTENSION_META = {
    "resourceType": "Patient",
    "extension": [{"url": "http://example.org/x", "valueMeta": {"versionId": "1"}}],
}


def test_r4_extension_value_meta_is_accepted_and_skips_the_r4b_model() -> None:
    checked = validate_resource(EXTENSION_META, "Patient")
    assert checked.r4b == ()
    assert checked.r4b_skipped == (
        (
            "Patient",
            "Patient.extension[0].valueMeta",
            "R4B has no Extension.valueMeta as R4 does",
        ),
    )


def test_resource_using_no_r4b_difference_goes_through_the_r4b_model() -> None:
    checked = validate_resource(VALID[2], "Observation")
    assert checked.r4b == ("Observation",)
    assert checked.r4b_skipped == ()


def test_r4_evidence_variable_without_r4_only_elements_goes_through_the_r4b_model() -> None:
    body = {
        "resourceType": "EvidenceVariable",
        "status": "active",
        "characteristic": [{"definitionCodeableConcept": {"text": "adults"}}],
    }
    assert validate_resource(body, "EvidenceVariable").r4b == ("EvidenceVariable",)


def test_type_r4b_dropped_is_accepted_without_the_model() -> None:
    checked = validate_resource(VALID[4], "SubstancePolymer")
    assert checked.r4b == ()
    assert checked.r4b_skipped[0][2] == "R4B has no SubstancePolymer as R4 defines it"


def test_nested_resources_are_checked_by_their_own_model_or_skipped_alone() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": VALID[2] | {"contained": [EXTENSION_META]}},
            {"resource": VALID[4]},
            {"resource": VALID[0]},
        ],
    }
    checked = validate_resource(bundle, "Bundle")
    assert checked.r4b == ("Bundle", "Bundle.entry[0].resource", "Bundle.entry[2].resource")
    assert [s[0] for s in checked.r4b_skipped] == [
        "Bundle.entry[0].resource.contained[0]",
        "Bundle.entry[1].resource",
    ]


@pytest.mark.parametrize(
    ("resource", "element"),
    [
        ({"resourceType": "Patient", "language": "en\u00a0\u00a0GB"}, "Patient.language"),
        ({"resourceType": "Patient", "name": [{"text": "\u00a0"}]}, "Patient.name[0].text"),
        (
            {"resourceType": "Patient", "photo": [{"data": "a==="}]},
            "Patient.photo[0].data",
        ),
    ],
    ids=["code-nbsp", "string-only-nbsp", "base64-undecodable"],
)
def test_r4_primitive_values_r4b_refuses_skip_the_model(
    resource: dict[str, Any], element: str
) -> None:
    checked = validate_resource(resource, "Patient")
    assert checked.r4b == ()
    assert checked.r4b_skipped[0][1] == element


def test_decimals_pass_the_r4b_model_and_stay_unchanged() -> None:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": Decimal("1.50")},
    }
    checked = validate_resource(body, "Observation")
    assert checked.r4b == ("Observation",)
    value = body["valueQuantity"]["value"]  # type: ignore[index]
    assert type(value) is Decimal and str(value) == "1.50"


def test_large_bundle_gets_the_r4b_model_for_the_bundle_and_the_r4_walk_for_its_entries() -> None:
    entries = [{"resource": {"resourceType": "Patient", "id": f"p{i}"}} for i in range(501)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    checked = validate_resource(bundle, "Bundle")
    assert checked.r4b == ("Bundle",)
    assert len(checked.r4b_skipped) == 501
    assert checked.r4b_skipped[0] == (
        "Bundle.entry[0].resource",
        "Bundle.entry[0].resource",
        f"more than {R4B_NESTED_LIMIT} nested resources: the R4 walk alone, for speed",
    )


def test_bundle_at_the_limit_gets_the_r4b_model_for_every_entry() -> None:
    entries = [{"resource": {"resourceType": "Patient"}} for _ in range(R4B_NESTED_LIMIT)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    assert len(validate_resource(bundle, "Bundle").r4b) == R4B_NESTED_LIMIT + 1
