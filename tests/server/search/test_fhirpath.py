"""Interpreted branches answered without fhirpathpy when the element they read is absent must
select exactly what running them selects (pure, table-driven, plus the demo and generated
corpus)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.search import fhirpath
from server.search.fhirpath import (
    branches,
    evaluate,
    needed_keys,
    read_element,
    reference_type,
)
from server.search.index import indexable_params
from tests.server.search.test_pathwalk import corpus


@pytest.mark.parametrize(
    ("resource_type", "expression", "needs"),
    [
        ("Patient", "Patient.telecom.where(system='email')", ("telecom", "_telecom")),
        (
            "Patient",
            "Patient.deceased as dateTime",
            ("deceasedBoolean", "deceasedDateTime", "_deceasedBoolean", "_deceasedDateTime"),
        ),
        ("Bundle", "Bundle.entry[0].resource", ("entry", "_entry")),
        ("Observation", "(Observation.value as CodeableConcept).text", "valueCodeableConcept"),
        ("Condition", "Condition.abatement.as(Age)", "abatementAge"),
        # a step that answers on an empty collection: always evaluated
        ("Patient", "Patient.deceased.exists() and Patient.deceased != false", None),
        ("Patient", "Patient.name.first()", None),
        ("Patient", "Patient.name.where(given.exists())", None),  # nested call: not proven
        ("Observation", "Observation", None),
        ("Observation", "Patient.name.where(use='official')", None),  # another type's branch
    ],
)
def test_which_branches_need_their_first_element(
    resource_type: str, expression: str, needs: tuple[str, ...] | str | None
) -> None:
    found = needed_keys(resource_type, expression)
    if isinstance(needs, str):
        assert found is not None and needs in found
    else:
        assert found == needs


def _unguarded(resource_type: str, expression: str, resource: dict[str, Any]) -> list[Any]:
    nodes: list[Any] = []
    for branch in branches(resource_type, expression):
        try:
            found = branch.fn(resource)
        except Exception:  # as evaluate does: an expression that raises selects nothing
            continue
        if branch.target:
            found = [n for n in found if reference_type(n) == branch.target]
        nodes.extend(found)
    return nodes


def test_skipped_branches_select_what_running_them_selects_on_demo_and_generated_data() -> None:
    skipped = 0
    for resource in corpus():
        rtype = resource["resourceType"]
        for param in indexable_params(rtype).values():
            assert param.expression is not None
            expected = _unguarded(rtype, param.expression, resource)
            assert evaluate(rtype, param.expression, resource) == expected, (param.code, rtype)
            skipped += sum(
                1
                for b in fhirpath.branches(rtype, param.expression)
                if b.needs is not None and not any(k in resource for k in b.needs)
            )
    assert skipped > 1000


@pytest.mark.parametrize(
    ("resource_type", "expression", "element"),
    [
        ("Patient", "Patient.deceased.exists() and Patient.deceased != false", "deceased"),
        ("Patient", "Patient.deceased as dateTime", "deceased"),
        ("Condition", "Condition.abatement.as(Age)", "abatement"),
        ("Patient", "Patient.link.other.exists()", "link"),
        ("Patient", "Patient.name.exists() and Patient.deceased != false", None),  # two elements
        ("Patient", "Patient.deceased.exists() and active", None),  # a bare root identifier
        ("Patient", "descendants().exists()", None),  # a function on the root
        ("Patient", "Patient.deceased.exists() and %resource.active", None),
        ("Patient", "Patient.name.where($this.given = 'x')", None),
        ("Patient", "Patient.telecom.where(system='email')", None),  # `system` is bare
        ("Observation", "Observation", None),
    ],
)
def test_which_branches_read_one_element(
    resource_type: str, expression: str, element: str | None
) -> None:
    assert read_element(resource_type, expression) == element


@pytest.mark.parametrize(
    "deceased",
    [
        {},
        {"deceasedBoolean": True},
        {"deceasedBoolean": False},
        {"deceasedDateTime": "2020-02-03"},
        {"_deceasedBoolean": {"extension": [{"url": "urn:x", "valueString": "unknown"}]}},
    ],
)
def test_deceased_is_indexed_as_fhirpathpy_evaluates_it(deceased: dict[str, Any]) -> None:
    patient = {"resourceType": "Patient", "id": "p", **deceased}
    expression = indexable_params("Patient")["deceased"].expression
    assert expression is not None
    assert evaluate("Patient", expression, patient) == _unguarded("Patient", expression, patient)


def test_a_patient_that_does_not_say_it_died_is_found_by_deceased_false(
    client: TestClient,
) -> None:
    for body in ({"resourceType": "Patient"}, {"resourceType": "Patient", "deceasedBoolean": True}):
        assert client.post("/fhir/Patient", json=body).status_code == 201
    bundle = client.get("/fhir/Patient?deceased=false").json()
    assert [e["resource"].get("deceasedBoolean") for e in bundle["entry"]] == [None]
