"""Decimals come back exactly as sent (FHIR datatypes.html#decimal: precision is significant).

Every test sends raw JSON text and reads raw JSON text: a client library that parses numbers into
floats would hide exactly the loss these tests are about (``100.00`` → ``100.0``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

FHIR_JSON = {"Content-Type": "application/fhir+json"}


class Num(str):
    """A number as the literal text the server wrote."""


def exact(text: str | bytes) -> Any:
    """Parse a response keeping every number as its literal text (a ``Num``)."""
    return json.loads(text, parse_float=Num, parse_int=Num)


def observation(value: str) -> str:
    """An Observation whose valueQuantity.value is the literal number text ``value``."""
    return (
        '{"resourceType":"Observation","status":"final",'
        '"code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},'
        '"valueQuantity":{"value":' + value + ',"unit":"in","system":"http://unitsofmeasure.org",'
        '"code":"[in_i]"}}'
    )


def post(client: TestClient, rtype: str, text: str, **headers: str) -> Any:
    r = client.post(f"/fhir/{rtype}", content=text, headers={**FHIR_JSON, **headers})
    assert r.status_code == 201, r.text
    return r


def quantity_value(body: Any) -> str:
    value = body["valueQuantity"]["value"]
    assert isinstance(value, Num)
    return str(value)


EXACT_VALUES = [
    "0.0000",
    "100.00",
    "1.50",
    "66.899999999999991",
    "-0.5",
    "0.0000001",
    "-0",
    "1.0",
    "9007199254740993",  # 2**53 + 1: no double holds it
    "9223372036854775807",  # int64 max (BSON int64)
    "9223372036854775808",  # beyond int64: stored as Decimal128
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1234567890123456789012345678.901234",  # 34 significant digits, Decimal128's maximum
]


@pytest.mark.parametrize("value", EXACT_VALUES)
def test_create_returns_the_decimal_as_sent(client: TestClient, value: str) -> None:
    r = post(client, "Observation", observation(value))
    assert quantity_value(exact(r.text)) == value


@pytest.mark.parametrize("value", EXACT_VALUES)
def test_read_returns_the_decimal_as_sent(client: TestClient, value: str) -> None:
    rid = post(client, "Observation", observation(value)).json()["id"]
    r = client.get(f"/fhir/Observation/{rid}")
    assert r.status_code == 200
    assert quantity_value(exact(r.text)) == value


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("1e2", "1E+2"),  # one significant digit: "100" would claim three
        ("1.0E+3", "1.0E+3"),
        ("1.50e1", "15.0"),
        ("1e-7", "0.0000001"),
        ("-2.5E-3", "-0.0025"),
        ("100e-2", "1.00"),
    ],
)
def test_exponent_input_keeps_value_and_precision(
    client: TestClient, sent: str, returned: str
) -> None:
    """Documented normalisation: plain notation unless the precision ends left of the point."""
    rid = post(client, "Observation", observation(sent)).json()["id"]
    assert quantity_value(exact(client.get(f"/fhir/Observation/{rid}").text)) == returned


@pytest.mark.parametrize(
    "value",
    [
        "1234567890123456789012345678901234.5",  # 35 significant digits
        "1" + "0" * 40 + ".0",
        "1e7000",
        "1e-7000",
    ],
)
def test_a_number_that_cannot_be_stored_exactly_is_refused(client: TestClient, value: str) -> None:
    r = client.post("/fhir/Observation", content=observation(value), headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Observation").json().get("total") == 0


def test_a_string_where_a_decimal_belongs_is_refused(client: TestClient) -> None:
    r = client.post("/fhir/Observation", content=observation('"1.50"'), headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"


def test_vread_and_history_return_each_version_as_sent(client: TestClient) -> None:
    rid = post(client, "Observation", observation("1.50")).json()["id"]
    body = exact(client.get(f"/fhir/Observation/{rid}").text)
    body["valueQuantity"]["value"] = Num("2.500")
    text = json.dumps(body).replace('"2.500"', "2.500")
    r = client.put(f"/fhir/Observation/{rid}", content=text, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert quantity_value(exact(client.get(f"/fhir/Observation/{rid}/_history/1").text)) == "1.50"
    assert quantity_value(exact(client.get(f"/fhir/Observation/{rid}/_history/2").text)) == "2.500"
    history = exact(client.get(f"/fhir/Observation/{rid}/_history").text)
    assert [quantity_value(e["resource"]) for e in history["entry"]] == ["2.500", "1.50"]


def test_an_update_that_only_changes_precision_is_a_new_version(client: TestClient) -> None:
    """1.5 and 1.50 are equal numbers but different FHIR decimals: not an identical update."""
    created = post(client, "Observation", observation("1.5")).json()
    rid = created["id"]
    text = observation("1.50").replace("{", '{"id":"' + rid + '",', 1)
    r = client.put(f"/fhir/Observation/{rid}", content=text, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["versionId"] == "2"
    assert quantity_value(exact(r.text)) == "1.50"


def test_an_identical_update_with_the_same_digits_makes_no_version(client: TestClient) -> None:
    rid = post(client, "Observation", observation("1.50")).json()["id"]
    text = observation("1.50").replace("{", '{"id":"' + rid + '",', 1)
    r = client.put(f"/fhir/Observation/{rid}", content=text, headers=FHIR_JSON)
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "1"


def test_update_with_return_representation_echoes_the_digits(client: TestClient) -> None:
    rid = post(client, "Observation", observation("1.5")).json()["id"]
    text = observation("0.0000").replace("{", '{"id":"' + rid + '",', 1)
    r = client.put(
        f"/fhir/Observation/{rid}",
        content=text,
        headers={**FHIR_JSON, "Prefer": "return=representation"},
    )
    assert quantity_value(exact(r.text)) == "0.0000"


def test_pretty_output_keeps_the_digits(client: TestClient) -> None:
    rid = post(client, "Observation", observation("100.00")).json()["id"]
    r = client.get(f"/fhir/Observation/{rid}?_pretty=true")
    assert '"value": 100.00' in r.text
    assert quantity_value(exact(r.text)) == "100.00"


CLAIM = """{"resourceType":"Claim","status":"active",
 "type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type",
   "code":"professional"}]},
 "use":"claim","patient":{"display":"A. Patient"},"created":"2026-01-05",
 "provider":{"display":"Clinic"},"priority":{"coding":[{"code":"normal"}]},
 "insurance":[{"sequence":1,"focal":true,"coverage":{"display":"Plan"}}],
 "item":[{"sequence":1,"productOrService":{"text":"second opinion"},
   "quantity":{"value":1},"unitPrice":{"value":100.00,"currency":"USD"},
   "factor":1.50,"net":{"value":150.000,"currency":"USD"}}],
 "total":{"value":150.00,"currency":"USD"}}"""

EOB = """{"resourceType":"ExplanationOfBenefit","status":"active",
 "type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type",
   "code":"professional"}]},
 "use":"claim","patient":{"display":"A. Patient"},"created":"2026-01-06",
 "insurer":{"display":"Insurer"},"provider":{"display":"Clinic"},"outcome":"complete",
 "insurance":[{"focal":true,"coverage":{"display":"Plan"}}],
 "total":[{"category":{"coding":[{"code":"submitted"}]},
   "amount":{"value":100.00,"currency":"USD"}},
  {"category":{"coding":[{"code":"benefit"}]},"amount":{"value":80.10,"currency":"USD"}}],
 "payment":{"amount":{"value":80.10,"currency":"USD"}}}"""


def test_claim_money_comes_back_as_sent(client: TestClient) -> None:
    rid = post(client, "Claim", CLAIM).json()["id"]
    body = exact(client.get(f"/fhir/Claim/{rid}").text)
    item = body["item"][0]
    assert (item["unitPrice"]["value"], item["factor"], item["net"]["value"]) == (
        "100.00",
        "1.50",
        "150.000",
    )
    assert body["total"]["value"] == "150.00"


def test_explanation_of_benefit_money_comes_back_as_sent(client: TestClient) -> None:
    rid = post(client, "ExplanationOfBenefit", EOB).json()["id"]
    body = exact(client.get(f"/fhir/ExplanationOfBenefit/{rid}").text)
    assert [t["amount"]["value"] for t in body["total"]] == ["100.00", "80.10"]
    assert body["payment"]["amount"]["value"] == "80.10"


def test_contained_resources_and_extensions_keep_their_digits(client: TestClient) -> None:
    text = (
        '{"resourceType":"Observation","status":"final","code":{"text":"height"},'
        '"contained":[{"resourceType":"Observation","id":"c1","status":"final",'
        '"code":{"text":"weight"},"valueQuantity":{"value":70.250}}],'
        '"hasMember":[{"reference":"#c1"}],'
        '"extension":[{"url":"http://example.org/ext","valueDecimal":0.10}],'
        '"valueQuantity":{"value":66.899999999999991}}'
    )
    rid = post(client, "Observation", text).json()["id"]
    body = exact(client.get(f"/fhir/Observation/{rid}").text)
    assert body["contained"][0]["valueQuantity"]["value"] == "70.250"
    assert body["extension"][0]["valueDecimal"] == "0.10"
    assert body["valueQuantity"]["value"] == "66.899999999999991"


@pytest.mark.parametrize("bundle_type", ["transaction", "batch"])
def test_a_resource_in_a_bundle_keeps_its_digits(client: TestClient, bundle_type: str) -> None:
    text = (
        '{"resourceType":"Bundle","type":"'
        + bundle_type
        + '","entry":[{"resource":'
        + observation("100.00")
        + ',"request":{"method":"POST","url":"Observation"}}]}'
    )
    r = client.post("/fhir", content=text, headers={**FHIR_JSON, "Prefer": "return=representation"})
    assert r.status_code == 200, r.text
    entry = exact(r.text)["entry"][0]
    assert quantity_value(entry["resource"]) == "100.00"
    rid = entry["response"]["location"].split("/")[1]
    assert quantity_value(exact(client.get(f"/fhir/Observation/{rid}").text)) == "100.00"


def test_search_bundle_entries_keep_their_digits(client: TestClient) -> None:
    post(client, "Observation", observation("66.899999999999991"))
    bundle = exact(client.get("/fhir/Observation").text)
    assert [quantity_value(e["resource"]) for e in bundle["entry"]] == ["66.899999999999991"]


@pytest.mark.parametrize("query", ["_elements=valueQuantity", "_summary=true", "_summary=data"])
def test_summary_and_elements_keep_the_digits(client: TestClient, query: str) -> None:
    post(client, "Observation", observation("100.00"))
    bundle = exact(client.get(f"/fhir/Observation?{query}").text)
    assert quantity_value(bundle["entry"][0]["resource"]) == "100.00"


def test_json_patch_replacing_a_decimal_keeps_its_digits(client: TestClient) -> None:
    rid = post(client, "Observation", observation("1.5")).json()["id"]
    r = client.patch(
        f"/fhir/Observation/{rid}",
        content='[{"op":"test","path":"/valueQuantity/value","value":1.50},'
        '{"op":"replace","path":"/valueQuantity/value","value":2.50}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert quantity_value(exact(r.text)) == "2.50"
    assert quantity_value(exact(client.get(f"/fhir/Observation/{rid}").text)) == "2.50"


def test_fhirpath_patch_replacing_a_decimal_keeps_its_digits(client: TestClient) -> None:
    rid = post(client, "Observation", observation("1.5")).json()["id"]
    params = (
        '{"resourceType":"Parameters","parameter":[{"name":"operation","part":['
        '{"name":"type","valueCode":"replace"},'
        '{"name":"path","valueString":"Observation.valueQuantity.value"},'
        '{"name":"value","valueDecimal":0.0000}]}]}'
    )
    r = client.patch(f"/fhir/Observation/{rid}", content=params, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert quantity_value(exact(client.get(f"/fhir/Observation/{rid}").text)) == "0.0000"


def test_a_binary_json_patch_in_a_transaction_keeps_its_digits(client: TestClient) -> None:
    rid = post(client, "Observation", observation("1.5")).json()["id"]
    ops = base64.b64encode(b'[{"op":"replace","path":"/valueQuantity/value","value":9.90}]')
    text = json.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Binary",
                        "contentType": "application/json-patch+json",
                        "data": ops.decode(),
                    },
                    "request": {"method": "PATCH", "url": f"Observation/{rid}"},
                }
            ],
        }
    )
    r = client.post("/fhir", content=text, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert quantity_value(exact(client.get(f"/fhir/Observation/{rid}").text)) == "9.90"
