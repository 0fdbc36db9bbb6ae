"""Operations under SMART auth: every linked read and query goes through the caller's policy.

One seeded database for the module (read-only tests, except eligibility writes, which only add
new resources): a specialist assigned to the Whitfield case (``exp-neurology``), an insurer, and
a trusted backend integration.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from server.app import create_app
from server.documents import document_problems
from tests.demo_copy import seed_demo
from tests.server.operations.conftest import FHIR_JSON, keys, parameters
from tests.smart_helpers import ADMIN, backend_token, bearer

SCOPE = "system/*.cruds"


@pytest.fixture(scope="module")
def world(mongo_uri: str, module_settings: Any) -> Iterator[dict[str, Any]]:
    settings = module_settings("ops_access", auth="on", admin_token=ADMIN)
    app = create_app(settings)
    seed_demo(app.state.consilium)
    with TestClient(app) as c:
        tokens = {
            "neurologist": backend_token(
                c,
                SCOPE,
                org="net-consilium-experts",
                role="specialist",
                practitioner_role="exp-neurology",
            ),
            "insurer": backend_token(c, SCOPE, org="ins-albion-health", role="insurer"),
            "trusted": backend_token(c, SCOPE),
        }
        yield {"client": c, "tokens": tokens}
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(settings.db_name)
    cleanup.close()


def call(world: dict[str, Any], who: str, method: str, path: str, body: Any = None) -> Any:
    headers = {**bearer(world["tokens"][who]), **FHIR_JSON}
    return world["client"].request(method, f"/fhir/{path}", headers=headers, json=body)


def test_operations_need_a_token(world: dict[str, Any]) -> None:
    r = world["client"].get("/fhir/ServiceRequest/sr-whitfield/$case-bundle")
    assert r.status_code == 401


def test_specialist_case_bundle_holds_the_coverage_summary_only(world: dict[str, Any]) -> None:
    r = call(world, "neurologist", "GET", "ServiceRequest/sr-whitfield/$case-bundle")
    assert r.status_code == 200, r.text
    held = dict(zip(keys(r.json()), r.json()["entry"], strict=True))
    assert {"Patient/pat-whitfield", "Task/task-whitfield", "Condition/cond-whitfield"} <= set(held)
    summary = held["Coverage/cov-whitfield"]["resource"]
    assert "identifier" not in summary and "subscriberId" not in summary
    assert "SUBSETTED" in str(summary["meta"])
    assert document_problems(r.json()) == []


def test_specialist_still_cannot_read_the_coverage(world: dict[str, Any]) -> None:
    r = call(world, "neurologist", "GET", "Coverage/cov-whitfield")
    assert r.status_code in (403, 404)


def test_specialist_cannot_pull_an_unassigned_case(world: dict[str, Any]) -> None:
    r = call(world, "neurologist", "GET", "ServiceRequest/sr-okafor/$case-bundle")
    assert r.status_code == 404


def test_specialist_everything_of_assigned_patient_has_no_coverage(world: dict[str, Any]) -> None:
    r = call(world, "neurologist", "GET", "Patient/pat-whitfield/$everything")
    assert r.status_code == 200, r.text
    found = keys(r.json())
    assert "Patient/pat-whitfield" in found
    assert not [k for k in found if k.startswith("Coverage/")]


def test_specialist_everything_of_unassigned_patient_is_404(world: dict[str, Any]) -> None:
    assert call(world, "neurologist", "GET", "Patient/pat-okafor/$everything").status_code == 404


def test_specialist_cannot_run_eligibility(world: dict[str, Any]) -> None:
    r = call(world, "neurologist", "POST", "ServiceRequest/sr-whitfield/$eligibility", parameters())
    assert r.status_code == 403


def test_insurer_cannot_run_eligibility_on_a_redacted_request(world: dict[str, Any]) -> None:
    r = call(world, "insurer", "POST", "ServiceRequest/sr-whitfield/$eligibility", parameters())
    assert r.status_code == 403


def test_insurer_sees_the_stored_eligibility_response(world: dict[str, Any]) -> None:
    r = call(world, "trusted", "POST", "ServiceRequest/sr-hughes/$eligibility", parameters())
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    assert call(world, "insurer", "GET", f"CoverageEligibilityResponse/{rid}").status_code == 200
