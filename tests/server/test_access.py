"""The cross-party matrix: clinics, specialists and insurers each see only their own part;
coordinators (the second-opinion service's staff) see every case but no AuditEvent.

One database is loaded once for the module (read-only tests); tests that write build their own.
Every access path is covered: read, vread, history, search, _include/_revinclude, compartment
search, batch, and writes (create/update/delete) including inside a transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from server.app import create_app
from tests.smart_helpers import ADMIN, backend_token, bearer, load_parties

READ = "system/*.rs"


@pytest.fixture(scope="module")
def world(mongo_uri: str, module_settings: Any) -> Iterator[dict[str, Any]]:
    settings = module_settings("isolation", auth="on", admin_token=ADMIN)
    app = create_app(settings)
    with TestClient(app) as c:
        load_parties(c)
        tokens = {
            "clinic-a": backend_token(c, READ, org="clinic-a", role="clinic"),
            "clinic-b": backend_token(c, READ, org="clinic-b", role="clinic"),
            "insurer-x": backend_token(c, READ, org="insurer-x", role="insurer"),
            "insurer-y": backend_token(c, READ, org="insurer-y", role="insurer"),
            "expert-1": backend_token(
                c, READ, org="network-s", role="specialist", practitioner_role="expert-1"
            ),
            "network": backend_token(c, READ, org="network-s", role="specialist"),
            "coordinator": backend_token(c, READ, org="network-s", role="coordinator"),
            "trusted": backend_token(c, READ),
        }
        yield {"client": c, "tokens": tokens}
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(settings.db_name)
    cleanup.close()


def get(world: dict[str, Any], who: str, path: str) -> Any:
    return world["client"].get(f"/fhir/{path}", headers=bearer(world["tokens"][who]))


def ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


# ------------------------------------------------------------------------------------ read
@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("clinic-a", "Patient/pat-a", 200),
        ("clinic-a", "Patient/pat-b", 404),
        ("clinic-b", "Patient/pat-a", 404),
        ("clinic-a", "Condition/cond-a", 200),
        ("clinic-a", "Condition/cond-b", 404),
        ("clinic-a", "ServiceRequest/sr-b", 404),
        ("clinic-a", "Task/task-a", 200),
        ("clinic-a", "DiagnosticReport/dr-a", 200),
        ("clinic-a", "Organization/clinic-b", 200),  # directory data is shared
        ("insurer-x", "Coverage/cov-a", 200),
        ("insurer-x", "Coverage/cov-b", 404),
        ("insurer-y", "Coverage/cov-a", 404),
        ("insurer-x", "ServiceRequest/sr-a", 200),
        ("insurer-x", "ServiceRequest/sr-b", 404),
        ("insurer-x", "Task/task-a", 200),
        ("insurer-x", "Task/task-b", 404),
        ("insurer-x", "DiagnosticReport/dr-a", 200),
        ("insurer-x", "DiagnosticReport/inv-a", 404),  # an investigation, not the case report
        ("insurer-x", "Condition/cond-a", 403),
        ("insurer-x", "Observation/obs-a", 403),
        ("insurer-x", "DocumentReference/any", 403),
        ("insurer-x", "Patient/pat-a", 403),
        ("expert-1", "Task/task-a", 200),
        ("expert-1", "Task/task-b", 404),
        ("expert-1", "ServiceRequest/sr-a", 200),
        ("expert-1", "ServiceRequest/sr-b", 404),
        ("expert-1", "Patient/pat-a", 200),
        ("expert-1", "Patient/pat-b", 404),
        ("expert-1", "Condition/cond-b", 404),
        ("expert-1", "Coverage/cov-a", 403),
        ("network", "Task/task-b", 200),  # an org-wide specialist client sees its network's cases
        ("trusted", "Condition/cond-b", 200),
        ("coordinator", "Patient/pat-a", 200),  # the service's staff see every case
        ("coordinator", "Patient/pat-b", 200),
        ("coordinator", "Condition/cond-b", 200),
        ("coordinator", "Coverage/cov-b", 200),  # they check eligibility
        ("coordinator", "ServiceRequest/sr-b", 200),
        ("coordinator", "Task/task-a", 200),
        ("coordinator", "DiagnosticReport/inv-b", 200),
        ("coordinator", "Organization/clinic-a", 200),
        ("coordinator", "AuditEvent/any", 403),
    ],
)
def test_read_matrix(world: dict[str, Any], who: str, path: str, status: int) -> None:
    assert get(world, who, path).status_code == status


def test_insurer_sees_status_not_clinical_content(world: dict[str, Any]) -> None:
    report = get(world, "insurer-x", "DiagnosticReport/dr-a").json()
    assert report["status"] == "final" and report["issued"] and report["performer"]
    assert "conclusion" not in report
    assert report["meta"]["security"][-1]["code"] == "REDACTED"
    request = get(world, "insurer-x", "ServiceRequest/sr-a").json()
    assert request["status"] == "active" and "reasonCode" not in request


def test_clinic_sees_the_full_report(world: dict[str, Any]) -> None:
    assert get(world, "clinic-a", "DiagnosticReport/dr-a").json()["conclusion"]


def test_coordinator_sees_the_full_report(world: dict[str, Any]) -> None:
    report = get(world, "coordinator", "DiagnosticReport/dr-b").json()
    assert report["conclusion"] and "security" not in report.get("meta", {})


# ------------------------------------------------------------------------- vread / history
@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("clinic-a", "Patient/pat-a/_history/1", 200),
        ("clinic-a", "Patient/pat-b/_history/1", 404),
        ("insurer-x", "Coverage/cov-b/_history/1", 404),
        ("expert-1", "Task/task-b/_history/1", 404),
    ],
)
def test_vread_matrix(world: dict[str, Any], who: str, path: str, status: int) -> None:
    assert get(world, who, path).status_code == status


def test_vread_is_redacted_for_insurers(world: dict[str, Any]) -> None:
    assert "conclusion" not in get(world, "insurer-x", "DiagnosticReport/dr-a/_history/1").json()


@pytest.mark.parametrize(
    ("who", "path", "expected"),
    [
        ("clinic-a", "Patient/_history", {"pat-a"}),
        ("clinic-a", "Patient/pat-b/_history", set()),
        ("insurer-x", "Coverage/_history", {"cov-a"}),
        ("expert-1", "Task/_history", {"task-a"}),
        (
            "clinic-b",
            "_history",
            {
                "pat-b",
                "cov-b",
                "cond-b",
                "obs-b",
                "vital-b",
                "sr-b",
                "dr-b",
                "inv-b",
                "task-b",
                "clinic-a",
                "clinic-b",
                "insurer-x",
                "insurer-y",
                "network-s",
                "expert-1",
                "expert-2",
            },
        ),
    ],
)
def test_history_matrix(world: dict[str, Any], who: str, path: str, expected: set[str]) -> None:
    got = ids(get(world, who, f"{path}?_count=100"))
    assert got == expected


def test_system_history_redacts_for_insurers(world: dict[str, Any]) -> None:
    r = get(world, "insurer-x", "_history?_count=100")
    entries = [e["resource"] for e in r.json()["entry"]]
    assert {e["id"] for e in entries} >= {"cov-a", "dr-a", "sr-a", "task-a"}
    assert not {"cond-a", "obs-a", "pat-a", "cov-b"} & {e["id"] for e in entries}
    assert all("conclusion" not in e for e in entries)


# ---------------------------------------------------------------------------------- search
@pytest.mark.parametrize(
    ("who", "query", "expected"),
    [
        ("clinic-a", "Patient", {"pat-a"}),
        ("clinic-b", "Patient", {"pat-b"}),
        ("clinic-a", "Observation", {"obs-a", "vital-a"}),
        ("insurer-x", "Coverage", {"cov-a"}),
        ("insurer-y", "Coverage", {"cov-b"}),
        ("insurer-x", "Task", {"task-a"}),
        ("expert-1", "Task", {"task-a"}),
        ("expert-1", "Condition", {"cond-a"}),
        ("network", "Task", {"task-a", "task-b"}),
        ("trusted", "Patient", {"pat-a", "pat-b"}),
        ("coordinator", "Patient", {"pat-a", "pat-b"}),
        ("coordinator", "Coverage", {"cov-a", "cov-b"}),
        ("coordinator", "Task", {"task-a", "task-b"}),
        ("coordinator", "DiagnosticReport", {"dr-a", "dr-b", "inv-a", "inv-b"}),
        ("clinic-a", "Patient/pat-b/Observation", set()),
        ("clinic-a", "Patient/pat-a/Observation", {"obs-a", "vital-a"}),
        ("clinic-a", "ServiceRequest?_include=ServiceRequest:subject", {"sr-a", "pat-a"}),
        ("clinic-a", "Patient?_revinclude=Condition:subject", {"pat-a", "cond-a"}),
        (
            "clinic-a",
            "Patient?_revinclude=*",
            {"pat-a", "cond-a", "cov-a", "dr-a", "inv-a", "obs-a", "sr-a", "task-a", "vital-a"},
        ),
        ("insurer-x", "Coverage?_revinclude=*", {"cov-a", "sr-a"}),  # no clinical referrers
        ("expert-1", "ServiceRequest?_revinclude=*", {"sr-a", "dr-a", "task-a"}),
        ("insurer-x", "Task?_include=Task:focus", {"task-a", "sr-a"}),
        ("insurer-x", "Task?_include=Task:patient", {"task-a"}),  # no Patient for insurers
        ("expert-1", "Task?_include=Task:focus&_include=Task:patient", {"task-a", "sr-a", "pat-a"}),
    ],
)
def test_search_matrix(world: dict[str, Any], who: str, query: str, expected: set[str]) -> None:
    assert ids(get(world, who, query)) == expected


def test_insurer_cannot_search_clinical_types(world: dict[str, Any]) -> None:
    assert get(world, "insurer-x", "Condition").status_code == 403
    assert get(world, "insurer-x", "Observation?subject=Patient/pat-a").status_code == 403


def test_search_results_are_redacted_for_insurers(world: dict[str, Any]) -> None:
    r = get(world, "insurer-x", "DiagnosticReport")
    assert [e["resource"].get("conclusion") for e in r.json()["entry"]] == [None]


def test_batch_entries_are_checked_one_by_one(world: dict[str, Any]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/pat-b"}},
            {"request": {"method": "GET", "url": "Patient/pat-a"}},
            {"request": {"method": "GET", "url": "Condition/cond-b"}},
        ],
    }
    r = world["client"].post("/fhir", json=bundle, headers=bearer(world["tokens"]["clinic-a"]))
    assert r.status_code == 200
    entries = r.json()["entry"]
    assert entries[0]["response"]["status"].startswith("404")
    assert entries[1]["response"]["status"].startswith("200")
    assert entries[2]["response"]["status"].startswith("404")


# ------------------------------------------------------------------------------ operations
@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("clinic-a", "Patient/pat-b/$everything", 404),
        ("expert-1", "Patient/pat-b/$everything", 404),
        ("insurer-x", "Patient/pat-a/$everything", 403),
        ("clinic-a", "ServiceRequest/sr-b/$case-bundle", 404),
        ("expert-1", "ServiceRequest/sr-b/$case-bundle", 404),
        ("coordinator", "Patient/pat-b/$everything", 200),
        ("coordinator", "ServiceRequest/sr-b/$case-bundle", 200),
    ],
)
def test_operation_matrix(world: dict[str, Any], who: str, path: str, status: int) -> None:
    assert get(world, who, path).status_code == status


def _bundle_ids(r: Any) -> set[str]:
    assert r.status_code == 200, r.text
    entries = r.json().get("entry", [])
    return {e["resource"].get("id", "") for e in entries if "resource" in e}


def test_everything_stays_inside_the_clinic(world: dict[str, Any]) -> None:
    got = _bundle_ids(get(world, "clinic-a", "Patient/pat-a/$everything"))
    assert "pat-a" in got and "obs-a" in got
    assert not {"pat-b", "obs-b", "cond-b", "cov-b", "sr-b", "task-b", "dr-b"} & got


def test_case_bundle_of_an_assigned_case(world: dict[str, Any]) -> None:
    got = _bundle_ids(get(world, "expert-1", "ServiceRequest/sr-a/$case-bundle"))
    assert "sr-a" in got
    assert not {"pat-b", "sr-b", "task-b", "cov-b"} & got
    assert "cov-a" in got  # as the server-composed summary only (test_case_bundle.py)
