"""Pure tests of the operation input parsing (server/operations/parameters.py)."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import FhirError
from server.operations.parameters import (
    check_query_on_post,
    from_body,
    from_query,
    from_resource_body,
)

DECLARED: dict[str, dict[str, Any]] = {
    "count": {"name": "count", "use": "in", "min": 0, "max": "1", "type": "integer"},
    "flag": {"name": "flag", "use": "in", "min": 0, "max": "1", "type": "boolean"},
    "day": {"name": "day", "use": "in", "min": 0, "max": "1", "type": "date"},
    "at": {"name": "at", "use": "in", "min": 0, "max": "1", "type": "instant"},
    "code": {"name": "code", "use": "in", "min": 0, "max": "*", "type": "code"},
    "ref": {"name": "ref", "use": "in", "min": 0, "max": "1", "type": "Reference"},
    "patient": {"name": "patient", "use": "in", "min": 0, "max": "1", "type": "Patient"},
    "group": {"name": "group", "use": "in", "min": 0, "max": "1"},
}
REQUIRED = {"must": {"name": "must", "use": "in", "min": 1, "max": "1", "type": "string"}}


@pytest.mark.parametrize(
    ("items", "name", "expected"),
    [
        ([("count", "5")], "count", [5]),
        ([("count", "-2")], "count", [-2]),
        ([("flag", "true")], "flag", [True]),
        ([("flag", "false")], "flag", [False]),
        ([("day", "2026-11-25")], "day", ["2026-11-25"]),
        ([("day", "2026")], "day", ["2026"]),
        ([("at", "2026-11-25T10:00:00Z")], "at", ["2026-11-25T10:00:00Z"]),
        ([("code", "a"), ("code", "b")], "code", ["a", "b"]),
        ([("ref", "Patient/1")], "ref", [{"reference": "Patient/1"}]),
    ],
)
def test_query_values_are_typed(
    items: list[tuple[str, str]], name: str, expected: list[Any]
) -> None:
    assert from_query(items, DECLARED).all(name) == expected


@pytest.mark.parametrize(
    "items",
    [
        [("count", "five")],
        [("count", "1" * 12)],
        [("flag", "yes")],
        [("day", "2026-13-01")],
        [("at", "2026-11-25")],
        [("code", "has space ")],
        [("code", "")],
        [("patient", "Patient/1")],  # resources cannot come from a URL
        [("group", "x")],  # nor parts
        [("unknown", "1")],
        [("count", "1"), ("count", "2")],
        [("_page", "a"), ("_page", "b")],
        [("code", "x" * 3000)],
    ],
)
def test_bad_query_values_are_400(items: list[tuple[str, str]]) -> None:
    with pytest.raises(FhirError) as exc:
        from_query(items, DECLARED)
    assert exc.value.status == 400


def test_page_token_is_a_control_value() -> None:
    params = from_query([("_page", "tok"), ("_format", "json")], DECLARED)
    assert params.control == {"_page": "tok"}
    assert params.values == {}


def test_required_parameter_missing_is_400() -> None:
    with pytest.raises(FhirError) as exc:
        from_query([], REQUIRED)
    assert exc.value.issues[0].code == "required"


@pytest.mark.parametrize(
    ("param", "name", "expected"),
    [
        ({"name": "count", "valueInteger": 3}, "count", 3),
        (
            {"name": "ref", "valueReference": {"reference": "Patient/1"}},
            "ref",
            {"reference": "Patient/1"},
        ),
        (
            {"name": "patient", "resource": {"resourceType": "Patient", "id": "1"}},
            "patient",
            {"resourceType": "Patient", "id": "1"},
        ),
        (
            {"name": "group", "part": [{"name": "x", "valueString": "y"}]},
            "group",
            [{"name": "x", "valueString": "y"}],
        ),
    ],
)
def test_body_values(param: dict[str, Any], name: str, expected: Any) -> None:
    body = {"resourceType": "Parameters", "parameter": [param]}
    assert from_body(body, DECLARED).first(name) == expected


@pytest.mark.parametrize(
    "param",
    [
        {"name": "count", "valueString": "3"},
        {
            "name": "patient",
            "resource": {
                "resourceType": "Observation",
                "id": "1",
                "status": "final",
                "code": {"text": "x"},
            },
        },
        {"name": "group", "valueString": "y"},
        {"name": "unknown", "valueString": "y"},
    ],
)
def test_bad_body_values_are_400(param: dict[str, Any]) -> None:
    with pytest.raises(FhirError) as exc:
        from_body({"resourceType": "Parameters", "parameter": [param]}, DECLARED)
    assert exc.value.status == 400


def test_query_on_post_is_refused_except_formatting() -> None:
    check_query_on_post([("_format", "json"), ("_pretty", "true")])
    with pytest.raises(FhirError):
        check_query_on_post([("count", "1")])


def test_a_bare_resource_body_is_the_one_resource_parameter() -> None:
    patient = {"resourceType": "Patient", "id": "1"}
    params = from_resource_body(patient, DECLARED, [("count", "2")])
    assert params.first("patient") == patient
    assert params.first("count") == 2


def test_a_bare_resource_of_the_wrong_type_is_400() -> None:
    with pytest.raises(FhirError) as exc:
        from_resource_body({"resourceType": "Observation"}, DECLARED, [])
    assert exc.value.status == 400


def test_a_bare_resource_needs_exactly_one_resource_parameter() -> None:
    two = {**DECLARED, "other": {"name": "other", "use": "in", "type": "Resource"}}
    with pytest.raises(FhirError) as exc:
        from_resource_body({"resourceType": "Patient"}, two, [])
    assert exc.value.status == 400
    with pytest.raises(FhirError):
        from_resource_body({"resourceType": "Patient"}, REQUIRED, [])
