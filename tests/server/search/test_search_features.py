"""Result parameters, includes, chains, _has, compartments, system search, handling (HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.search.conftest import ids


def get(c: TestClient, url: str, **headers: str) -> dict[str, Any]:
    r = c.get(f"/fhir/{url}", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# ------------------------------------------------------------------------- includes
def test_include_adds_referenced_resources_as_include(data_client: TestClient) -> None:
    b = get(data_client, "Observation?code=718-7&_include=Observation:subject")
    assert ids(b) == ["Observation/o3"]
    assert ids(b, "include") == ["Patient/p2"]


def test_include_with_target_type_filters(data_client: TestClient) -> None:
    b = get(data_client, "Observation?code=718-7&_include=Observation:subject:Group")
    assert ids(b, "include") == []


def test_include_star_follows_every_reference(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_id=p1&_include=*")
    assert sorted(ids(b, "include")) == ["Organization/org1", "Practitioner/pr1"]


def test_include_iterate_follows_included_resources(data_client: TestClient) -> None:
    b = get(
        data_client,
        "DiagnosticReport?_id=r1&_include=DiagnosticReport:result"
        "&_include:iterate=Observation:subject",
    )
    assert sorted(ids(b, "include")) == ["Observation/o1", "Observation/o2", "Patient/p1"]


def test_include_without_iterate_does_not_recurse(data_client: TestClient) -> None:
    b = get(
        data_client,
        "DiagnosticReport?_id=r1&_include=DiagnosticReport:result&_include=Observation:subject",
    )
    assert sorted(ids(b, "include")) == ["Observation/o1", "Observation/o2"]


def test_revinclude_adds_referring_resources(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_id=p2&_revinclude=Observation:subject")
    assert ids(b) == ["Patient/p2"]
    assert sorted(ids(b, "include")) == ["Observation/bp1", "Observation/o3"]


def test_revinclude_iterate(data_client: TestClient) -> None:
    b = get(
        data_client,
        "Patient?_id=p1&_revinclude=DiagnosticReport:subject"
        "&_revinclude:iterate=Provenance:target&_include:iterate=DiagnosticReport:result",
    )
    assert "Provenance/prov1" in ids(b, "include")
    assert "DiagnosticReport/r1" in ids(b, "include")


def test_revinclude_star_finds_referrers_of_every_type(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_id=p1&_revinclude=*")
    assert ids(b) == ["Patient/p1"]
    assert sorted(ids(b, "include")) == [
        "Condition/c1",
        "DiagnosticReport/r1",
        "Observation/o1",
        "Observation/o2",
        "RiskAssessment/ra1",
    ]


def test_revinclude_star_follows_non_patient_references(data_client: TestClient) -> None:
    b = get(data_client, "Observation?_id=o1&_revinclude=*")
    assert sorted(ids(b, "include")) == ["DiagnosticReport/r1", "Provenance/prov1"]


def test_revinclude_source_star_uses_every_reference_parameter_of_that_type(
    data_client: TestClient,
) -> None:
    b = get(data_client, "Patient?_id=p2&_revinclude=Observation:*")
    assert sorted(ids(b, "include")) == ["Observation/bp1", "Observation/o3"]


def test_included_resources_are_not_repeated_as_matches(data_client: TestClient) -> None:
    b = get(data_client, "Observation?subject=Patient/p1&_include=Observation:subject")
    entries = ids(b) + ids(b, "include")
    assert len(entries) == len(set(entries))


# ------------------------------------------------------------------------- chains and _has
def test_chain_one_level(data_client: TestClient) -> None:
    b = get(data_client, "Observation?subject:Patient.name=muller")
    assert sorted(ids(b)) == ["Observation/bp1", "Observation/o3"]


def test_chain_without_type_uses_targets_having_the_parameter(data_client: TestClient) -> None:
    b = get(data_client, "Observation?subject.gender=female&code=2345-7")
    assert sorted(ids(b)) == ["Observation/o1", "Observation/o2", "Observation/o4"]


def test_chain_two_levels(data_client: TestClient) -> None:
    b = get(data_client, "Observation?subject:Patient.general-practitioner.name=house")
    assert sorted(ids(b)) == ["Observation/o1", "Observation/o2"]


def test_chain_three_levels_to_organization(data_client: TestClient) -> None:
    b = get(data_client, "DiagnosticReport?result.subject:Patient.organization.name=acme")
    assert ids(b) == ["DiagnosticReport/r1"]


def test_has_reverse_chain(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_has:Observation:patient:code=718-7")
    assert ids(b) == ["Patient/p2"]


def test_has_nested(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_has:Observation:patient:_has:Provenance:target:agent=pr1")
    assert ids(b) == ["Patient/p1"]


def test_has_combined_with_parameter(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_has:Observation:patient:code=2345-7&gender=female")
    assert sorted(ids(b)) == ["Patient/p1", "Patient/p3"]


# ------------------------------------------------------------------------- sort, count, total
def test_sort_descending_by_date(data_client: TestClient) -> None:
    b = get(data_client, "Observation?code=2345-7&_sort=-date")
    assert ids(b) == ["Observation/o2", "Observation/o1", "Observation/o4"]


def test_sort_multiple_keys(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_sort=gender,-birthdate")
    assert ids(b) == ["Patient/p3", "Patient/p1", "Patient/p2"]


def test_sort_by_string(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_sort=family")
    assert ids(b) == ["Patient/p2", "Patient/p1", "Patient/p3"]


def test_count_limits_page_and_links_next(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_count=2&_sort=_id")
    assert ids(b) == ["Patient/p1", "Patient/p2"]
    assert b["total"] == 3
    assert [link["relation"] for link in b["link"]] == ["self", "next"]


def test_count_zero_gives_total_only(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_count=0")
    assert b["total"] == 3 and ids(b) == []
    assert [link["relation"] for link in b["link"]] == ["self"]


def test_or_of_string_prefixes_is_sorted(data_client: TestClient) -> None:
    b = get(data_client, "Patient?family=zu,ok,mü&_sort=-family")
    assert ids(b) == ["Patient/p3", "Patient/p1", "Patient/p2"]
    b = get(data_client, "Patient?family=zu,ok&_sort=birthdate")
    assert ids(b) == ["Patient/p1", "Patient/p3"]


def test_total_none_omits_total(data_client: TestClient) -> None:
    assert "total" not in get(data_client, "Patient?_total=none")


def test_total_accurate(data_client: TestClient) -> None:
    assert get(data_client, "Patient?_total=accurate&gender=female")["total"] == 2


# ------------------------------------------------------------------------- summary, elements
def test_summary_count(data_client: TestClient) -> None:
    b = get(data_client, "Observation?_summary=count&code=2345-7")
    assert b["total"] == 3 and "entry" not in b


def test_summary_true_keeps_summary_elements(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_id=p1&_summary=true")
    res = b["entry"][0]["resource"]
    assert "name" in res and "birthDate" in res and "managingOrganization" in res
    assert "generalPractitioner" not in res  # not a summary element in R4
    assert any(t["code"] == "SUBSETTED" for t in res["meta"]["tag"])


def test_summary_data_drops_text(data_client: TestClient) -> None:
    b = get(data_client, "Patient?_id=p1&_summary=data")
    assert "text" not in b["entry"][0]["resource"] and "name" in b["entry"][0]["resource"]


def test_summary_text(data_client: TestClient) -> None:
    res = get(data_client, "Patient?_id=p1&_summary=text")["entry"][0]["resource"]
    assert set(res) <= {"resourceType", "id", "meta", "text"}


def test_elements(data_client: TestClient) -> None:
    res = get(data_client, "Patient?_id=p1&_elements=gender,birthDate")["entry"][0]["resource"]
    assert set(res) == {"resourceType", "id", "meta", "gender", "birthDate"}


# ------------------------------------------------------------------------- other entry points
def test_post_search_with_form_body(data_client: TestClient) -> None:
    r = data_client.post(
        "/fhir/Patient/_search",
        data={"gender": "female", "_sort": "_id"},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert ids(r.json()) == ["Patient/p1", "Patient/p3"]


def test_post_search_needs_form_content_type(data_client: TestClient) -> None:
    r = data_client.post("/fhir/Patient/_search", json={"gender": "female"})
    assert r.status_code == 415


def test_compartment_search(data_client: TestClient) -> None:
    b = get(data_client, "Patient/p2/Observation?_sort=_id")
    assert ids(b) == ["Observation/bp1", "Observation/o3"]


def test_compartment_search_with_parameters(data_client: TestClient) -> None:
    b = get(data_client, "Patient/p1/Observation?date=2020-02")
    assert ids(b) == ["Observation/o2"]


def test_compartment_star(data_client: TestClient) -> None:
    b = get(data_client, "Patient/p3/*")
    assert sorted(ids(b)) == ["Observation/o4", "Patient/p3"]


def test_compartment_rejects_type_outside_compartment(data_client: TestClient) -> None:
    assert data_client.get("/fhir/Patient/p1/ValueSet").status_code == 400


def test_system_search_by_type_and_id(data_client: TestClient) -> None:
    b = get(data_client, "?_type=Patient,Observation&_id=p1,o1")
    assert sorted(ids(b)) == ["Observation/o1", "Patient/p1"]


def test_system_search_without_type(data_client: TestClient) -> None:
    r = data_client.get("/fhir?_id=vs1")
    assert r.status_code == 200, r.text
    assert ids(r.json()) == ["ValueSet/vs1"]


def test_system_search_ignores_type_specific_parameter_across_types(
    data_client: TestClient,
) -> None:
    strict = {"Prefer": "handling=strict"}
    assert (
        data_client.get("/fhir?_type=Patient,Observation&name=x", headers=strict).status_code == 400
    )
    b = get(data_client, "?_type=Patient,Observation&name=x&_id=p1")
    assert ids(b) == ["Patient/p1"]
    assert b["entry"][-1]["search"]["mode"] == "outcome"


def test_capability_statement_lists_search_system(data_client: TestClient) -> None:
    cap = get(data_client, "metadata")
    assert {"code": "search-system"} in cap["rest"][0]["interaction"]
    obs = next(r for r in cap["rest"][0]["resource"] if r["type"] == "Observation")
    assert "Observation:subject" in obs["searchInclude"]


# ------------------------------------------------------------------------- handling, hostile input
def test_unknown_parameter_is_reported_in_outcome_entry(data_client: TestClient) -> None:
    b = get(data_client, "Patient?nonsense=1&gender=male")
    assert ids(b) == ["Patient/p2"]
    outcome = [e for e in b["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "nonsense" in outcome[0]["resource"]["issue"][0]["diagnostics"]


def test_strict_handling_rejects_unknown_parameter(data_client: TestClient) -> None:
    r = data_client.get("/fhir/Patient?nonsense=1", headers={"Prefer": "handling=strict"})
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"


def test_strict_handling_rejects_malformed_value(data_client: TestClient) -> None:
    r = data_client.get("/fhir/Patient?birthdate=soon", headers={"Prefer": "handling=strict"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "Patient?$where=1",
        "Patient?name.$ne=x",
        "Patient?idx.gender=male",
        "Patient?name[$ne]=x",
        "Patient?_sort=$natural",
        "Patient?_include=Patient:$where",
        "Patient?_has:Observation:patient:$where=1",
    ],
)
def test_operator_names_are_inert(data_client: TestClient, url: str) -> None:
    r = data_client.get(f"/fhir/{url}", headers={"Prefer": "handling=strict"})
    assert r.status_code == 400
    lenient = get(data_client, url)
    assert sorted(ids(lenient)) == ["Patient/p1", "Patient/p2", "Patient/p3"]


@pytest.mark.parametrize("value", ['{"$gt":""}', "$ne", ".*", "^O", "a|{$gt:1}"])
def test_operator_values_are_literal(data_client: TestClient, value: str) -> None:
    for param in ("name", "identifier", "_id", "family:exact", "name:contains"):
        r = data_client.get("/fhir/Patient", params={param: value})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 200:
            assert ids(r.json()) == []


@pytest.mark.parametrize("token", ["garbage", "W10", "WyJ4IiwxXQ", "x" * 500, "WyIwMDAiLC0xXQ"])
def test_bad_page_token_is_400(data_client: TestClient, token: str) -> None:
    r = data_client.get("/fhir/Patient", params={"_page": token})
    assert r.status_code == 400


def test_expired_or_unknown_snapshot_is_410(data_client: TestClient) -> None:
    from server.search.execute import encode_page

    r = data_client.get("/fhir/Patient", params={"_page": encode_page("0" * 32, 0)})
    assert r.status_code == 410
