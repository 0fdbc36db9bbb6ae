"""The pure terminology operations (profiles/expansion.py, profiles/terminology_ops.py), table
by table, over the guide's own definitions."""

from __future__ import annotations

from typing import Any

import pytest

from profiles.conformance import BASE, CM_ICD10, lookup
from profiles.expansion import UNCLOSED, TerminologyError, expand, snomed_display
from profiles.terminology import SCT
from profiles.terminology_ops import lookup_code, translate, validate_code

VS = f"{BASE}/ValueSet"
CS = f"{BASE}/CodeSystem"
CBS = f"{CS}/case-business-status"
CONDITIONS_CS = f"{CS}/covered-serious-conditions"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
TS = "2026-12-02T00:00:00Z"


def vs(name: str) -> dict[str, Any]:
    found = lookup(f"{VS}/{name}", "ValueSet")
    assert found is not None
    return found


def cs(url: str) -> dict[str, Any]:
    found = lookup(url, "CodeSystem")
    assert found is not None
    return found


def composed(*include: dict[str, Any], exclude: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    compose: dict[str, Any] = {"include": list(include)}
    if exclude:
        compose["exclude"] = list(exclude)
    return {"resourceType": "ValueSet", "status": "active", "compose": compose}


def codes(expanded: dict[str, Any]) -> list[str]:
    return [c["code"] for c in expanded["expansion"].get("contains", [])]


def value(params: dict[str, Any], name: str) -> Any:
    for p in params["parameter"]:
        if p["name"] == name:
            return next(v for k, v in p.items() if k.startswith("value"))
    return None


# ------------------------------------------------------------------------------------ expand
@pytest.mark.parametrize(
    ("name", "total", "complete"),
    [
        ("second-opinion-outcome", 4, True),
        ("case-business-status", 21, True),
        ("case-rejection-reason", 8, True),
        ("expert-specialties", 14, True),
        ("case-communication", 2, True),
        ("case-transition", 16, True),
        ("second-opinion-report-code", 1, True),
        ("covered-serious-conditions", None, False),  # SNOMED is-a: partial
    ],
)
def test_expand_guide_value_sets(name: str, total: int | None, complete: bool) -> None:
    out = expand(vs(name), timestamp=TS)["expansion"]
    if total is not None:
        assert out["total"] == total == len(out["contains"])
    assert ("extension" not in out) is complete
    assert out["timestamp"] == TS


def test_expand_conditions_holds_guide_codes_roots_and_subset_descendants() -> None:
    got = codes(expand(vs("covered-serious-conditions"), timestamp=TS))
    assert {"cancer", "363346000", "254637007", "118809006"} <= set(got)
    assert len(got) == len(set(got))  # each system|code once


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("is-a", ["rejected", "coverage-not-in-force", "benefit-not-included",
                  "condition-not-covered", "investigations-incomplete", "member-not-found",
                  "benefit-exhausted", "coverage-unverified", "diagnosis-not-firm"]),
        ("descendent-of", ["coverage-not-in-force", "benefit-not-included",
                           "condition-not-covered", "investigations-incomplete",
                           "member-not-found", "benefit-exhausted", "coverage-unverified",
                           "diagnosis-not-firm"]),
        ("=", ["rejected"]),
    ],
)  # fmt: skip
def test_expand_hierarchy_filters_on_a_guide_code_system(op: str, expected: list[str]) -> None:
    f = {"property": "concept", "op": op, "value": "rejected"}
    assert codes(expand(composed({"system": CBS, "filter": [f]}), timestamp=TS)) == expected


def test_expand_property_filter() -> None:
    f = {"property": "task-status", "op": "=", "value": "in-progress"}
    got = codes(expand(composed({"system": CBS, "filter": [f]}), timestamp=TS))
    assert got == ["case-retrieved", "under-review", "interim-report"]


@pytest.mark.parametrize(
    ("root", "op", "expected"),
    [
        ("22298006", "is-a", ["22298006", "401303003", "401314000", "57054005"]),
        ("22298006", "descendent-of", ["401303003", "401314000", "57054005"]),
        ("363358000", "is-a", ["254632001", "254637007", "363358000"]),
    ],
)
def test_expand_snomed_from_the_subset_is_unclosed(root: str, op: str, expected: list[str]) -> None:
    f = {"property": "concept", "op": op, "value": root}
    out = expand(composed({"system": SCT, "filter": [f]}), timestamp=TS)
    assert codes(out) == expected
    assert out["expansion"]["extension"] == [{"url": UNCLOSED, "valueBoolean": True}]


def test_expand_snomed_displays_come_from_the_guide() -> None:
    f = {"property": "concept", "op": "is-a", "value": "24700007"}
    out = expand(composed({"system": SCT, "filter": [f]}), timestamp=TS)
    displays = {c["code"]: c.get("display") for c in out["expansion"]["contains"]}
    assert displays["24700007"] == "Multiple sclerosis"
    assert displays["426373005"] == "Relapsing remitting multiple sclerosis"


def test_expand_exclude_by_concept_and_by_filter() -> None:
    out = expand(
        composed(
            {"system": CBS},
            exclude=(
                {"system": CBS, "filter": [{"property": "concept", "op": "is-a",
                                            "value": "rejected"}]},
                {"system": CBS, "concept": [{"code": "failed"}]},
            ),
        ),
        timestamp=TS,
    )  # fmt: skip
    got = codes(out)
    assert "rejected" not in got and "member-not-found" not in got and "failed" not in got
    assert len(got) == 22 - 9 - 1


def test_expand_nested_value_set() -> None:
    out = expand(composed({"valueSet": [f"{VS}/case-rejection-reason"]}), timestamp=TS)
    assert len(codes(out)) == 8


def test_expand_flags_groupers_and_deprecated_codes() -> None:
    contains = {
        c["code"]: c
        for c in expand(composed({"system": CBS}), timestamp=TS)["expansion"]["contains"]
    }
    assert contains["rejected"]["abstract"] is True
    assert contains["expert-matched"]["inactive"] is True
    assert "abstract" not in contains["eligible"]


@pytest.mark.parametrize(
    ("filter", "count", "offset", "expected", "total"),
    [
        ("MENT", None, None, ["alternative-treatment"], 1),
        ("alternative", 1, 1, ["alternative-treatment"], 2),
        (None, 0, None, [], 4),
        (None, 2, 3, ["insufficient-information"], 4),
        (None, None, 10, [], 4),
        ("no such thing", None, None, [], 0),
    ],
)
def test_expand_filter_and_paging(
    filter: str | None, count: int | None, offset: int | None, expected: list[str], total: int
) -> None:
    out = expand(vs("second-opinion-outcome"), timestamp=TS, filter=filter, count=count,
                 offset=offset)  # fmt: skip
    assert codes(out) == expected
    assert out["expansion"]["total"] == total


def test_expand_echoes_its_parameters() -> None:
    out = expand(vs("second-opinion-outcome"), timestamp=TS, filter="x", count=5, offset=0,
                 include_designations=True)  # fmt: skip
    assert out["expansion"]["parameter"] == [
        {"name": "filter", "valueString": "x"},
        {"name": "offset", "valueInteger": 0},
        {"name": "count", "valueInteger": 5},
        {"name": "includeDesignations", "valueBoolean": True},
    ]


def test_expand_designations_only_when_asked() -> None:
    v = composed({"system": CBS, "concept": [{"code": "eligible", "designation": [
        {"language": "fr", "value": "Admissible"}]}]})  # fmt: skip
    assert "designation" not in expand(v, timestamp=TS)["expansion"]["contains"][0]
    got = expand(v, timestamp=TS, include_designations=True)["expansion"]["contains"][0]
    assert got["designation"] == [{"language": "fr", "value": "Admissible"}]


@pytest.mark.parametrize(
    ("value_set", "kwargs", "status", "code"),
    [
        (composed({"system": CBS}), {"count": -1}, 400, "invalid"),
        (composed({"system": CBS}), {"offset": -1}, 400, "invalid"),
        (composed({"system": "http://loinc.org"}), {}, 422, "too-costly"),
        (composed({"system": "http://loinc.org", "filter": [
            {"property": "COMPONENT", "op": "=", "value": "x"}]}), {}, 422, "not-supported"),
        (composed({"system": SCT, "filter": [
            {"property": "concept", "op": "in", "value": "1,2"}]}), {}, 422, "not-supported"),
        (composed({"system": CBS, "filter": [
            {"property": "concept", "op": "regex", "value": ".*"}]}), {}, 422, "not-supported"),
        (composed({"valueSet": [f"{VS}/nope"]}), {}, 422, "not-found"),
        ({"resourceType": "CodeSystem"}, {}, 400, "invalid"),
    ],
)  # fmt: skip
def test_expand_refuses(
    value_set: dict[str, Any], kwargs: dict[str, Any], status: int, code: str
) -> None:
    with pytest.raises(TerminologyError) as err:
        expand(value_set, timestamp=TS, **kwargs)
    assert (err.value.status, err.value.code) == (status, code)


def test_expand_a_cycle_of_value_sets_stops() -> None:
    me = composed({"valueSet": ["urn:me"]})
    with pytest.raises(TerminologyError) as err:
        expand(me, timestamp=TS, resolve=lambda url, rtype: me if url == "urn:me" else None)
    assert err.value.code == "too-costly"


# ------------------------------------------------------------------------------ validate-code
@pytest.mark.parametrize(
    ("name", "system", "code", "display", "result", "message"),
    [
        ("covered-serious-conditions", CONDITIONS_CS, "cancer", None, True, None),
        ("covered-serious-conditions", CONDITIONS_CS, "cancer", "cancer", True, None),
        ("covered-serious-conditions", CONDITIONS_CS, "cancer", "Tumour", True, "warning"),
        ("covered-serious-conditions", CONDITIONS_CS, "gout", None, False, "unknown code"),
        ("covered-serious-conditions", SCT, "92818009", None, True, None),
        ("covered-serious-conditions", SCT, "38341003", None, False, "cannot be decided"),
        ("second-opinion-outcome", None, "confirm-diagnosis", None, True, None),
        ("expert-specialties", None, "394579002", "Cardiology", True, None),
        ("expert-specialties", SCT, "394579002", "Heart", True, "warning"),
        ("case-business-status", CBS, "rejected", None, False, "not in the value set"),
        ("case-rejection-reason", CBS, "eligible", None, False, "not in the value set"),
        ("case-business-status", "http://example.org", "received", None, False, "not in"),
    ],
)
def test_validate_code(
    name: str, system: str | None, code: str, display: str | None, result: bool,
    message: str | None,
) -> None:  # fmt: skip
    out = validate_code(vs(name), system=system, code=code, display=display)
    assert value(out, "result") is result
    if message is None:
        assert value(out, "message") is None
    else:
        assert message in value(out, "message")


def test_validate_code_recommends_the_display() -> None:
    out = validate_code(vs("case-business-status"), system=CBS, code="under-review")
    assert value(out, "display") == "Under review"


def test_validate_codeable_concept_reports_every_failure_when_none_is_valid() -> None:
    cc = {"coding": [{"system": CBS, "code": "x"}, {"system": SCT, "code": "11429006"}]}
    out = validate_code(vs("second-opinion-outcome"), codeable_concept=cc)
    assert value(out, "result") is False
    assert value(out, "message").count(";") == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"code": "a", "coding": {"code": "a"}},
        {"coding": {"system": CBS}},
        {"codeable_concept": {"text": "no codings"}},
    ],
)
def test_validate_code_needs_exactly_one_code(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TerminologyError) as err:
        validate_code(vs("case-business-status"), **kwargs)
    assert err.value.status == 400


def test_validate_code_bare_code_needs_a_system_when_there_are_several() -> None:
    out = validate_code(vs("covered-serious-conditions"), code="cancer")
    assert value(out, "result") is False
    assert "needs a system" in value(out, "message")


# ------------------------------------------------------------------------------------- lookup
def properties(params: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for p in params["parameter"]:
        if p["name"] == "property":
            parts = {q["name"]: q for q in p["part"]}
            out.append((parts["code"]["valueCode"],
                        next(v for k, v in parts["value"].items() if k.startswith("value"))))  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "received",
            {
                ("task-status", "requested"),
            },
        ),
        ("member-not-found", {("task-status", "rejected"), ("parent", "rejected")}),
        ("expert-matched", {("status", "deprecated"), ("task-status", "ready")}),
    ],
)
def test_lookup_properties(code: str, expected: set[tuple[str, Any]]) -> None:
    found = {
        (k, v) for k, v in properties(lookup_code(cs(CBS), CBS, code)) if not isinstance(v, dict)
    }
    assert expected <= found


def test_lookup_bser_property_is_a_coding() -> None:
    found = dict(properties(lookup_code(cs(CBS), CBS, "report-issued")))
    assert found["bser-status"]["code"] == "7.0"


def test_lookup_property_filter() -> None:
    got = properties(lookup_code(cs(CBS), CBS, "rejected", properties=["parent", "child"]))
    assert {k for k, _ in got} == {"child"}  # a top-level code has no parent


def test_lookup_name_version_display() -> None:
    out = lookup_code(cs(CONDITIONS_CS), CONDITIONS_CS, "multiple-sclerosis")
    assert (value(out, "name"), value(out, "version"), value(out, "display")) == (
        "CoveredSeriousConditions", "0.1.0", "Multiple sclerosis")  # fmt: skip


@pytest.mark.parametrize(
    ("code", "parents", "children"),
    [
        ("57054005", ["22298006"], ["401303003", "401314000"]),
        ("363358000", ["363346000"], ["254632001", "254637007"]),
        ("86044005", ["37340000"], []),
    ],
)
def test_lookup_snomed_in_the_subset(code: str, parents: list[str], children: list[str]) -> None:
    got = properties(lookup_code(None, SCT, code))
    assert [v for k, v in got if k == "parent"] == parents
    assert [v for k, v in got if k == "child"] == children


@pytest.mark.parametrize(
    ("code_system", "system", "code"),
    [
        ("cbs", CBS, "nope"),
        (None, SCT, "12345"),
        (None, "http://loinc.org", "11488-4"),
    ],
)
def test_lookup_unknown_is_404(code_system: str | None, system: str, code: str) -> None:
    with pytest.raises(TerminologyError) as err:
        lookup_code(cs(CBS) if code_system else None, system, code)
    assert (err.value.status, err.value.code) == (404, "not-found")


def test_snomed_display_from_the_guide() -> None:
    assert snomed_display("394592004") == "Clinical oncology"  # a value set concept list
    assert snomed_display("46177005") == "End-stage renal disease"  # a map target
    assert snomed_display("1") is None


# ---------------------------------------------------------------------------------- translate
def icd_map() -> list[dict[str, Any]]:
    cm = lookup(CM_ICD10, "ConceptMap")
    assert cm is not None
    return [cm]


def mapped(params: dict[str, Any]) -> list[tuple[str, str | None]]:
    out = []
    for p in params["parameter"]:
        if p["name"] == "match":
            parts = {q["name"]: q for q in p["part"]}
            out.append((parts["equivalence"]["valueCode"],
                        parts.get("concept", {}).get("valueCoding", {}).get("code")))  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("system", "code", "result", "matches"),
    [
        (ICD10, "C18", True, [("wider", "cancer")]),
        (ICD10, "C18.7", True, [("wider", "cancer")]),
        (ICD10, "c18.7", True, [("wider", "cancer")]),  # case and spaces as the rule allows
        (ICD10, "G35", True, [("equivalent", "multiple-sclerosis")]),
        (ICD10, "G35.1", True, [("wider", "multiple-sclerosis")]),  # through the category
        (ICD10, "C44.9", False, []),  # other skin: a policy exclusion
        (ICD10, "D05", False, []),  # in situ
        (ICD10, "N18.4", False, []),  # a sibling of N18.5/N18.6, never covered
        (ICD10CM, "N18.6", True, [("equivalent", "kidney-failure")]),
        (ICD10, "G20", True, [("equivalent", "parkinsons-disease")]),
        (ICD10, "not a code", False, []),
        ("http://example.org", "C18", False, []),
    ],
)
def test_translate_icd10(
    system: str, code: str, result: bool, matches: list[tuple[str, str]]
) -> None:
    out = translate(icd_map(), system=system, code=code)
    assert value(out, "result") is result
    assert mapped(out) == matches


def test_translate_agrees_with_covered_condition() -> None:
    from profiles.terminology import covered_condition

    for code in ("C18.7", "I21.0", "G35", "N18.6", "C44", "D61.9", "F00"):
        got = covered_condition(ICD10, code)
        out = translate(icd_map(), system=ICD10, code=code)
        assert [c for _, c in mapped(out)] == ([got.condition] if got else [])


def test_translate_target_filters_by_map_scope() -> None:
    out = translate(icd_map(), system=ICD10, code="C18", target="http://example.org/vs")
    assert value(out, "result") is False
    out = translate(icd_map(), system=ICD10, code="C18", target=f"{VS}/covered-serious-conditions")
    assert value(out, "result") is True


def test_translate_target_system_filters_groups() -> None:
    out = translate(icd_map(), system=ICD10, code="C18", target_system=SCT)
    assert mapped(out) == []
    out = translate(icd_map(), system=ICD10, code="C18", target_system=CONDITIONS_CS)
    assert mapped(out) == [("wider", "cancer")]


def test_translate_names_the_source_map_and_the_guide_display() -> None:
    out = translate(icd_map(), system=ICD10, code="C50")
    match = next(p for p in out["parameter"] if p["name"] == "match")
    parts = {q["name"]: q for q in match["part"]}
    assert parts["source"]["valueUri"] == CM_ICD10
    assert parts["concept"]["valueCoding"]["display"] == "Cancer"
