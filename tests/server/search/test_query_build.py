"""Table-driven tests of stage 1 (parse) and stage 2 (query building): no database."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import FhirError
from server.search import params, query, residual
from server.search.text import SEP, STRING_TOP, sortable_number
from server.search.types import QueryError

T = STRING_TOP
N = sortable_number  # numbers are stored and compared as exact order-preserving text


def build(rtype: str, qs: list[tuple[str, str]]) -> dict[str, Any]:
    req = params.parse(rtype, qs, strict=True)

    def no_io(*_: Any) -> list[str]:
        raise AssertionError("no chain expected")

    return query.build(rtype, req.clauses, no_io, no_io).filter


CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    # token
    ("Observation", "status", "final", {"idx.status": "final"}),
    ("Observation", "status", "final,amended", {"idx.status": {"$in": ["final", "amended"]}}),
    ("Patient", "identifier", "http://x|123", {"idx.identifier": "http://x|123"}),
    ("Patient", "identifier", "|123", {"idx.identifier": "|123"}),
    (
        "Patient",
        "identifier",
        "http://x|",
        {"idx.identifier": {"$gte": "http://x|", "$lt": "http://x|" + T}},
    ),
    ("Patient", "identifier", r"a\|b|c", {"idx.identifier": "a|b|c"}),
    ("Patient", "identifier", r"a\,b", {"idx.identifier": "a,b"}),
    ("Observation", "status:not", "final", {"idx.status": {"$nin": ["final"]}}),
    ("Observation", "status:missing", "true", {"idx.status": None}),
    ("Observation", "code:text", "Gluc", {"idx.code@text": {"$gte": "gluc", "$lt": "gluc" + T}}),
    # string
    ("Patient", "name", "Ada", {"idx.name": {"$gte": "ada", "$lt": "ada" + T}}),
    ("Patient", "name", "Éloïse", {"idx.name": {"$gte": "eloise", "$lt": "eloise" + T}}),
    ("Patient", "name:exact", "Ada", {"idx.name": "ada"}),  # + the @exact re-check
    ("Patient", "name:contains", "a.*", {"idx.name": {"$regex": r"a\.\*"}}),
    ("Patient", "family:missing", "false", {"idx.family": {"$exists": True}}),
    # date
    (
        "Patient",
        "birthdate",
        "1970",
        {
            "idx.birthdate@lo": {
                "$gte": "1970-01-01T00:00:00.000Z",
                "$lte": "1970-12-31T23:59:59.999Z",
            },
        },
    ),
    (
        "Patient",
        "birthdate",
        "1970-03",
        {
            "idx.birthdate@lo": {
                "$gte": "1970-03-01T00:00:00.000Z",
                "$lte": "1970-03-31T23:59:59.999Z",
            },
        },
    ),
    (
        "Patient",
        "birthdate",
        "eq1970-03-15",
        {
            "idx.birthdate@lo": {
                "$gte": "1970-03-15T00:00:00.000Z",
                "$lte": "1970-03-15T23:59:59.999Z",
            },
        },
    ),
    ("Patient", "birthdate", "gt1970", {"idx.birthdate@hi": {"$gt": "1970-12-31T23:59:59.999Z"}}),
    ("Patient", "birthdate", "ge1970", {"idx.birthdate@hi": {"$gte": "1970-01-01T00:00:00.000Z"}}),
    (
        "Patient",
        "birthdate",
        "lt1970-03",
        {"idx.birthdate@lo": {"$lt": "1970-03-01T00:00:00.000Z"}},
    ),
    (
        "Patient",
        "birthdate",
        "le1970-03",
        {"idx.birthdate@lo": {"$lte": "1970-03-31T23:59:59.999Z"}},
    ),
    ("Patient", "birthdate", "sa1970", {"idx.birthdate@lo": {"$gt": "1970-12-31T23:59:59.999Z"}}),
    ("Patient", "birthdate", "eb1970", {"idx.birthdate@hi": {"$lt": "1970-01-01T00:00:00.000Z"}}),
    (
        "Observation",
        "date",
        "2020-01-01T10:00+02:00",
        {
            "idx.date@lo": {
                "$gte": "2020-01-01T08:00:00.000Z",
                "$lte": "2020-01-01T08:00:59.999Z",
            },
        },
    ),
    (
        "Observation",
        "date",
        "gt2020-01-01T10:00:00Z",
        {"idx.date@hi": {"$gt": "2020-01-01T10:00:00.999Z"}},
    ),
    (
        "Observation",
        "date",
        "ne2020",
        {"idx.date@eq": {"$ne": "2020"}, "idx.date@lo": {"$exists": True}},
    ),
    # number / quantity
    (
        "RiskAssessment",
        "probability",
        "0.5",
        {"idx.probability": {"$gte": N(0.45), "$lt": N(0.55)}},
    ),
    ("RiskAssessment", "probability", "gt0.5", {"idx.probability": {"$gt": N(0.5)}}),
    ("RiskAssessment", "probability", "le100", {"idx.probability": {"$lte": N(100)}}),
    (
        "RiskAssessment",
        "probability",
        "ap100",
        {"idx.probability": {"$gte": N(90), "$lte": N(110)}},
    ),
    ("Observation", "value-quantity", "lt5", {"idx.value-quantity": {"$lt": N(5)}}),
    (
        "Observation",
        "value-quantity",
        "gt5.4|http://unitsofmeasure.org|mg",
        {
            "idx.value-quantity@u": {
                "$gt": "http://unitsofmeasure.org|mg" + SEP + sortable_number(5.4),
                "$lt": "http://unitsofmeasure.org|mg" + SEP + T,
            }
        },
    ),
    # reference
    ("Observation", "subject", "Patient/1", {"idx.subject": "Patient/1"}),
    ("Observation", "subject:Patient", "1", {"idx.subject": "Patient/1"}),
    ("Observation", "patient", "1", {"idx.patient": "Patient/1"}),
    ("Observation", "subject:identifier", "http://x|9", {"idx.subject@id": "http://x|9"}),
    (
        "Observation",
        "subject",
        "http://other/fhir/Patient/1",
        {"idx.subject": {"$in": ["http://other/fhir/Patient/1", "Patient/1"]}},
    ),
    # uri
    ("ValueSet", "url", "http://a/b", {"idx.url": "http://a/b"}),
    (
        "ValueSet",
        "url:below",
        "http://a/",
        {"idx.url": {"$gte": "http://a/", "$lt": "http://a/" + T}},
    ),
    (
        "ValueSet",
        "url:above",
        "http://a/b/c",
        {"idx.url": {"$in": ["http://a/b/c", "http://a/b", "http://a"]}},
    ),
    # special
    ("Patient", "_id", "a1", {"_id": "a1"}),
    ("Patient", "_id", "a1,b2", {"_id": {"$in": ["a1", "b2"]}}),
    ("Patient", "_tag", "http://t|x", {"idx._tag": "http://t|x"}),
    (
        "Patient",
        "_lastUpdated",
        "2020",
        {
            "idx._lastUpdated@lo": {
                "$gte": "2020-01-01T00:00:00.000Z",
                "$lte": "2020-12-31T23:59:59.999Z",
            },
        },
    ),
    ("Patient", "_profile", "http://p", {"idx._profile": "http://p"}),
]


@pytest.mark.parametrize(("rtype", "name", "value", "expected"), CASES)
def test_single_parameter_filter(
    rtype: str, name: str, value: str, expected: dict[str, Any]
) -> None:
    assert build(rtype, [(name, value)]) == expected


def test_composite_token_and_quantity() -> None:
    got = build("Observation", [("code-value-quantity", "http://loinc.org|1-1$gt5")])
    ((field, cond),) = got.items()
    assert field == "idx.code-value-quantity"
    assert cond["$gt"] == "http://loinc.org|1-1\x1e\x1d" + sortable_number(5)


def plan(rtype: str, qs: list[tuple[str, str]]) -> query.Plan:
    req = params.parse(rtype, qs, strict=True)
    return query.build(rtype, req.clauses, lambda *a: [], lambda *a: [])


def test_and_sends_the_most_selective_clause_to_the_database() -> None:
    p = plan("Patient", [("gender", "female"), ("family", "Ok")])
    assert p.filter == {"idx.family": {"$gte": "ok", "$lt": "ok" + T}}
    assert {"idx.gender": "female"} in p.residual


def test_identifier_drives_over_status() -> None:
    p = plan("Observation", [("status", "final"), ("subject", "Patient/1"), ("code", "x")])
    assert p.filter == {"idx.subject": "Patient/1"}
    assert p.residual == [{"idx.status": "final"}, {"idx.code": "x"}]


def test_missing_true_yields_to_a_selective_clause() -> None:
    p = plan("Observation", [("subject:missing", "true"), ("code", "x")])
    assert p.filter == {"idx.code": "x"}
    assert p.residual == [{"idx.subject": None}]


def test_missing_true_is_rechecked_as_absent() -> None:
    assert residual.matches({"idx.subject": None}, {"idx": {"code": ["x"]}})
    assert not residual.matches({"idx.subject": None}, {"idx": {"subject": ["Patient/1"]}})


def test_repeated_parameter_is_and() -> None:
    p = plan("Patient", [("given", "a"), ("given", "b")])
    fields = [next(iter(f)) for f in [p.filter, *p.residual]]
    assert fields.count("idx.given") >= 2


def test_a_date_eq_drives_on_its_lo_range_and_rechecks_the_unit() -> None:
    p = plan("Patient", [("birthdate", "1970-03")])
    assert p.filter == {
        "idx.birthdate@lo": {"$gte": "1970-03-01T00:00:00.000Z", "$lte": "1970-03-31T23:59:59.999Z"}
    }
    assert {"idx.birthdate@eq": "1970-03"} in p.residual


def test_unindexable_clauses_alone_go_to_the_database() -> None:
    p = plan("Patient", [("name:contains", "x")])
    assert p.filter == {"idx.name": {"$regex": "x"}}


@pytest.mark.parametrize(
    ("rtype", "qs", "expected"),
    [
        (
            "Observation",
            [("patient", "Patient/1"), ("status", "final")],
            {"idx.patient+status": "Patient/1" + SEP + "final"},
        ),
        (
            "Observation",
            [("code", "http://loinc.org|1-1"), ("date", "ge2020")],
            {
                "idx.code+date@hi": {
                    "$gte": "http://loinc.org|1-1" + SEP + "2020-01-01T00:00:00.000Z",
                    "$lt": "http://loinc.org|1-1" + SEP + T,
                }
            },
        ),
        (
            "Observation",
            [("code", "1-1"), ("date", "2020-05")],
            # eq drives on the @lo range it implies; @eq itself is re-checked
            {
                "idx.code+date@lo": {
                    "$gte": "1-1" + SEP + "2020-05-01T00:00:00.000Z",
                    "$lte": "1-1" + SEP + "2020-05-31T23:59:59.999Z",
                }
            },
        ),
    ],
)
def test_common_pairs_use_the_compound_field(
    rtype: str, qs: list[tuple[str, str]], expected: dict[str, Any]
) -> None:
    assert build(rtype, qs) == expected


def test_chain_resolves_through_callback() -> None:
    req = params.parse("Observation", [("subject:Patient.name", "ada")], strict=True)
    seen: list[tuple[str, Any]] = []

    def resolve(t: str, f: dict[str, Any]) -> list[str]:
        seen.append((t, f))
        return ["p1", "p2"]

    plan = query.build("Observation", req.clauses, resolve, lambda *a: [])
    assert seen == [("Patient", {"idx.name": {"$gte": "ada", "$lt": "ada" + T}})]
    assert plan.filter == {"idx.subject": {"$in": ["Patient/p1", "Patient/p2"]}}


def test_has_resolves_referenced_keys() -> None:
    req = params.parse("Patient", [("_has:Observation:patient:code", "1-1")], strict=True)

    def referenced(t: str, f: dict[str, Any], code: str) -> list[str]:
        assert (t, f, code) == ("Observation", {"idx.code": "1-1"}, "patient")
        return ["Patient/a", "Group/x", "Patient/b"]

    plan = query.build("Patient", req.clauses, lambda *a: [], referenced)
    assert plan.filter == {"_id": {"$in": ["a", "b"]}}


def test_two_sided_ranges_are_rechecked() -> None:
    req = params.parse("Patient", [("name", "ada")], strict=True)
    plan = query.build("Patient", req.clauses, lambda *a: [], lambda *a: [])
    assert plan.residual == [plan.filter]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("nonsense", "1"),
        ("$where", "1"),
        ("idx.name", "x"),
        ("name:regex", "x"),
        ("name.$ne", "x"),
        ("birthdate", "yesterday"),
        ("birthdate", "zz1970"),
        ("identifier", "a|b|c"),
        ("subject:Nope", "1"),
        ("general-practitioner", "Patient/../../x"),
        ("_count", "-1"),
        ("_sort", "nonsense"),
        ("_summary", "maybe"),
        ("_include", "Observation:nonsense"),
        ("_has:Observation:code:status", "final"),
        ("_elements", "a.$b"),
    ],
)
def test_bad_parameters_are_400_when_strict(name: str, value: str) -> None:
    with pytest.raises(FhirError) as err:
        params.parse("Patient", [(name, value)], strict=True)
    assert err.value.status == 400


def test_bad_parameters_are_warnings_when_lenient() -> None:
    req = params.parse("Patient", [("nonsense", "1"), ("name", "ada")])
    assert [c.code for c in req.clauses] == ["name"]
    assert req.issues[0].severity == "warning" and "nonsense" in req.issues[0].diagnostics


def test_values_never_become_operators() -> None:
    p = plan("Patient", [("name", '{"$gt": ""}'), ("identifier", "$ne")])
    assert p.filter == {"idx.identifier": "$ne"}
    assert p.residual[0]["idx.name"]["$gte"] == '{"$gt": ""}'


def test_result_parameters() -> None:
    req = params.parse(
        "Observation",
        [
            ("_count", "5000"),
            ("_sort", "-date,status"),
            ("_include:iterate", "Observation:subject:Patient"),
            ("_revinclude", "Provenance:target"),
            ("_summary", "data"),
            ("_total", "accurate"),
            ("_elements", "status,code"),
        ],
        max_count=1000,
    )
    assert req.count == 1000
    assert [(s.code, s.descending) for s in req.sort] == [("date", True), ("status", False)]
    assert req.includes[0].iterate and req.includes[0].target == "Patient"
    assert req.revincludes[0].source == "Provenance"
    assert (req.summary, req.total, req.elements) == ("data", "accurate", ["status", "code"])
    assert query.sort_spec("Observation", req.sort) == [
        ("idx.date@hi", -1),
        ("idx.status", 1),
        ("_id", 1),
    ]


def test_query_error_is_value_error() -> None:
    assert issubclass(QueryError, ValueError)


def test_too_many_chains_or_includes_are_refused() -> None:
    chains = [("subject:Patient.name", str(i)) for i in range(6)]
    with pytest.raises(FhirError):
        params.parse("Observation", chains, strict=True)
    incs = [("_include", "Observation:subject")] * 21
    with pytest.raises(FhirError):
        params.parse("Observation", incs, strict=True)
