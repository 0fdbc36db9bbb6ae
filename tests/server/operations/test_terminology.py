"""Terminology operations over HTTP against the guide's value sets, code systems and maps.

One database per module, seeded with the conformance resources only (instance-level calls read
the stored copies); read-only tests. Auth is on, so every call carries a token: the operations
are open to every authenticated party that may read definitions (auth/policy.py
DIRECTORY_TYPES), and refused without a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from profiles.conformance import BASE
from profiles.expansion import UNCLOSED
from server.app import create_app
from tests.demo_copy import seed_demo
from tests.server.operations.conftest import FHIR_JSON, parameters
from tests.smart_helpers import ADMIN, backend_token, bearer

VS = f"{BASE}/ValueSet"
CS = f"{BASE}/CodeSystem"
CM = f"{BASE}/ConceptMap"
SCT = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
CONDITIONS = f"{VS}/covered-serious-conditions"


@pytest.fixture(scope="module")
def world(mongo_uri: str, module_settings: Any) -> Iterator[dict[str, Any]]:
    settings = module_settings("terminology", auth="on", admin_token=ADMIN)
    app = create_app(settings)
    seed_demo(app.state.consilium, demo=False)
    with TestClient(app) as c:
        tokens = {
            "trusted": backend_token(c, "system/*.cruds"),
            "insurer": backend_token(c, "system/*.rs", org="ins-albion-health", role="insurer"),
            "clinic": backend_token(c, "system/*.cruds", org="org-northgate", role="clinic"),
            "specialist": backend_token(
                c,
                "system/*.rs",
                org="net-consilium-experts",
                role="specialist",
                practitioner_role="exp-neurology",
            ),
            "patient-only": backend_token(c, "system/Patient.rs"),
        }
        yield {"client": c, "tokens": tokens}
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(settings.db_name)
    cleanup.close()


def get(world: dict[str, Any], path: str, who: str = "trusted", **query: Any) -> Any:
    return world["client"].get(f"/fhir/{path}", params=query, headers=bearer(world["tokens"][who]))


def post(world: dict[str, Any], path: str, body: Any, who: str = "trusted") -> Any:
    headers = {**bearer(world["tokens"][who]), **FHIR_JSON}
    return world["client"].post(f"/fhir/{path}", json=body, headers=headers)


def ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def codes(vs: dict[str, Any]) -> list[str]:
    return [c["code"] for c in vs["expansion"].get("contains", [])]


def value(params: dict[str, Any], name: str) -> Any:
    for p in params["parameter"]:
        if p["name"] == name:
            return next(v for k, v in p.items() if k.startswith("value"))
    return None


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


# ------------------------------------------------------------------------------------ $expand
def test_expand_by_url_lists_the_outcomes(world: dict[str, Any]) -> None:
    vs = ok(get(world, "ValueSet/$expand", url=f"{VS}/second-opinion-outcome"))
    assert vs["resourceType"] == "ValueSet"
    assert codes(vs) == [
        "confirm-diagnosis",
        "alternative-diagnosis",
        "alternative-treatment",
        "insufficient-information",
    ]
    assert vs["expansion"]["total"] == 4
    assert "compose" not in vs


def test_expand_instance_reads_the_stored_value_set(world: dict[str, Any]) -> None:
    vs = ok(get(world, "ValueSet/case-business-status/$expand"))
    assert "report-issued" in codes(vs)
    assert vs["expansion"]["total"] == 21


def test_expand_filter_is_case_insensitive_on_display_and_code(world: dict[str, Any]) -> None:
    vs = ok(get(world, "ValueSet/$expand", url=f"{VS}/expert-specialties", filter="ONCO"))
    assert codes(vs) == ["394592004", "394593009"]
    assert vs["expansion"]["parameter"] == [{"name": "filter", "valueString": "ONCO"}]


def test_expand_pages_with_count_and_offset(world: dict[str, Any]) -> None:
    whole = codes(ok(get(world, "ValueSet/$expand", url=f"{VS}/expert-specialties")))
    page = ok(get(world, "ValueSet/$expand", url=f"{VS}/expert-specialties", count=3, offset=2))
    assert codes(page) == whole[2:5]
    assert page["expansion"]["total"] == len(whole) == 14
    assert page["expansion"]["offset"] == 2


def test_expand_snomed_is_a_is_partial_and_says_so(world: dict[str, Any]) -> None:
    vs = ok(get(world, "ValueSet/$expand", url=CONDITIONS, filter="leuk"))
    assert codes(vs) == ["91861009", "92818009", "93143009"]
    assert vs["expansion"]["extension"] == [{"url": UNCLOSED, "valueBoolean": True}]


def test_expand_guide_only_value_set_is_complete(world: dict[str, Any]) -> None:
    vs = ok(get(world, "ValueSet/$expand", url=f"{VS}/case-rejection-reason"))
    assert "extension" not in vs["expansion"]
    assert len(codes(vs)) == 8


def test_expand_a_value_set_given_in_the_body_honours_exclude(world: dict[str, Any]) -> None:
    body = {
        "resourceType": "ValueSet",
        "status": "active",
        "compose": {
            "include": [{"system": f"{CS}/case-business-status", "filter": [
                {"property": "concept", "op": "descendent-of", "value": "rejected"}]}],
            "exclude": [{"system": f"{CS}/case-business-status", "concept": [
                {"code": "member-not-found"}]}],
        },
    }  # fmt: skip
    vs = ok(post(world, "ValueSet/$expand", body))
    assert "member-not-found" not in codes(vs)
    assert "rejected" not in codes(vs)
    assert len(codes(vs)) == 7


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"url": f"{VS}/nope"}, 404),
        ({"url": f"{VS}/expert-specialties", "valueSetVersion": "9.9"}, 404),
        ({"url": f"{VS}/expert-specialties", "count": "-1"}, 400),
        ({"url": f"{VS}/expert-specialties", "offset": "-5"}, 400),
        ({"url": f"{VS}/expert-specialties", "count": "ten"}, 400),
        ({"url": f"{VS}/expert-specialties", "bogus": "1"}, 400),
        ({}, 400),
    ],
)
def test_expand_refuses_bad_requests(
    world: dict[str, Any], query: dict[str, str], status: int
) -> None:
    error(get(world, "ValueSet/$expand", **query), status)


def test_expand_unknown_instance_is_404(world: dict[str, Any]) -> None:
    assert error(get(world, "ValueSet/nope/$expand"), 404)["code"] == "not-found"


def test_expand_whole_external_system_is_too_costly(world: dict[str, Any]) -> None:
    body = {"resourceType": "ValueSet", "status": "active",
            "compose": {"include": [{"system": "http://loinc.org"}]}}  # fmt: skip
    assert error(post(world, "ValueSet/$expand", body), 422)["code"] == "too-costly"


def test_expand_needs_a_token(world: dict[str, Any]) -> None:
    r = world["client"].get("/fhir/ValueSet/$expand", params={"url": CONDITIONS})
    assert r.status_code == 401


@pytest.mark.parametrize("who", ["insurer", "clinic", "specialist"])
def test_every_party_may_expand(world: dict[str, Any], who: str) -> None:
    ok(get(world, "ValueSet/$expand", who=who, url=f"{VS}/second-opinion-outcome"))


def test_expand_by_post_parameters(world: dict[str, Any]) -> None:
    body = parameters(
        {"name": "url", "valueUri": f"{VS}/case-business-status"},
        {"name": "filter", "valueString": "review"},
        {"name": "count", "valueInteger": 1},
    )
    vs = ok(post(world, "ValueSet/$expand", body))
    assert codes(vs) == ["under-review"]
    assert vs["expansion"]["total"] == 1


# ------------------------------------------------------------------------------ $validate-code
@pytest.mark.parametrize(
    ("url", "system", "code", "result"),
    [
        (CONDITIONS, f"{CS}/covered-serious-conditions", "cancer", True),
        (CONDITIONS, SCT, "401303003", True),  # STEMI: is-a myocardial infarction (subset)
        (CONDITIONS, SCT, "363346000", True),  # the is-a root itself
        (CONDITIONS, f"{CS}/covered-serious-conditions", "flu", False),
        (f"{VS}/second-opinion-outcome", f"{CS}/second-opinion-outcome", "confirm-diagnosis", True),
        (f"{VS}/second-opinion-outcome", f"{CS}/case-business-status", "failed", False),
        (f"{VS}/case-business-status", f"{CS}/case-business-status", "rejected", False),
        (f"{VS}/expert-specialties", SCT, "394579002", True),
        (f"{VS}/expert-specialties", SCT, "11429006", False),
    ],
)
def test_validate_code(
    world: dict[str, Any], url: str, system: str, code: str, result: bool
) -> None:
    out = ok(get(world, "ValueSet/$validate-code", url=url, system=system, code=code))
    assert out["resourceType"] == "Parameters"
    assert value(out, "result") is result
    if not result:
        assert value(out, "message")


def test_validate_code_returns_the_display(world: dict[str, Any]) -> None:
    out = ok(get(world, "ValueSet/expert-specialties/$validate-code", system=SCT, code="394591006"))
    assert value(out, "display") == "Neurology"
    assert value(out, "message") is None


def test_validate_code_wrong_display_is_true_with_a_warning(world: dict[str, Any]) -> None:
    out = ok(
        get(
            world,
            "ValueSet/$validate-code",
            url=f"{VS}/second-opinion-outcome",
            system=f"{CS}/second-opinion-outcome",
            code="alternative-treatment",
            display="Something else",
        )
    )
    assert value(out, "result") is True
    assert "warning" in value(out, "message")
    assert value(out, "display") == "Alternative treatment"


def test_validate_code_display_is_compared_ignoring_case(world: dict[str, Any]) -> None:
    out = ok(
        get(world, "ValueSet/expert-specialties/$validate-code", system=SCT, code="394591006",
            display="NEUROLOGY")
    )  # fmt: skip
    assert value(out, "result") is True
    assert value(out, "message") is None


def test_validate_code_undecidable_snomed_says_so(world: dict[str, Any]) -> None:
    out = ok(get(world, "ValueSet/$validate-code", url=CONDITIONS, system=SCT, code="254645002"))
    assert value(out, "result") is False
    assert "cannot be decided" in value(out, "message")


def test_validate_codeable_concept_any_coding_will_do(world: dict[str, Any]) -> None:
    body = parameters(
        {"name": "url", "valueUri": CONDITIONS},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
            {"system": "http://example.org/local", "code": "x1"},
            {"system": SCT, "code": "24700007"}]}},
    )  # fmt: skip
    out = ok(post(world, "ValueSet/$validate-code", body))
    assert value(out, "result") is True
    assert value(out, "display") == "Multiple sclerosis"


def test_validate_coding_by_post(world: dict[str, Any]) -> None:
    body = parameters(
        {"name": "coding", "valueCoding": {"system": f"{CS}/case-business-status",
                                           "code": "under-review"}},
    )  # fmt: skip
    out = ok(post(world, "ValueSet/case-business-status/$validate-code", body))
    assert value(out, "result") is True


def test_validate_code_without_system_uses_the_only_one(world: dict[str, Any]) -> None:
    out = ok(get(world, "ValueSet/second-opinion-outcome/$validate-code", code="confirm-diagnosis"))
    assert value(out, "result") is True


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("ValueSet/$validate-code", {"url": f"{VS}/nope", "code": "x", "system": SCT}, 404),
        ("ValueSet/nope/$validate-code", {"code": "x", "system": SCT}, 404),
        ("ValueSet/$validate-code", {"url": CONDITIONS}, 400),  # no code
        ("ValueSet/$validate-code", {"code": "cancer"}, 400),  # no url
        ("ValueSet/second-opinion-outcome/$validate-code", {"url": CONDITIONS, "code": "x"}, 400),
        ("ValueSet/$validate-code", {"url": CONDITIONS, "code": "a b  c"}, 400),  # not a code
        ("ValueSet/$validate-code", {"url": CONDITIONS, "coding": "x"}, 400),  # not in a URL
    ],
)
def test_validate_code_refuses_bad_requests(
    world: dict[str, Any], path: str, query: dict[str, str], status: int
) -> None:
    error(get(world, path, **query), status)


def test_validate_code_both_code_and_coding_is_400(world: dict[str, Any]) -> None:
    body = parameters(
        {"name": "url", "valueUri": CONDITIONS},
        {"name": "code", "valueCode": "cancer"},
        {"name": "coding", "valueCoding": {"system": SCT, "code": "24700007"}},
    )
    error(post(world, "ValueSet/$validate-code", body), 400)


# ------------------------------------------------------------------------------------ $lookup
def props(params: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for p in params["parameter"]:
        if p["name"] == "property":
            parts = {q["name"]: q for q in p["part"]}
            v = next(v for k, v in parts["value"].items() if k.startswith("value"))
            out.append((parts["code"]["valueCode"], v))
    return out


def test_lookup_business_status_with_guide_properties(world: dict[str, Any]) -> None:
    out = ok(get(world, "CodeSystem/$lookup", system=f"{CS}/case-business-status",
                 code="benefit-exhausted"))  # fmt: skip
    assert value(out, "name") == "CaseBusinessStatus"
    assert value(out, "version") == "0.1.0"
    assert value(out, "display") == "Benefit exhausted"
    found = dict(props(out))
    assert found["task-status"] == "rejected"
    assert found["bser-status"]["code"] == "4.0"
    assert found["parent"] == "rejected"


def test_lookup_grouper_lists_its_children(world: dict[str, Any]) -> None:
    out = ok(get(world, "CodeSystem/case-business-status/$lookup", code="rejected"))
    children = [v for k, v in props(out) if k == "child"]
    assert "condition-not-covered" in children
    assert len(children) == 8
    assert ("notSelectable", True) in props(out)


def test_lookup_only_the_properties_asked_for(world: dict[str, Any]) -> None:
    r = world["client"].get(
        "/fhir/CodeSystem/$lookup",
        params=[("system", f"{CS}/case-business-status"), ("code", "eligible"),
                ("property", "task-status")],
        headers=bearer(world["tokens"]["trusted"]),
    )  # fmt: skip
    assert props(ok(r)) == [("task-status", "accepted")]


def test_lookup_covered_condition_by_coding(world: dict[str, Any]) -> None:
    body = parameters(
        {"name": "coding", "valueCoding": {"system": f"{CS}/covered-serious-conditions",
                                           "code": "kidney-failure"}}
    )  # fmt: skip
    out = ok(post(world, "CodeSystem/$lookup", body))
    assert value(out, "display") == "Kidney failure"
    found = dict(props(out))
    assert found["snomed"]["code"] == "46177005"
    assert found["default-specialty"]["code"] == "394589003"


def test_lookup_snomed_from_the_subset(world: dict[str, Any]) -> None:
    out = ok(get(world, "CodeSystem/$lookup", system=SCT, code="254637007"))
    assert value(out, "display") == "Non-small cell lung cancer"
    assert ("parent", "363358000") in props(out)


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("CodeSystem/$lookup", {"system": f"{CS}/case-business-status", "code": "nope"}, 404),
        ("CodeSystem/$lookup", {"system": f"{CS}/nope", "code": "x"}, 404),
        ("CodeSystem/$lookup", {"system": SCT, "code": "999999"}, 404),
        ("CodeSystem/$lookup", {"system": f"{CS}/case-business-status", "code": "x",
                                "version": "7"}, 404),
        ("CodeSystem/nope/$lookup", {"code": "x"}, 404),
        ("CodeSystem/$lookup", {"code": "cancer"}, 400),
        ("CodeSystem/$lookup", {"system": SCT}, 400),
        ("CodeSystem/case-business-status/$lookup", {"code": "failed", "system": SCT}, 400),
    ],
)  # fmt: skip
def test_lookup_refuses(
    world: dict[str, Any], path: str, query: dict[str, str], status: int
) -> None:
    issue = error(get(world, path, **query), status)
    if status == 404:
        assert issue["code"] == "not-found"


# --------------------------------------------------------------------------------- $translate
def matches(params: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    out = []
    for p in params["parameter"]:
        if p["name"] == "match":
            parts = {q["name"]: q for q in p["part"]}
            concept = parts.get("concept", {}).get("valueCoding", {})
            out.append((parts["equivalence"]["valueCode"], concept.get("code"),
                        concept.get("display")))  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        (ICD10, "C18.7", [("wider", "cancer", "Cancer")]),  # subcode of a mapped category
        (ICD10, "C18", [("wider", "cancer", "Cancer")]),
        (ICD10, "I21.0", [("wider", "heart-attack", "Heart attack")]),
        ("http://hl7.org/fhir/sid/icd-10-cm", "N18.6", [("equivalent", "kidney-failure",
                                                         "Kidney failure")]),
    ],
)  # fmt: skip
def test_translate_icd10_to_covered_condition(
    world: dict[str, Any], system: str, code: str, expected: list[Any]
) -> None:
    out = ok(get(world, "ConceptMap/icd10-to-covered-serious-conditions/$translate",
                 system=system, code=code))  # fmt: skip
    assert value(out, "result") is True
    assert [(e, c) for e, c, _ in matches(out)] == [(e, c) for e, c, _ in expected]


@pytest.mark.parametrize("code", ["C44", "C44.9", "D05.1", "J45"])
def test_translate_icd10_exclusions_have_no_match(world: dict[str, Any], code: str) -> None:
    out = ok(get(world, "ConceptMap/$translate", url=f"{CM}/icd10-to-covered-serious-conditions",
                 system=ICD10, code=code))  # fmt: skip
    assert value(out, "result") is False
    assert matches(out) == []


def test_translate_without_url_uses_every_map_from_the_system(world: dict[str, Any]) -> None:
    out = ok(get(world, "ConceptMap/$translate", system=f"{CS}/covered-serious-conditions",
                 code="cancer"))  # fmt: skip
    assert matches(out) == [("equivalent", "363346000", "Malignant neoplastic disease")]


def test_translate_business_status_to_bser(world: dict[str, Any]) -> None:
    out = ok(
        get(
            world,
            "ConceptMap/$translate",
            system=f"{CS}/case-business-status",
            code="report-issued",
            targetsystem="http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS",
        )
    )
    assert [c for _, c, _ in matches(out)] == ["7.0"]


def test_translate_unmatched_mapping_is_false_with_the_mark(world: dict[str, Any]) -> None:
    out = ok(
        get(
            world,
            "ConceptMap/covered-serious-conditions-to-snomed/$translate",
            system=f"{CS}/covered-serious-conditions",
            code="benign-brain-tumour",
        )
    )
    assert value(out, "result") is False
    assert [e for e, _, _ in matches(out)] == ["unmatched"]


def test_translate_by_coding(world: dict[str, Any]) -> None:
    body = parameters({"name": "coding", "valueCoding": {"system": ICD10, "code": "G35"}})
    out = ok(post(world, "ConceptMap/icd10-to-covered-serious-conditions/$translate", body))
    assert [c for _, c, _ in matches(out)] == ["multiple-sclerosis"]


def test_translate_target_system_filters(world: dict[str, Any]) -> None:
    out = ok(get(world, "ConceptMap/$translate", system=ICD10, code="C50.9",
                 targetsystem=SCT))  # fmt: skip
    assert value(out, "result") is False


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("ConceptMap/$translate", {"url": f"{CM}/nope", "system": ICD10, "code": "C18"}, 404),
        ("ConceptMap/nope/$translate", {"system": ICD10, "code": "C18"}, 404),
        ("ConceptMap/$translate", {"code": "C18"}, 400),
        ("ConceptMap/$translate", {"system": ICD10}, 400),
        ("ConceptMap/$translate", {"system": ICD10, "code": "C18", "reverse": "true"}, 400),
    ],
)
def test_translate_refuses(
    world: dict[str, Any], path: str, query: dict[str, str], status: int
) -> None:
    error(get(world, path, **query), status)


# ------------------------------------------------------------------------------ hostile input
def test_an_invalid_value_set_body_is_400_not_500(world: dict[str, Any]) -> None:
    body = {"resourceType": "ValueSet", "status": "active", "compose": {"include": "everything"}}
    error(post(world, "ValueSet/$expand", body), 400)


def test_an_oversized_filter_is_400(world: dict[str, Any]) -> None:
    error(get(world, "ValueSet/$expand", url=CONDITIONS, filter="x" * 5000), 400)


@pytest.mark.parametrize("url", ['{"$ne": 1}', f"{VS}/expert-specialties|", "javascript:1"])
def test_operator_like_urls_are_just_unknown(world: dict[str, Any], url: str) -> None:
    assert error(get(world, "ValueSet/$expand", url=url), 404)["code"] == "not-found"


def test_a_filter_with_regex_characters_is_literal(world: dict[str, Any]) -> None:
    vs = ok(get(world, "ValueSet/$expand", url=f"{VS}/expert-specialties", filter=".*"))
    assert codes(vs) == []
    assert vs["expansion"]["total"] == 0


def test_terminology_needs_a_scope_on_the_definitions(world: dict[str, Any]) -> None:
    r = get(world, "ValueSet/$expand", who="patient-only", url=CONDITIONS)
    assert error(r, 403)["code"] == "forbidden"


@pytest.mark.parametrize("who", ["insurer", "clinic", "specialist"])
def test_every_party_may_use_lookup_translate_and_validate_code(
    world: dict[str, Any], who: str
) -> None:
    ok(get(world, "CodeSystem/$lookup", who=who, system=CBS_URL, code="eligible"))
    ok(get(world, "ConceptMap/$translate", who=who, system=ICD10, code="C18"))
    ok(get(world, "ValueSet/case-business-status/$validate-code", who=who, code="eligible"))


CBS_URL = f"{CS}/case-business-status"
