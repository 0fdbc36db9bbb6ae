"""Value set membership over our own definitions (three-valued)."""

from __future__ import annotations

import pytest

from profiles.conformance import conformance_resources
from profiles.terminology import in_value_set, property_values

B = "https://consilium.health/fhir"
SCT = "http://snomed.info/sct"
CONDITIONS = f"{B}/ValueSet/covered-serious-conditions"
STATUS = f"{B}/ValueSet/case-business-status"
REJECTION = f"{B}/ValueSet/case-rejection-reason"
CBS = f"{B}/CodeSystem/case-business-status"


@pytest.mark.parametrize(
    ("vs", "system", "code", "expected"),
    [
        (CONDITIONS, f"{B}/CodeSystem/covered-serious-conditions", "cancer", True),
        (CONDITIONS, f"{B}/CodeSystem/covered-serious-conditions", "common-cold", False),
        (CONDITIONS, SCT, "363346000", True),  # is-a root: the concept itself
        (CONDITIONS, SCT, "15188001", True),  # proxy, included by exact code
        (CONDITIONS, SCT, "254837009", None),  # a descendant? needs a terminology server
        (CONDITIONS, "http://loinc.org", "11488-4", False),
        (STATUS, CBS, "received", True),
        (STATUS, CBS, "rejected", False),  # the grouper is not selectable
        (STATUS, CBS, "condition-not-covered", True),
        (REJECTION, CBS, "member-not-found", True),
        (REJECTION, CBS, "eligible", False),
        (f"{B}/ValueSet/nope", CBS, "received", None),
        (STATUS, None, "received", None),
    ],
)
def test_membership(vs: str, system: str | None, code: str, expected: bool | None) -> None:
    assert in_value_set(vs, system, code) is expected


@pytest.mark.parametrize(
    ("code", "task_status", "bser"),
    [
        ("received", "requested", "2.0"),
        ("eligible", "accepted", "3.0"),
        ("benefit-exhausted", "rejected", "4.0"),
        ("cancelled", "cancelled", "6.0"),
        ("report-issued", "completed", "7.0"),
    ],
)
def test_business_status_properties(code: str, task_status: str, bser: str) -> None:
    assert property_values(CBS, code, "task-status") == [task_status]
    assert property_values(CBS, code, "bser-status")[0]["code"] == bser


def test_bser_concept_map_covers_every_selectable_status() -> None:
    resources = {r["id"]: r for r in conformance_resources()}
    mapped = {e["code"] for e in resources["case-business-status-to-bser"]["group"][0]["element"]}
    included = {
        c["code"] for c in resources["case-business-status"]["compose"]["include"][0]["concept"]
    }
    assert mapped == included


def test_condition_map_keeps_mapping_status() -> None:
    resources = {r["id"]: r for r in conformance_resources()}
    elements = resources["covered-serious-conditions-to-snomed"]["group"][0]["element"]
    by_code = {e["code"]: e["target"][0] for e in elements}
    assert len(by_code) == 23
    assert by_code["aortic-surgery"]["equivalence"] == "wider"
    assert by_code["deafness"]["equivalence"] == "inexact"
    assert by_code["benign-brain-tumour"]["equivalence"] == "unmatched"
    assert by_code["cancer"] == {
        "code": "363346000",
        "display": "Malignant neoplastic disease",
        "equivalence": "equivalent",
        "comment": "mapping-status: verified",
    }
