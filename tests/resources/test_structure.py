"""The R4 structural walker, table-driven (pure: no database)."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from resources.structure import base64_ok, structure, structure_issues, xsd_regex

VALID: list[dict[str, Any]] = [
    {"resourceType": "Patient", "name": [{"given": ["A", None], "_given": [None, {"id": "g"}]}]},
    {"resourceType": "Patient", "_gender": {"extension": [{"url": "http://x", "valueCode": "u"}]}},
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueInteger": 5},
    {"resourceType": "Observation", "_status": {"id": "s"}, "code": {"text": "x"}},
    {
        "resourceType": "Patient",
        "extension": [{"url": "http://x", "valueMeta": {"versionId": "1"}}],
    },
    {"resourceType": "Binary", "contentType": "text/plain", "data": "aGVs bG8h\nAAAA"},
    {"resourceType": "Patient", "birthDate": "2024-02-29", "multipleBirthInteger": 2147483647},
    {"resourceType": "Patient", "text": {"status": "generated", "div": "<div>\u00a0</div>"}},
    {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [
            {
                "linkId": "1",
                "type": "group",
                "item": [
                    {"linkId": "1.1", "type": "string", "text": "nested via contentReference"}
                ],
            }
        ],
    },
    {
        "resourceType": "Parameters",
        "parameter": [{"name": "r", "resource": {"resourceType": "Patient", "active": True}}],
    },
]

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"resourceType": "Patient", "birthDate": "2023-02-29"}, "Patient.birthDate"),
    (
        {"resourceType": "Patient", "multipleBirthInteger": 2147483648},
        "Patient.multipleBirthInteger",
    ),
    ({"resourceType": "Patient", "multipleBirthInteger": 1.5}, "Patient.multipleBirthInteger"),
    ({"resourceType": "Patient", "multipleBirthInteger": True}, "Patient.multipleBirthInteger"),
    ({"resourceType": "Patient", "photo": [{"data": "abc"}]}, "Patient.photo[0].data"),
    ({"resourceType": "Patient", "extension": [{"valueString": "x"}]}, "Patient.extension[0].url"),
    ({"resourceType": "Patient", "name": [{"given": [None]}]}, "Patient.name[0].given[0]"),
    ({"resourceType": "Patient", "name": {"family": "x"}}, "Patient.name"),
    ({"resourceType": "Patient", "gender": ["male"]}, "Patient.gender"),
    ({"resourceType": "Patient", "_gender": "x"}, "Patient._gender"),
    ({"resourceType": "Patient", "_name": {"id": "x"}}, "Patient._name"),
    ({"resourceType": "Patient", "meta": {"project": "x"}}, "Patient.meta.project"),
    ({"resourceType": "Patient", "id": "a\n"}, "Patient.id"),
    ({"resourceType": "Patient", "language": "en\n"}, "Patient.language"),
    ({"resourceType": "Patient", "implicitRules": "http://a b"}, "Patient.implicitRules"),
    (
        {"resourceType": "Patient", "contained": [{"resourceType": "Nope"}]},
        "Patient.contained[0].resourceType",
    ),
    (
        {"resourceType": "Patient", "contained": [{"resourceType": "Patient", "id": "b d"}]},
        "Patient.contained[0].id",
    ),
    ({"resourceType": "Patient", "url": "x"}, "Patient.url"),
    (
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "valueString": "a",
            "_valueBoolean": {"id": "b"},
        },
        "Observation",
    ),
]


@pytest.mark.parametrize("resource", VALID)
def test_valid(resource: dict[str, Any]) -> None:
    assert structure_issues(resource, resource["resourceType"]) == []


@pytest.mark.parametrize(("resource", "expression"), INVALID)
def test_invalid_names_the_element(resource: dict[str, Any], expression: str) -> None:
    issues = structure_issues(resource, resource["resourceType"])
    assert expression in [path for _, path in issues], issues


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("code", "en\u00a0GB", True),  # U+00A0 is not XML-Schema whitespace
        ("code", "a b", True),
        ("code", "a  b", False),
        ("code", " a", False),
        ("code", "a\tb", True),
        ("uri", "urn:x\u2028y", True),
        ("uri", "urn:x y", False),
        ("uri", "urn:x\n", False),  # Python's "$" would let a final newline through
        ("id", "abc\n", False),
    ],
)
def test_primitive_regexes_have_xml_schema_whitespace(name: str, value: str, ok: bool) -> None:
    assert structure().primitives[name].matches(value) is ok


def test_string_pattern_accepts_any_character() -> None:
    assert xsd_regex("[ \\r\\n\\t\\S]+") is None


def test_base64_check_equals_the_r4_regex() -> None:
    regex = re.compile(r"([ \t\n\r]*([0-9a-zA-Z\+/=]){4}[ \t\n\r]*)+")
    rnd = random.Random(4)
    alphabet = "ab=+/ \n\t!\x0b\u00e9"
    for _ in range(5000):
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 13)))
        assert base64_ok(s) is (regex.fullmatch(s) is not None), repr(s)


def test_every_element_type_resolves() -> None:
    s = structure()
    for td in s.types.values():
        for el in td.by_json.values():
            for tname in el.types.values():
                assert tname in s.primitives or tname in s.types or tname == "Resource"


def test_issue_count_is_bounded_for_hostile_input() -> None:
    body = {"resourceType": "Patient", "name": [{"family": i} for i in range(1000)]}
    assert len(structure_issues(body, "Patient")) == 100
