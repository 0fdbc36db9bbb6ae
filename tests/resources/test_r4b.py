"""Where the R4B models differ from R4: recomputed and compared with the committed list."""

from __future__ import annotations

import json
from functools import cache

from resources.r4b import DIFFERENCES_FILE, compare, differing_types, r4b_agrees
from resources.registry import resource_types

# Types whose own elements differ (the rest differ through a datatype they use). Pinned so a
# change of fhir.resources or of the R4 definitions is a deliberate, reviewed edit here.
OWN_DIFFERENCES = {
    "ActivityDefinition",  # subjectCanonical added in R4B
    "EffectEvidenceSynthesis",  # the 18 R4 types R4B dropped …
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
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SubstanceAmount",  # … and one R4 datatype it dropped
    "ElementDefinition",  # value[x]: Meta removed, CodeableReference and RatioRange added
    "Evidence",  # restructured
    "EvidenceVariable",  # restructured
    "Extension",  # value[x]: Meta removed, CodeableReference and RatioRange added
    "MarketingStatus",  # country, dateRange 1..1 in R4, optional in R4B
    "PlanDefinition",  # subjectCanonical added in R4B
}


fresh = cache(compare)  # one comparison (every R4B model class) for the module


def test_committed_list_matches_a_fresh_comparison() -> None:
    committed = json.loads(DIFFERENCES_FILE.read_text(encoding="utf-8"))
    assert committed == fresh()


def test_types_with_their_own_differences_are_pinned() -> None:
    own = {t for t, reasons in fresh().items() if not reasons[0].startswith("uses ")}
    assert own == OWN_DIFFERENCES


def test_every_r4_resource_type_differs_through_extension() -> None:
    """Extension is in every resource, so no resource's R4B model describes R4 whole."""
    assert set(resource_types()) <= differing_types()
    assert not any(r4b_agrees(t) for t in resource_types())


def test_evidence_differences_name_r4b_only_and_r4_only_elements() -> None:
    reasons = fresh()["Evidence"]
    assert "Evidence.exposureBackground: not in R4B" in reasons
    assert "Evidence.variableDefinition: only in R4B" in reasons
