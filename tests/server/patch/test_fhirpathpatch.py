"""FHIRPath Patch over the supported path subset (fhirpatch.html examples and hostile cases)."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import FhirError
from server.patch.fhirpathpatch import apply_fhirpath_patch


def op(type_: str, path: str, **parts: Any) -> dict[str, Any]:
    out: list[dict[str, Any]] = [
        {"name": "type", "valueCode": type_},
        {"name": "path", "valueString": path},
    ]
    for name, value in parts.items():
        if name == "name":
            out.append({"name": "name", "valueString": value})
        elif name in ("index", "source", "destination"):
            out.append({"name": name, "valueInteger": value})
        else:
            out.append({"name": "value", **value})
    return {"name": "operation", "part": out}


def params(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(ops)}


PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "birthDate": "1970-01-01",
    "identifier": [{"system": "s", "value": "1"}, {"system": "t", "value": "2"}],
    "name": [
        {"use": "official", "family": "Doe", "given": ["Jane"]},
        {"use": "nickname", "given": ["JJ"]},
    ],
}

CASES: list[tuple[str, dict[str, Any], Any]] = [
    (
        "replace primitive",
        params(op("replace", "Patient.birthDate", value={"valueDate": "1980-02-02"})),
        lambda r: r["birthDate"] == "1980-02-02",
    ),
    (
        "add single element",
        params(op("add", "Patient", name="gender", value={"valueCode": "female"})),
        lambda r: r["gender"] == "female",
    ),
    (
        "add to repeating appends",
        params(
            op(
                "add",
                "Patient.name.where(use='official')",
                name="given",
                value={"valueString": "Ann"},
            )
        ),
        lambda r: r["name"][0]["given"] == ["Jane", "Ann"],
    ),
    (
        "add repeating creates list",
        params(
            op(
                "add",
                "Patient",
                name="generalPractitioner",
                value={"valueReference": {"reference": "Practitioner/x"}},
            )
        ),
        lambda r: r["generalPractitioner"] == [{"reference": "Practitioner/x"}],
    ),
    (
        "add complex from parts",
        params(
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "Patient"},
                    {"name": "name", "valueString": "contact"},
                    {
                        "name": "value",
                        "part": [
                            {"name": "name", "valueHumanName": {"text": "Bob"}},
                            {"name": "gender", "valueCode": "male"},
                        ],
                    },
                ],
            }
        ),
        lambda r: r["contact"] == [{"name": {"text": "Bob"}, "gender": "male"}],
    ),
    (
        "delete list item by index",
        params(op("delete", "Patient.identifier[0]")),
        lambda r: r["identifier"] == [{"system": "t", "value": "2"}],
    ),
    (
        "delete by where",
        params(op("delete", "Patient.identifier.where(system='t')")),
        lambda r: r["identifier"] == [{"system": "s", "value": "1"}],
    ),
    (
        "delete last item drops the array",
        params(op("delete", "Patient.name[1].given[0]")),
        lambda r: "given" not in r["name"][1],
    ),
    ("delete nothing is fine", params(op("delete", "Patient.gender")), lambda r: "gender" not in r),
    (
        "insert",
        params(
            op("insert", "Patient.identifier", index=1, value={"valueIdentifier": {"value": "mid"}})
        ),
        lambda r: [i["value"] for i in r["identifier"]] == ["1", "mid", "2"],
    ),
    (
        "insert into absent list",
        params(
            op(
                "insert",
                "Patient.telecom",
                index=0,
                value={"valueContactPoint": {"system": "phone", "value": "1"}},
            )
        ),
        lambda r: r["telecom"] == [{"system": "phone", "value": "1"}],
    ),
    (
        "move",
        params(op("move", "Patient.identifier", source=0, destination=1)),
        lambda r: [i["value"] for i in r["identifier"]] == ["2", "1"],
    ),
    (
        "first() and nested",
        params(op("replace", "Patient.name.first().family", value={"valueString": "Roe"})),
        lambda r: r["name"][0]["family"] == "Roe",
    ),
    (
        "where with and",
        params(
            op(
                "replace",
                "Patient.identifier.where(system='s' and value='1').value",
                value={"valueString": "9"},
            )
        ),
        lambda r: r["identifier"][0]["value"] == "9",
    ),
]


@pytest.mark.parametrize(("name", "patch", "check"), CASES, ids=[c[0] for c in CASES])
def test_apply(name: str, patch: dict[str, Any], check: Any) -> None:
    result = apply_fhirpath_patch(PATIENT, patch)
    assert check(result), result


FAILURES: list[tuple[str, Any, int]] = [
    ("not Parameters", {"resourceType": "Patient"}, 400),
    ("unknown type", params(op("frobnicate", "Patient.birthDate")), 400),
    (
        "missing path",
        params({"name": "operation", "part": [{"name": "type", "valueCode": "delete"}]}),
        400,
    ),
    ("wrong root", params(op("delete", "Observation.status")), 400),
    ("unsupported function", params(op("delete", "Patient.name.exists()")), 400),
    ("unsupported where operator", params(op("delete", "Patient.name.where(use != 'x')")), 400),
    (
        "replace needs one match",
        params(op("replace", "Patient.identifier.value", value={"valueString": "x"})),
        422,
    ),
    (
        "replace of nothing",
        params(op("replace", "Patient.gender", value={"valueCode": "male"})),
        422,
    ),
    ("delete several", params(op("delete", "Patient.identifier")), 422),
    (
        "add single twice",
        params(op("add", "Patient", name="birthDate", value={"valueDate": "2000-01-01"})),
        422,
    ),
    (
        "insert out of range",
        params(
            op("insert", "Patient.identifier", index=5, value={"valueIdentifier": {"value": "x"}})
        ),
        422,
    ),
    (
        "insert into single element",
        params(op("insert", "Patient.birthDate", index=0, value={"valueDate": "2000-01-01"})),
        422,
    ),
    ("move out of range", params(op("move", "Patient.identifier", source=0, destination=7)), 422),
    ("add without value", params(op("add", "Patient", name="gender")), 400),
    (
        "negative index",
        params(op("insert", "Patient.identifier", index=-1, value={"valueString": "x"})),
        400,
    ),
]


@pytest.mark.parametrize(("name", "patch", "status"), FAILURES, ids=[c[0] for c in FAILURES])
def test_failures(name: str, patch: Any, status: int) -> None:
    with pytest.raises(FhirError) as info:
        apply_fhirpath_patch(PATIENT, patch)
    assert info.value.status == status


def test_input_is_not_mutated() -> None:
    before = repr(PATIENT)
    apply_fhirpath_patch(PATIENT, params(op("delete", "Patient.identifier[0]")))
    assert repr(PATIENT) == before
