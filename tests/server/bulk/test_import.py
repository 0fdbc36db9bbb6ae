"""The import pipeline against the real embedded DB: every line is a PUT, one transaction per
batch, bad lines reported with their place and never a partial batch (server/bulk/load.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from auth.audit import AuditFacts
from server.bulk.load import Importer
from server.bulk.ndjson import read_lines
from server.errors import FhirError
from server.hooks import HookPoint, WriteEvent
from server.repository import Repository
from tests.server.bulk.kit import (
    B,
    coverage,
    observation,
    organization,
    patient,
    run_import,
    write_ndjson,
)


@pytest.fixture
def http(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="http://testserver")


def test_lines_are_stored_with_history_and_search_values(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "a.ndjson", [patient("p1"), observation("o1", "p1")])
    result = run_import(app, path)
    assert (result.created, result.failures, result.batches) == (2, [], 1)
    assert http.get("/fhir/Patient/p1").json()["meta"]["versionId"] == "1"
    assert len(http.get("/fhir/Patient/p1/_history").json()["entry"]) == 1
    found = http.get("/fhir/Observation", params={"subject": "Patient/p1"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["o1"]


def test_the_same_content_again_makes_no_new_version(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "a.ndjson", [patient("p1")])
    run_import(app, path)
    again = run_import(app, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert http.get("/fhir/Patient/p1").json()["meta"]["versionId"] == "1"


def test_changed_content_is_a_new_version(app: FastAPI, http: TestClient, tmp_path: Path) -> None:
    run_import(app, write_ndjson(tmp_path / "a.ndjson", [patient("p1")]))
    changed = run_import(app, write_ndjson(tmp_path / "b.ndjson", [patient("p1", gender="male")]))
    assert changed.updated == 1
    body = http.get("/fhir/Patient/p1").json()
    assert (body["meta"]["versionId"], body["gender"]) == ("2", "male")


def test_the_same_id_twice_in_one_batch_is_two_puts(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "a.ndjson", [patient("p1"), patient("p1", gender="other")])
    result = run_import(app, path)
    assert (result.created, result.updated) == (1, 1)
    assert http.get("/fhir/Patient/p1").json()["meta"]["versionId"] == "2"


def test_a_bad_line_is_reported_with_its_number_and_the_rest_imported(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "a.ndjson", [patient("p1"), "{oops", patient("p2")])
    result = run_import(app, path)
    assert result.created == 2 and not result.ok
    [failure] = result.failures
    assert (failure.source, failure.line, failure.status) == (str(path), 2, 400)
    assert "not JSON" in failure.text
    assert failure.outcome["resourceType"] == "OperationOutcome"


def test_a_hook_refusal_leaves_out_only_that_line(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    """The profile hook refuses line 2 inside the batch's transaction: the batch runs again
    without it, so its neighbours are stored and it is not (not even in history)."""
    wrong = patient("p2", meta={"profile": [f"{B}/StructureDefinition/second-opinion-task"]})
    path = write_ndjson(tmp_path / "a.ndjson", [patient("p1"), wrong, patient("p3")])
    result = run_import(app, path, batch=10)
    assert result.created == 2
    assert [(f.line, f.status) for f in result.failures] == [(2, 422)]
    assert http.get("/fhir/Patient/p2").status_code == 404
    assert not http.get("/fhir/Patient/p2/_history").json().get("entry")
    assert http.get("/fhir/Patient/p3").status_code == 200


def test_fail_fast_stops_and_writes_nothing_of_the_failing_batch(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    wrong = patient("p3", meta={"profile": [f"{B}/StructureDefinition/second-opinion-task"]})
    lines = [patient("p1"), patient("p2"), wrong, patient("p4"), patient("p5")]
    result = run_import(app, write_ndjson(tmp_path / "a.ndjson", lines), batch=2, fail_fast=True)
    assert result.stopped and [f.line for f in result.failures] == [3]
    assert http.get("/fhir/Patient/p2").status_code == 200  # its batch committed before
    for pid in ("p3", "p4", "p5"):  # p4 shared the failing batch; p5 was never reached
        assert http.get(f"/fhir/Patient/{pid}").status_code == 404


def test_a_forward_reference_to_a_later_batch_resolves(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    lines = [observation("o1", "p1"), patient("p1")]
    result = run_import(app, write_ndjson(tmp_path / "a.ndjson", lines), batch=1)
    assert (result.created, result.failures) == (2, [])
    assert http.get("/fhir/Observation/o1").status_code == 200


def test_a_reference_to_a_later_file_resolves(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    obs = write_ndjson(tmp_path / "Observation.ndjson", [observation("o1", "p1")])
    pat = write_ndjson(tmp_path / "Patient.ndjson.gz", [patient("p1")])
    state = app.state.consilium
    importer = Importer(Repository(state.store, state.hooks), state.settings)
    result = importer.run(read_lines([obs, pat]))
    assert (result.created, result.failures) == (2, [])


def test_a_dangling_reference_fails_its_line_only(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    lines = [patient("p1"), observation("o1", "nobody"), observation("o2", "p1")]
    result = run_import(app, write_ndjson(tmp_path / "a.ndjson", lines))
    assert result.created == 2
    [failure] = result.failures
    assert (failure.line, failure.status) == (2, 422)
    assert "Patient/nobody" in failure.text
    assert http.get("/fhir/Observation/o1").status_code == 404


def test_a_roster_duplicate_certificate_is_refused(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    lines = [
        organization("ins-a"),
        patient("p1"),
        patient("p2"),
        coverage("c1", "p1", "ins-a", "CERT-1"),
        coverage("c2", "p2", "ins-a", "CERT-1"),
        coverage("c3", "p2", "ins-a", "CERT-2"),
    ]
    result = run_import(app, write_ndjson(tmp_path / "roster.ndjson", lines))
    assert result.created == 5
    [failure] = result.failures
    assert (failure.line, failure.status) == (5, 409)
    assert "Coverage/c1" in failure.text


def test_a_pre_commit_refusal_is_found_by_halving(
    app: FastAPI, http: TestClient, tmp_path: Path
) -> None:
    """A PRE_COMMIT hook names no line: the batch is split until the line is found."""

    def refuse(event: WriteEvent) -> None:
        if event.resource_id == "p3":
            raise FhirError(422, "business-rule", "p3 is not welcome")

    app.state.consilium.hooks.register(HookPoint.PRE_COMMIT, refuse)
    lines = [patient(f"p{i}") for i in range(1, 6)]
    result = run_import(app, write_ndjson(tmp_path / "a.ndjson", lines), batch=5)
    assert result.created == 4
    assert [(f.line, f.text) for f in result.failures] == [(3, "p3 is not welcome")]


def test_types_not_asked_for_are_skipped(app: FastAPI, http: TestClient, tmp_path: Path) -> None:
    lines = [patient("p1"), organization("o1")]
    result = run_import(app, write_ndjson(tmp_path / "a.ndjson", lines), types=["Organization"])
    assert (result.created, result.skipped, result.ok) == (1, 1, True)
    assert http.get("/fhir/Patient/p1").status_code == 404


def test_every_line_is_audited_like_a_put(app: FastAPI, tmp_path: Path) -> None:
    facts: list[AuditFacts] = []
    lines = [patient("p1"), "{oops"]
    run_import(app, write_ndjson(tmp_path / "a.ndjson", lines), audit=facts.append)
    by_status = {f.status: f for f in facts}
    assert set(by_status) == {201, 400}
    ok = by_status[201]
    assert (ok.method, ok.resource_type, ok.resource_id) == ("PUT", "Patient", "p1")
    assert ok.client_id == "consilium-import" and ok.request_id


def test_a_refused_line_is_audited_with_its_status_and_id(app: FastAPI, tmp_path: Path) -> None:
    facts: list[AuditFacts] = []
    wrong = patient("p2", meta={"profile": [f"{B}/StructureDefinition/second-opinion-task"]})
    run_import(app, write_ndjson(tmp_path / "a.ndjson", [wrong]), audit=facts.append)
    assert [(f.status, f.resource_type, f.resource_id) for f in facts] == [(422, "Patient", "p2")]


def test_progress_reaches_the_total(app: FastAPI, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    path = write_ndjson(tmp_path / "a.ndjson", [patient(f"p{i}") for i in range(5)])
    state = app.state.consilium
    Importer(
        Repository(state.store, state.hooks), state.settings, batch=2, progress=_append(seen)
    ).run(read_lines([path]), 5)
    assert seen[-1] == (5, 5)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def _append(seen: list[tuple[int, int]]) -> Any:
    return lambda done, total: seen.append((done, total))


def test_a_batch_below_one_is_refused(app: FastAPI) -> None:
    state = app.state.consilium
    with pytest.raises(ValueError, match="at least 1"):
        Importer(Repository(state.store, state.hooks), state.settings, batch=0)
