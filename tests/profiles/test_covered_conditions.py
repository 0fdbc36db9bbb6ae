"""Which covered serious condition a coded diagnosis is: guide code, ICD-10 map, SNOMED hierarchy."""

from __future__ import annotations

import json

import pytest

from profiles import definitions_dir
from profiles.conformance import CM_ICD10, CS_CONDITIONS, VS_CONDITIONS, lookup
from profiles.terminology import (
    CoveredMatch,
    codes,
    covered_condition,
    in_value_set,
    snomed_subsumes,
)

SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10"
ICD_CM = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize(
    ("system", "code", "condition", "via"),
    [
        (CS_CONDITIONS, "cancer", "cancer", "guide"),
        (ICD, "C18", "cancer", "map"),
        (ICD, "C18.7", "cancer", "map"),
        (ICD, "D61.9", "aplastic-anaemia", "map"),
        (ICD, "N18.5", "kidney-failure", "map"),
        (ICD, "G12.2", "motor-neuron-disease", "map"),
        (ICD, "I21.4", "heart-attack", "map"),
        (ICD_CM, "N18.6", "kidney-failure", "map"),
        (ICD_CM, "G12.21", "motor-neuron-disease", "map"),
        (SCT, "363346000", "cancer", "map"),
        (SCT, "22298006", "heart-attack", "map"),
        (SCT, "15188001", "deafness", "map"),
        (SCT, "363406005", "cancer", "hierarchy"),
        (SCT, "401303003", "heart-attack", "hierarchy"),
        (SCT, "426373005", "multiple-sclerosis", "hierarchy"),
    ],
)
def test_covered(system: str, code: str, condition: str, via: str) -> None:
    assert covered_condition(system, code) == CoveredMatch(condition, via, f"{system}|{code}")


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (CS_CONDITIONS, "common-cold"),
        (ICD, "N18.4"),  # a sibling of a mapped code
        (ICD, "C1"),  # not a mapped code, only a prefix of some
        (ICD, "C44.9"),  # other skin: a policy exclusion
        (ICD, "N18.6"),  # ICD-10-CM only
        (ICD_CM, "D61.81"),  # pancytopenia, not aplastic anaemia
        (SCT, "999999999"),  # unknown to the subset
        ("http://loinc.org", "C18"),
        (None, "C18"),
        (ICD, None),
    ],
)
def test_not_covered(system: str | None, code: str | None) -> None:
    assert covered_condition(system, code) is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("363346000", True),  # the root
        ("363406005", True),  # a shipped descendant
        ("401303003", True),  # a deep descendant
        ("15188001", True),  # a proxy by exact code
        ("999999999", None),  # absent from the subset: undecidable
    ],
)
def test_in_value_set_snomed(code: str, expected: bool | None) -> None:
    assert in_value_set(VS_CONDITIONS, SCT, code) is expected


def _hierarchy() -> dict[str, dict[str, object]]:
    path = definitions_dir() / "snomed" / "hierarchy-subset.json"
    concepts: dict[str, dict[str, object]] = json.loads(path.read_text())["concepts"]
    return concepts


def test_every_shipped_snomed_code_reaches_a_covered_root() -> None:
    roots = [
        f["value"]
        for inc in (lookup(VS_CONDITIONS, "ValueSet") or {})["compose"]["include"]
        for f in inc.get("filter", [])
        if inc.get("system") == SCT
    ]
    for code in _hierarchy():
        assert any(snomed_subsumes(r, code) for r in roots), code
        assert covered_condition(SCT, code) is not None, code


def test_every_icd10_map_target_is_a_guide_code() -> None:
    guide = set(codes(CS_CONDITIONS))
    cm = lookup(CM_ICD10, "ConceptMap")
    assert cm is not None
    targets = {t["code"] for g in cm["group"] for e in g["element"] for t in e["target"]}
    assert targets <= guide
    assert {"cancer", "heart-attack", "kidney-failure"} <= targets
