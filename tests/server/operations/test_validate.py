"""``[type]/$validate`` over HTTP: the write's own checks, nothing stored, 200 either way.

One database per module with the demo network (auth off): read-only tests, except those that
store a fixture resource of their own first. The SMART tests at the end use their own app.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from profiles.conformance import PROFILE_COVERAGE, PROFILE_REPORT, PROFILE_REQUEST
from seed.loader import demo_resources
from server.app import create_app
from tests.demo_copy import seed_demo
from tests.server.operations.conftest import FHIR_JSON, parameters
from tests.smart_helpers import ADMIN, backend_token, bearer

DEMO = {f"{r['resourceType']}/{r['id']}": r for r in demo_resources()}


@pytest.fixture(scope="module")
def world(mongo_uri: str, module_settings: Any) -> Iterator[dict[str, Any]]:
    settings = module_settings("validate")
    app = create_app(settings)
    seed_demo(app.state.consilium)
    with TestClient(app) as c:
        yield {"client": c, "store": app.state.consilium.store}
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(settings.db_name)
    cleanup.close()


def demo(key: str, *, keep_id: bool = False) -> dict[str, Any]:
    r = copy.deepcopy(DEMO[key])
    if not keep_id:
        r.pop("id")
    return r


def call(world: dict[str, Any], path: str, body: Any, query: dict[str, str]) -> Any:
    """POST the body (bare resource or Parameters, the rest in the URL), or GET without one."""
    if body is None:
        return world["client"].get(f"/fhir/{path}", params=query)
    return world["client"].post(f"/fhir/{path}", params=query, json=body, headers=FHIR_JSON)


def validate(world: dict[str, Any], path: str, body: Any = None, **query: str) -> dict[str, Any]:
    r = call(world, path, body, query)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert out["resourceType"] == "OperationOutcome"
    return out


def refused(world: dict[str, Any], path: str, body: Any = None, **query: str) -> dict[str, Any]:
    r = call(world, path, body, query)
    assert r.status_code == 400, r.text
    issue: dict[str, Any] = r.json()["issue"][0]
    return issue


def errors(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


def severities(outcome: dict[str, Any]) -> list[str]:
    return [i["severity"] for i in outcome["issue"]]


# ------------------------------------------------------------------------------- the content
def test_a_valid_request_has_one_information_issue(world: dict[str, Any]) -> None:
    out = validate(world, "ServiceRequest/$validate", demo("ServiceRequest/sr-hughes"),
                   mode="create")  # fmt: skip
    assert severities(out) == ["information"]
    assert out["issue"][0]["code"] == "informational"


def test_profile_errors_come_with_code_and_expression(world: dict[str, Any]) -> None:
    sr = demo("ServiceRequest/sr-hughes")
    sr["reasonCode"] = sr["reasonCode"][:1]  # the covered condition is gone
    del sr["requester"]
    out = validate(world, "ServiceRequest/$validate", sr)
    found = {(i["code"], i["expression"][0]) for i in errors(out)}
    assert ("required", "ServiceRequest.requester") in found
    assert ("required", "ServiceRequest.reasonCode") in found
    assert all(PROFILE_REQUEST in i["diagnostics"] for i in errors(out))


def test_structure_errors_are_issues_not_a_400(world: dict[str, Any]) -> None:
    body = {"resourceType": "Patient", "gender": "sometimes", "birthDate": "yesterday"}
    out = validate(world, "Patient/$validate", body)
    assert len(errors(out)) >= 1
    assert {i["code"] for i in errors(out)} <= {"invalid", "structure"}


def test_structure_errors_in_a_parameters_body_are_issues_too(world: dict[str, Any]) -> None:
    bad = {"resourceType": "Patient", "gender": "sometimes"}
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": bad},
            {"name": "mode", "valueCode": "create"},
        ],
    }
    out = validate(world, "Patient/$validate", body)
    assert {i["code"] for i in errors(out)} <= {"invalid", "structure"}
    assert len(errors(out)) >= 1


def test_warnings_do_not_make_it_invalid(world: dict[str, Any]) -> None:
    sr = demo("ServiceRequest/sr-hughes")
    sr["performerType"] = {"coding": [{"system": "http://snomed.info/sct", "code": "394814009"}]}
    out = validate(world, "ServiceRequest/$validate", sr, mode="create")
    assert errors(out) == []
    assert "warning" in severities(out)


def test_the_profile_parameter_adds_a_profile(world: dict[str, Any]) -> None:
    coverage = {"resourceType": "Coverage", "status": "active",
                "beneficiary": {"reference": "Patient/pat-hughes"},
                "payor": [{"reference": "Organization/ins-albion-health"}]}  # fmt: skip
    assert errors(validate(world, "Coverage/$validate", coverage)) == []
    out = validate(world, "Coverage/$validate", coverage, profile=PROFILE_COVERAGE)
    assert any("class:group" in i["diagnostics"] for i in errors(out))


def test_parameters_body_with_resource_mode_and_profile(world: dict[str, Any]) -> None:
    body = parameters(
        {"name": "resource", "resource": demo("DiagnosticReport/so-report-tremblay")},
        {"name": "mode", "valueCode": "create"},
        {"name": "profile", "valueUri": PROFILE_REPORT},
    )
    out = validate(world, "DiagnosticReport/$validate", body)
    assert severities(out) == ["information"]


# ----------------------------------------------------------------------- the write's checks
def test_domain_rule_runs_only_when_a_write_is_rehearsed(world: dict[str, Any]) -> None:
    report = demo("DiagnosticReport/so-report-tremblay")
    del report["conclusionCode"]
    content = validate(world, "DiagnosticReport/$validate", report)
    assert not any(i["code"] == "business-rule" for i in content["issue"])
    rehearsed = validate(world, "DiagnosticReport/$validate", report, mode="create")
    assert any(i["code"] == "business-rule" for i in errors(rehearsed))


def test_dangling_reference_is_reported_on_create(world: dict[str, Any]) -> None:
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/nobody-here"}}  # fmt: skip
    assert errors(validate(world, "Observation/$validate", body)) == []
    out = validate(world, "Observation/$validate", body, mode="create")
    assert "Patient/nobody-here" in errors(out)[0]["diagnostics"]


def test_validate_stores_nothing(world: dict[str, Any]) -> None:
    store = world["store"]
    before = store.history.count_documents({})
    tasks = store.resources("Task").count_documents({})
    validate(world, "ServiceRequest/$validate", demo("ServiceRequest/sr-hughes"), mode="create")
    sr = demo("ServiceRequest/sr-okafor", keep_id=True)
    sr["note"] = [{"text": "changed"}]
    validate(world, "ServiceRequest/sr-okafor/$validate", sr, mode="update")
    validate(world, "Patient/pat-hughes/$validate", mode="delete")
    assert store.history.count_documents({}) == before
    assert store.resources("Task").count_documents({}) == tasks


def test_update_id_must_match_the_url(world: dict[str, Any]) -> None:
    sr = demo("ServiceRequest/sr-okafor", keep_id=True)
    out = validate(world, "ServiceRequest/sr-hughes/$validate", sr, mode="update")
    assert errors(out)[0]["expression"] == ["ServiceRequest.id"]


def test_update_without_an_id_is_an_issue(world: dict[str, Any]) -> None:
    out = validate(world, "ServiceRequest/$validate", demo("ServiceRequest/sr-okafor"),
                   mode="update")  # fmt: skip
    assert errors(out)[0]["code"] == "required"


def test_identical_update_changes_nothing(world: dict[str, Any]) -> None:
    sr = demo("ServiceRequest/sr-okafor", keep_id=True)
    out = validate(world, "ServiceRequest/sr-okafor/$validate", sr, mode="update")
    assert severities(out) == ["information"]
    assert "change nothing" in out["issue"][0]["diagnostics"]


def test_the_type_must_match_the_url(world: dict[str, Any]) -> None:
    out = validate(world, "Observation/$validate", {"resourceType": "Patient"})
    assert errors(out)[0]["expression"] == ["resourceType"]


# ---------------------------------------------------------------------------------- delete
def test_delete_of_a_referenced_resource_is_refused(world: dict[str, Any]) -> None:
    out = validate(world, "Patient/pat-hughes/$validate", mode="delete")
    issue = errors(out)[0]
    assert issue["code"] == "conflict"
    assert "referenced by" in issue["diagnostics"]


def test_delete_of_an_unreferenced_resource_is_fine(world: dict[str, Any]) -> None:
    r = world["client"].put(
        "/fhir/Basic/lonely",
        json={"resourceType": "Basic", "id": "lonely", "code": {"text": "x"}},
        headers=FHIR_JSON,
    )
    assert r.status_code in (200, 201)
    out = validate(world, "Basic/lonely/$validate", mode="delete")
    assert severities(out) == ["information"]


def test_delete_of_a_filed_report_is_refused_by_the_workflow(world: dict[str, Any]) -> None:
    out = validate(world, "DiagnosticReport/so-report-tremblay/$validate", mode="delete")
    assert errors(out)[0]["code"] == "business-rule"


def test_delete_of_an_unknown_resource_is_not_found(world: dict[str, Any]) -> None:
    out = validate(world, "Patient/nobody/$validate", mode="delete")
    assert errors(out)[0]["code"] == "not-found"


def test_delete_by_post_parameters(world: dict[str, Any]) -> None:
    body = parameters({"name": "mode", "valueCode": "delete"})
    r = world["client"].post("/fhir/Patient/pat-hughes/$validate", json=body, headers=FHIR_JSON)
    assert r.status_code == 200
    assert r.json()["issue"][0]["code"] == "conflict"


# ------------------------------------------------------------------------ malformed requests
@pytest.mark.parametrize(
    ("path", "query", "body"),
    [
        ("Patient/$validate", {"mode": "replace"}, {"resourceType": "Patient"}),
        ("Patient/$validate", {"profile": "http://example.org/StructureDefinition/x"},
         {"resourceType": "Patient"}),
        ("Patient/$validate", {"profile": PROFILE_REQUEST}, {"resourceType": "Patient"}),
        ("Patient/$validate", {"mode": "delete"}, None),
        ("Patient/pat-hughes/$validate", {"mode": "create"}, {"resourceType": "Patient"}),
        ("Patient/$validate", {}, None),
        ("Patient/$validate", {"mode": "create"}, parameters({"name": "mode", "valueCode": "x"})),
        ("Patient/$validate", {}, parameters({"name": "resource", "valueString": "x"})),
    ],
)  # fmt: skip
def test_malformed_requests_are_400(
    world: dict[str, Any], path: str, query: dict[str, str], body: Any
) -> None:
    issue = refused(world, path, body, **query)
    assert issue["severity"] == "error"


def test_validate_is_not_a_system_operation(world: dict[str, Any]) -> None:
    r = world["client"].post("/fhir/$validate", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert r.status_code == 404


# ------------------------------------------------------------------------------------ SMART
@pytest.fixture
def smart(app_factory: Any) -> Iterator[TestClient]:
    app = app_factory(auth="on", admin_token=ADMIN)
    seed_demo(app.state.consilium, demo=False)
    with TestClient(app) as c:
        yield c


def test_a_refused_write_is_a_forbidden_issue(smart: TestClient) -> None:
    token = backend_token(smart, "system/*.cruds", org="clinic-st-brigid", role="clinic")
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    r = smart.post("/fhir/Task/$validate", params={"mode": "create"}, json=task,
                   headers={**bearer(token), **FHIR_JSON})  # fmt: skip
    assert r.status_code == 200, r.text
    issue = r.json()["issue"][0]
    assert (issue["severity"], issue["code"]) == ("error", "forbidden")
    assert "task-server-managed" in issue["diagnostics"]


def test_validate_needs_read_access_to_the_type(smart: TestClient) -> None:
    token = backend_token(smart, "system/*.rs", org="ins-albion-health", role="insurer")
    r = smart.post("/fhir/Patient/$validate", json={"resourceType": "Patient"},
                   headers={**bearer(token), **FHIR_JSON})  # fmt: skip
    assert r.status_code == 403
    assert (
        smart.post("/fhir/Patient/$validate", json={"resourceType": "Patient"}).status_code == 401
    )
