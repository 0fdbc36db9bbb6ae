"""Validation through HTTP against the real database: what EHRs send is stored exactly, what
R4 forbids is refused with an OperationOutcome naming the element."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.test_crud import FHIR_JSON
from tests.server.test_errors import assert_outcome

# datatypes.html#string: below U+0020 only TAB, LF and CR are allowed.
FORBIDDEN = [c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)]
ACCEPTED = [
    "Sean Stover, BS,\u00a0DVM",  # non-breaking space, as pasted from word processors
    "line\u2028separator",
    "paragraph\u2029separator",
    "emoji \U0001f469\u200d\u2695\ufe0f",
    "ideographic\u3000space",
    "em\u2003space and thin\u2009space",
    "narrow\u202fno-break",
    "tab\tnew\nline\r\n",
    "  leading and trailing  ",
]


def practitioner(display: str) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "name": [{"text": display, "family": "Stover"}]}


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    out = dict(resource)
    out.pop("meta", None)
    return out


def put_and_read(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    url = f"/fhir/{body['resourceType']}/{body['id']}"
    r = client.put(url, content=json.dumps(body), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    got = client.get(url)
    assert got.status_code == 200, got.text
    return got.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("code", FORBIDDEN, ids=[f"U+{c:04X}" for c in FORBIDDEN])
def test_control_character_is_400_naming_the_element(client: TestClient, code: int) -> None:
    body = practitioner(f"ab{chr(code)}cd")
    r = client.post("/fhir/Practitioner", content=json.dumps(body), headers=FHIR_JSON)
    outcome = assert_outcome(r, 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert "Practitioner.name[0].text" in expressions
    assert f"U+{code:04X}" in outcome["issue"][0]["diagnostics"]


def test_control_character_in_a_nested_resource_names_its_path(client: TestClient) -> None:
    body = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": practitioner("x\u0000y")}],
    }
    r = client.post("/fhir/Bundle", content=json.dumps(body), headers=FHIR_JSON)
    outcome = assert_outcome(r, 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert "Bundle.entry[0].resource.name[0].text" in expressions


@pytest.mark.parametrize("text", ACCEPTED)
def test_unicode_string_is_stored_exactly(client: TestClient, text: str) -> None:
    body = practitioner(text) | {"id": "p1"}
    got = put_and_read(client, body)
    assert got["name"][0]["text"] == text


def test_unicode_space_is_still_refused_where_a_code_forbids_whitespace(
    client: TestClient,
) -> None:
    """In XML-Schema terms a code's \\s is space/TAB/CR/LF only, so U+00A0 inside a code is
    a character, not whitespace: accepted; but two plain spaces in a row are not."""
    ok = {"resourceType": "Patient", "id": "c1", "language": "en\u00a0GB"}
    assert put_and_read(client, ok)["language"] == "en\u00a0GB"
    bad = {"resourceType": "Patient", "language": "en  GB"}
    r = client.post("/fhir/Patient", content=json.dumps(bad), headers=FHIR_JSON)
    outcome = assert_outcome(r, 400)
    assert "Patient.language" in outcome["issue"][0]["expression"]


R4_EVIDENCE: dict[str, Any] = {
    "resourceType": "Evidence",
    "id": "ev1",
    "status": "active",
    "name": "StatinsPrimaryPrevention",
    "title": "Statins for primary prevention",
    "exposureBackground": {"reference": "EvidenceVariable/population"},
    "exposureVariant": [{"display": "statin"}],
    "outcome": [{"display": "all-cause mortality"}],
    "topic": [{"text": "cardiology"}],
}
R4_EVIDENCE_VARIABLE: dict[str, Any] = {
    "resourceType": "EvidenceVariable",
    "id": "population",
    "status": "active",
    "type": "dichotomous",
    "characteristic": [
        {
            "description": "adults without cardiovascular disease",
            "definitionCodeableConcept": {"text": "adult, no CVD"},
            "participantEffectivePeriod": {"start": "2020-01-01"},
            "timeFromStart": {"value": 5, "unit": "a"},
            "groupMeasure": "mean",
        }
    ],
}


def test_r4_evidence_variable_is_stored_and_read_back(client: TestClient) -> None:
    assert without_meta(put_and_read(client, R4_EVIDENCE_VARIABLE)) == R4_EVIDENCE_VARIABLE


def test_r4_evidence_is_stored_and_read_back(client: TestClient) -> None:
    put_and_read(client, R4_EVIDENCE_VARIABLE)  # the target of exposureBackground
    assert without_meta(put_and_read(client, R4_EVIDENCE)) == R4_EVIDENCE


def test_r4_extension_with_value_meta_is_stored_and_read_back(client: TestClient) -> None:
    """Valid R4 that the R4B model would refuse (R4B dropped Meta from Extension.value[x])."""
    body = {
        "resourceType": "Patient",
        "id": "ext-meta",
        "extension": [{"url": "http://example.org/source-meta", "valueMeta": {"versionId": "7"}}],
    }
    assert without_meta(put_and_read(client, body)) == body


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        # R4B's Evidence.variableDefinition does not exist in R4
        (
            R4_EVIDENCE | {"variableDefinition": [{"variableRole": {"text": "x"}}]},
            "Evidence.variableDefinition",
        ),
        # R4 requires exposureBackground (min 1); R4B dropped it
        (
            {k: v for k, v in R4_EVIDENCE.items() if k != "exposureBackground"},
            "Evidence.exposureBackground",
        ),
        # R4 requires characteristic.definition[x] (min 1)
        (
            R4_EVIDENCE_VARIABLE | {"characteristic": [{"description": "no definition"}]},
            "EvidenceVariable.characteristic[0].definition[x]",
        ),
        # a choice has one value
        (
            R4_EVIDENCE_VARIABLE
            | {
                "characteristic": [
                    {
                        "definitionCanonical": "http://x/y",
                        "definitionCodeableConcept": {"text": "z"},
                    }
                ]
            },
            "EvidenceVariable.characteristic[0]",
        ),
    ],
    ids=["r4b-only-element", "r4-min-1", "r4-choice-min-1", "choice-exclusive"],
)
def test_r4_invalid_resource_is_refused(
    client: TestClient, body: dict[str, Any], expression: str
) -> None:
    r = client.post(f"/fhir/{body['resourceType']}", content=json.dumps(body), headers=FHIR_JSON)
    outcome = assert_outcome(r, 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert expression in expressions


def test_bundle_entry_is_validated_as_its_own_r4_type(client: TestClient) -> None:
    put_and_read(client, R4_EVIDENCE_VARIABLE)
    body = {
        "resourceType": "Bundle",
        "id": "b-ev",
        "type": "collection",
        "entry": [
            {"fullUrl": "http://x/Evidence/ev1", "resource": R4_EVIDENCE},
            {"fullUrl": "http://x/EvidenceVariable/population", "resource": R4_EVIDENCE_VARIABLE},
        ],
    }
    assert without_meta(put_and_read(client, body)) == body


def test_invalid_contained_resource_names_its_path(client: TestClient) -> None:
    body = {
        "resourceType": "Evidence",
        "status": "active",
        "exposureBackground": {"reference": "#pop"},
        "contained": [{"resourceType": "EvidenceVariable", "id": "pop", "status": "active"}],
    }
    r = client.post("/fhir/Evidence", content=json.dumps(body), headers=FHIR_JSON)
    outcome = assert_outcome(r, 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert "Evidence.contained[0].characteristic" in expressions


def large_collection(target_bytes: int) -> dict[str, Any]:
    """A collection Bundle of realistic lab results, just over ``target_bytes`` of JSON."""
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hb"}]},
        "subject": {"reference": "Patient/p1", "display": "Adaeze\u00a0Okafor"},
        "effectiveDateTime": "2024-01-10T09:10:00Z",
        "valueQuantity": {
            "value": 13.2,
            "unit": "g/dL",
            "system": "http://unitsofmeasure.org",
            "code": "g/dL",
        },
        "note": [{"text": "Sample drawn fasting; \u2028repeat in 3 months \U0001f4c5"}],
    }
    per_entry = len(json.dumps({"fullUrl": "urn:uuid:x", "resource": obs}))
    entries = []
    for i in range(target_bytes // per_entry + 1):
        o = copy.deepcopy(obs)
        o["id"] = f"o{i}"
        entries.append({"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}", "resource": o})
    return {"resourceType": "Bundle", "id": "big", "type": "collection", "entry": entries}


def test_large_collection_bundle_is_stored_and_read_back_equal(client: TestClient) -> None:
    put_and_read(client, {"resourceType": "Patient", "id": "p1"})  # the results' subject
    body = large_collection(3_000_000)
    assert len(json.dumps(body)) > 3_000_000
    assert without_meta(put_and_read(client, body)) == body
