"""The directional R4 → R4B comparison (recomputed and compared with the committed data) and
the R4B model layer's pieces: setting nested resources aside and mapping model errors."""

from __future__ import annotations

import copy
from typing import Any

from resources.r4b import DIFFERENCES_FILE, committed, compare, model_issues, set_aside
from resources.registry import resource_types
from resources.structure import structure_issues
from resources.validation import validate_resource

# R4 types whose R4B model would refuse every instance that uses them (no R4B model: the 18
# resource types R4B dropped and one datatype). Pinned so a change of fhir.resources or of the
# R4 definitions is a deliberate, reviewed edit here.
SKIP_WHEN_USED = {
    "EffectEvidenceSynthesis",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "RiskEvidenceSynthesis",
    "SubstanceAmount",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
}
# Types (and backbones) with R4 elements R4B lacks: an instance holding one skips the model.
SKIP_WHEN_PRESENT = {
    "ElementDefinition",  # defaultValueMeta, fixedMeta, patternMeta
    "ElementDefinition.example",  # valueMeta
    "Evidence",  # restructured in R4B
    "EvidenceVariable",
    "EvidenceVariable.characteristic",
    "Extension",  # valueMeta
}


def test_committed_data_matches_a_fresh_comparison() -> None:
    """One comparison of every R4 type with its R4B model class (a few seconds)."""
    assert committed() == compare()
    assert DIFFERENCES_FILE.exists()


def test_types_the_model_would_refuse_whenever_used_are_pinned() -> None:
    assert set(committed()["skip-when-used"]) == SKIP_WHEN_USED


def test_types_with_elements_r4b_lacks_are_pinned() -> None:
    assert set(committed()["skip-when-present"]) == SKIP_WHEN_PRESENT
    assert committed()["skip-when-present"]["Extension"] == ["valueMeta"]


def test_model_is_used_for_every_resource_type_r4b_has() -> None:
    """R4B additions (Extension.valueCodeableReference, …) are harmless: the R4 walk refuses
    them first, so they no longer exclude every type."""
    expected = sorted(set(resource_types()) - SKIP_WHEN_USED)
    assert committed()["model-used-for"] == expected
    assert "Evidence" in expected and "Bundle" in expected


def test_r4b_only_elements_are_harmless_and_r4_only_ones_refuse() -> None:
    evidence = committed()["types"]["Evidence"]
    assert (
        "Evidence.exposureBackground: Reference in R4, not in R4B" in evidence["refuses-valid-r4"]
    )
    assert "Evidence.variableDefinition: only in R4B" in evidence["harmless"]
    extension = committed()["types"]["Extension"]
    assert extension["refuses-valid-r4"] == ["Extension.valueMeta: Meta in R4, not in R4B"]
    assert "Extension.valueCodeableReference: only in R4B" in extension["harmless"]


def test_looser_r4b_cardinality_is_harmless() -> None:
    assert committed()["types"]["MarketingStatus"] == {
        "refuses-valid-r4": [],
        "harmless": [
            "MarketingStatus.country: min 1 in R4, 0 in R4B",
            "MarketingStatus.dateRange: min 1 in R4, 0 in R4B",
        ],
    }


BUNDLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "p"}},
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "contained": [{"resourceType": "Patient"}],
            }
        },
    ],
}


def test_set_aside_removes_nested_resources_without_touching_the_original() -> None:
    original = copy.deepcopy(BUNDLE)
    assert set_aside(BUNDLE, "Bundle") == {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1"}, {}],
    }
    assert original == BUNDLE


def test_set_aside_reaches_parameter_parts_and_contained() -> None:
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "a", "part": [{"name": "b", "resource": {"resourceType": "X"}}]}],
    }
    assert set_aside(params, "Parameters") == {
        "resourceType": "Parameters",
        "parameter": [{"name": "a", "part": [{"name": "b"}]}],
    }
    entry = BUNDLE["entry"][1]["resource"]
    assert "contained" not in set_aside(entry, "Observation")


def test_model_errors_become_issues_with_the_resource_path() -> None:
    issues = model_issues(
        {"resourceType": "Patient", "gender": ["male"], "bogus": 1},
        "Patient",
        "Bundle.entry[2].resource",
    )
    expressions = {e for _, e in issues}
    assert expressions == {"Bundle.entry[2].resource.gender", "Bundle.entry[2].resource.bogus"}
    assert ("unknown element", "Bundle.entry[2].resource.bogus") in issues


def test_model_accepts_a_resource_it_agrees_with() -> None:
    assert model_issues(BUNDLE, "Bundle", "Bundle") == []


def test_r4b_model_really_refuses_what_the_triggers_skip() -> None:
    """The triggers are not guesses: the model refuses each of these valid R4 instances."""
    cases = [
        {"resourceType": "Patient", "extension": [{"url": "http://x", "valueMeta": {"id": "a"}}]},
        {"resourceType": "Patient", "language": "en\u00a0\u00a0GB"},
        {"resourceType": "Patient", "name": [{"text": "\u00a0"}]},
        {"resourceType": "Patient", "photo": [{"data": "a==="}]},
    ]
    for body in cases:
        assert model_issues(body, "Patient", "Patient"), body


SPACED = ["a\u00a0b", "a\u00a0\u00a0b", "\u00a0", "\u00a0a", "a\u00a0", "a \u00a0b", "\u3000\u3000"]


BODIES = {
    "code": lambda v: {"resourceType": "Patient", "language": v},
    "uri": lambda v: {"resourceType": "Patient", "implicitRules": v},
    "string": lambda v: {"resourceType": "Patient", "name": [{"text": v}]},
    "markdown": lambda v: {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "note": [{"text": v}],
    },
}


def test_the_walk_predicts_exactly_which_unicode_spaced_values_r4b_refuses() -> None:
    """For each value valid in R4: skipped by the walk iff the model refuses it."""
    for kind, make in BODIES.items():
        for value in SPACED:
            body: dict[str, Any] = make(value)
            rtype = body["resourceType"]
            if structure_issues(body, rtype):
                continue  # not valid R4 (a uri has no space): the R4 walk refuses it first
            skipped = validate_resource(body, rtype).r4b == ()
            assert skipped == bool(model_issues(body, rtype, rtype)), (kind, value)
