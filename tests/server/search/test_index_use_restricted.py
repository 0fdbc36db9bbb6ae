"""Restricted principals keep their index scans: the access filter is checked on the fetched
documents, and the policy's own fact lookups (an expert's cases, an insurer's members) are
indexed. Same CommandListener + ``explain`` technique as ``test_index_use``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from tests.server.search.plans import Recorder, assert_index_scans, recording_app
from tests.smart_helpers import ADMIN, backend_token, bearer, load_parties

READ = "system/*.rs"


@pytest.fixture(scope="module")
def world(mongo_uri: str, module_settings: Any) -> Iterator[dict[str, Any]]:
    settings = module_settings("ixrestricted", auth="on", admin_token=ADMIN)
    app, recorder = recording_app(settings)
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    with TestClient(app) as c:
        load_parties(c)
        tokens = {
            "clinic-a": backend_token(c, READ, org="clinic-a", role="clinic"),
            "insurer-x": backend_token(c, READ, org="insurer-x", role="insurer"),
            "expert-1": backend_token(
                c, READ, org="network-s", role="specialist", practitioner_role="expert-1"
            ),
        }
        yield {"client": c, "tokens": tokens, "recorder": recorder, "mongo": mongo}
    app.state.consilium.store.close()
    mongo.drop_database(settings.db_name)
    mongo.close()


def test_an_expert_pulls_its_case_bundle_by_index_scans(world: dict[str, Any]) -> None:
    recorder: Recorder = world["recorder"]
    recorder.finds.clear()
    r = world["client"].get(
        "/fhir/ServiceRequest/sr-a/$case-bundle", headers=bearer(world["tokens"]["expert-1"])
    )
    assert r.status_code == 200, r.text
    got = {e["resource"].get("id", "") for e in r.json().get("entry", [])}
    assert {"sr-a", "pat-a", "task-a", "dr-a"} <= got
    assert not any(i.endswith("-b") for i in got)
    assert_index_scans(world["mongo"], recorder, "$case-bundle", require_ixscan=False)


@pytest.mark.parametrize(
    ("who", "query", "expected"),
    [
        ("clinic-a", "Observation?subject=Patient/pat-a", {"obs-a", "vital-a"}),
        ("clinic-a", "Observation?subject=Patient/pat-b", set()),
        ("clinic-a", "Condition?patient=pat-a&_include=Condition:subject", {"cond-a", "pat-a"}),
        ("clinic-a", "Patient?_id=pat-a,pat-b&_revinclude=Condition:subject", {"pat-a", "cond-a"}),
        ("clinic-a", "Patient/pat-a/Observation", {"obs-a", "vital-a"}),
        ("insurer-x", "Coverage?_id=cov-a,cov-b", {"cov-a"}),
        ("insurer-x", "Task?_id=task-a,task-b&_include=Task:focus", {"task-a", "sr-a"}),
        ("expert-1", "Task?_id=task-a,task-b", {"task-a"}),
        ("expert-1", "ServiceRequest?_id=sr-a,sr-b&_revinclude=Task:focus", {"sr-a", "task-a"}),
    ],
)
def test_restricted_searches_scan_indexes_only(
    world: dict[str, Any], who: str, query: str, expected: set[str]
) -> None:
    recorder: Recorder = world["recorder"]
    recorder.finds.clear()
    r = world["client"].get(f"/fhir/{query}", headers=bearer(world["tokens"][who]))
    assert r.status_code == 200, r.text
    assert {e["resource"]["id"] for e in r.json().get("entry", [])} == expected
    assert_index_scans(world["mongo"], recorder, query, require_ixscan=False)
