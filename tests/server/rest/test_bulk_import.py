"""``POST /fhir/$import`` (server/rest/bulk_import.py): NDJSON lines as the caller's own PUTs,
per-line outcomes, the request-level refusals, and the party rules on every line."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.smart_helpers import ADMIN, backend_token, bearer, load_parties

NDJSON = {"Content-Type": "application/fhir+ndjson"}


def ndjson(*resources: dict[str, Any] | str) -> bytes:
    return (
        b"\n".join((r if isinstance(r, str) else json.dumps(r)).encode() for r in resources) + b"\n"
    )


def patient(rid: str, family: str = "Imported", **more: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": rid, "name": [{"family": family}], **more}


def run(c: TestClient, body: bytes, query: str = "", **headers: str) -> Any:
    return c.post(f"/fhir/$import{query}", content=body, headers={**NDJSON, **headers})


def summary(r: Any) -> str:
    assert r.status_code == 200, r.text
    issues = r.json()["issue"]
    assert issues[0]["severity"] == "information"
    return str(issues[0]["diagnostics"])


def errors(r: Any) -> list[str]:
    return [i["diagnostics"] for i in r.json()["issue"] if i["severity"] == "error"]


def test_every_line_is_stored_under_its_own_id(client: TestClient) -> None:
    r = run(client, ndjson(patient("imp-1"), patient("imp-2"), patient("imp-3")))
    assert summary(r).startswith("imported 3 (3 created, 0 updated, 0 unchanged)")
    for rid in ("imp-1", "imp-2", "imp-3"):
        got = client.get(f"/fhir/Patient/{rid}")
        assert got.status_code == 200 and got.json()["name"] == [{"family": "Imported"}]


def test_a_repeated_import_is_unchanged_and_a_changed_line_a_new_version(
    client: TestClient,
) -> None:
    run(client, ndjson(patient("rep-1"), patient("rep-2")))
    r = run(client, ndjson(patient("rep-1"), patient("rep-2", family="Changed")))
    assert summary(r).startswith("imported 2 (0 created, 1 updated, 1 unchanged)")
    assert client.get("/fhir/Patient/rep-2").headers["etag"] == 'W/"2"'
    assert client.get("/fhir/Patient/rep-1").headers["etag"] == 'W/"1"'


def test_failed_lines_are_reported_by_number_and_the_rest_imported(client: TestClient) -> None:
    body = ndjson(
        patient("ok-1"),
        "{not json",
        {"resourceType": "Patient", "name": [{"family": "No id"}]},
        patient("bad-gender", gender="sometimes"),
        patient("ok-2"),
    )
    r = run(client, body)
    assert "imported 2" in summary(r) and "failed 3" in summary(r)
    failed = errors(r)
    assert [e.split(":")[0] for e in failed] == ["line 2", "line 3", "line 4"]
    assert failed[0].startswith("line 2: 400")
    assert client.get("/fhir/Patient/ok-2").status_code == 200
    assert client.get("/fhir/Patient/bad-gender").status_code == 404


def test_a_forward_reference_in_the_body_resolves(client: TestClient) -> None:
    obs = {
        "resourceType": "Observation",
        "id": "fwd-obs",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/fwd-pat"},
    }
    r = run(client, ndjson(obs, patient("fwd-pat")))
    assert summary(r).startswith("imported 2")
    assert client.get("/fhir/Observation/fwd-obs").status_code == 200


def test_a_dangling_reference_is_a_failed_line_never_stored(client: TestClient) -> None:
    obs = {
        "resourceType": "Observation",
        "id": "dangling",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/nobody-here"},
    }
    r = run(client, ndjson(obs))
    assert "failed 1" in summary(r)
    assert "Patient/nobody-here" in errors(r)[0]
    assert client.get("/fhir/Observation/dangling").status_code == 404


def test_type_filter_skips_other_lines(client: TestClient) -> None:
    org = {"resourceType": "Organization", "id": "imp-org", "name": "x"}
    r = run(client, ndjson(org, patient("skipped-pat")), "?_type=Organization")
    assert "imported 1" in summary(r) and "skipped 1" in summary(r)
    assert client.get("/fhir/Patient/skipped-pat").status_code == 404


def test_a_json_body_is_refused_with_415(client: TestClient) -> None:
    r = client.post(
        "/fhir/$import",
        content=json.dumps(patient("x")),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 415
    assert r.json()["resourceType"] == "OperationOutcome"


def test_an_empty_body_is_refused_with_400(client: TestClient) -> None:
    r = run(client, b"\n  \n")
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


def test_an_unknown_type_filter_is_refused(client: TestClient) -> None:
    r = run(client, ndjson(patient("t-1")), "?_type=Patient,Wizard")
    assert r.status_code == 400 and "Wizard" in r.text
    assert client.get("/fhir/Patient/t-1").status_code == 404


def test_a_bad_batch_size_is_refused(client: TestClient) -> None:
    for value in ("0", "5000", "ten", "-1"):
        r = run(client, ndjson(patient("b-1")), f"?_batch={value}")
        assert r.status_code == 400, value


def test_a_small_batch_imports_in_several_transactions(client: TestClient) -> None:
    r = run(client, ndjson(*(patient(f"small-{i}") for i in range(5))), "?_batch=2")
    assert summary(r).endswith("in 3 transactions")


def test_a_body_over_the_limit_is_refused_with_413(app_factory: Any) -> None:
    app = app_factory(max_body_bytes=2048)
    with TestClient(app, base_url="http://testserver") as c:
        body = ndjson(*(patient(f"big-{i}", family="F" * 200) for i in range(20)))
        r = run(c, body)
        assert r.status_code == 413
        assert c.get("/fhir/Patient/big-0").status_code == 404


def test_get_is_not_allowed(client: TestClient) -> None:
    r = client.get("/fhir/$import")
    assert r.status_code == 405


def test_the_capability_statement_lists_it(client: TestClient) -> None:
    ops = client.get("/fhir/metadata").json()["rest"][0].get("operation", [])
    assert "import" in {o["name"] for o in ops}


def test_a_clinic_imports_only_what_it_could_put(app_factory: Any) -> None:
    app = app_factory(auth="on", admin_token=ADMIN)
    with TestClient(app, base_url="http://testserver") as c:
        load_parties(c)
        clinic_a = backend_token(c, "system/*.cruds", org="clinic-a", role="clinic")
        mine = patient("mine")
        hijack = patient("pat-b", family="Hijacked")  # clinic-b's patient (load_parties)
        r = run(c, ndjson(mine, hijack), **bearer(clinic_a))
        assert "imported 1" in summary(r)
        assert errors(r)[0].startswith("line 2: 403")  # what a PUT of it gets
        assert c.get("/fhir/Patient/mine", headers=bearer(ADMIN)).status_code == 200
        kept = c.get("/fhir/Patient/pat-b", headers=bearer(ADMIN)).json()
        assert kept["name"] == [{"family": "FamilyB"}]


def test_a_read_only_token_imports_nothing(app_factory: Any) -> None:
    app = app_factory(auth="on", admin_token=ADMIN)
    with TestClient(app, base_url="http://testserver") as c:
        reader = backend_token(c, "system/*.rs")
        r = run(c, ndjson(patient("ro-1"), patient("ro-2")), **bearer(reader))
        assert "imported 0" in summary(r)
        assert [e.split(":")[1].strip()[:3] for e in errors(r)] == ["403", "403"]
        assert c.get("/fhir/Patient/ro-1", headers=bearer(ADMIN)).status_code == 404


def test_without_a_token_it_is_401(app_factory: Any) -> None:
    app = app_factory(auth="on", admin_token=ADMIN)
    with TestClient(app, base_url="http://testserver") as c:
        r = run(c, ndjson(patient("anon-1")))
        assert r.status_code == 401
        assert c.get("/fhir/Patient/anon-1", headers=bearer(ADMIN)).status_code == 404
