"""The whole service over HTTP with authorization on: an EHR pushes a case, a coordinator
assigns an expert, the expert pulls the case bundle and closes the loop with a report, and the
insurer follows the case status without seeing clinical content."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from seed.loader import seed_all
from tests.smart_helpers import ADMIN, backend_token, bearer

SEED = Path(__file__).resolve().parents[2] / "seed" / "data"
FHIR = {"Content-Type": "application/fhir+json"}
CS_STATUS = "https://consilium.health/fhir/CodeSystem/case-business-status"
CASE = [
    ("Patient", "pat-tremblay"),
    ("Coverage", "cov-tremblay"),
    ("Condition", "cond-tremblay"),
    ("DiagnosticReport", "dr-inv-tremblay"),
    ("DocumentReference", "docref-tremblay"),
    ("ServiceRequest", "sr-tremblay"),
]


def seed_resource(rtype: str, rid: str) -> dict[str, Any]:
    for path in sorted(SEED.glob("*.json")):
        for entry in json.loads(path.read_text())["entry"]:
            r = entry["resource"]
            if r["resourceType"] == rtype and r["id"] == rid:
                return copy.deepcopy(r)  # type: ignore[no-any-return]
    raise KeyError(rid)


def new_case_bundle(member: str) -> dict[str, Any]:
    """The demo's Tremblay file, re-identified as a new member, as an EHR would push it."""
    uuids = {f"{t}/{i}": f"urn:uuid:{uuid.uuid4()}" for t, i in CASE}
    text = json.dumps([seed_resource(t, i) for t, i in CASE])
    for local, urn in uuids.items():
        text = text.replace(f'"{local}"', f'"{urn}"')
    resources = json.loads(text)
    entries = []
    for (rtype, rid), res in zip(CASE, resources, strict=True):
        res.pop("id")
        request: dict[str, Any] = {"method": "POST", "url": rtype}
        if rtype == "Patient":
            res["identifier"] = [
                {"system": "https://consilium.health/fhir/sid/patient", "value": member}
            ]
            request["ifNoneExist"] = (
                f"identifier=https://consilium.health/fhir/sid/patient|{member}"
            )
        if rtype == "ServiceRequest":
            res["status"] = "active"
            res["identifier"] = [
                {"system": "https://consilium.health/fhir/sid/case", "value": f"SO-{member}"}
            ]
            request["ifNoneExist"] = (
                f"identifier=https://consilium.health/fhir/sid/case|SO-{member}"
            )
        entries.append({"fullUrl": uuids[f"{rtype}/{rid}"], "resource": res, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def status(code: str) -> dict[str, Any]:
    return {"coding": [{"system": CS_STATUS, "code": code}]}


@pytest.fixture
def service(app_factory) -> TestClient:  # type: ignore[no-untyped-def]
    app = app_factory(auth="on", admin_token=ADMIN)
    seed_all(app.state.consilium, demo=True)
    return TestClient(app)


@pytest.fixture
def parties(service: TestClient) -> dict[str, dict[str, str]]:
    return {
        "clinic": bearer(
            backend_token(service, "system/*.cruds", org="clinic-lakeshore", role="clinic")
        ),
        "coordinator": bearer(backend_token(service, "system/*.cruds")),
        "expert": bearer(
            backend_token(
                service,
                "system/*.cruds",
                org="net-consilium-experts",
                role="specialist",
                practitioner_role="exp-oncology-ca",
            )
        ),
        "other_expert": bearer(
            backend_token(
                service,
                "system/*.cruds",
                org="net-consilium-experts",
                role="specialist",
                practitioner_role="exp-cardiology",
            )
        ),
        "insurer": bearer(
            backend_token(service, "system/*.rs", org="ins-maple-mutual", role="insurer")
        ),
    }


def push_case(service: TestClient, clinic: dict[str, str], member: str) -> dict[str, str]:
    r = service.post("/fhir", json=new_case_bundle(member), headers={**FHIR, **clinic})
    assert r.status_code == 200, r.text
    locations = [e["response"]["location"] for e in r.json()["entry"]]
    return {loc.split("/")[-4]: loc.split("/")[-3] for loc in locations}


def case_task(service: TestClient, headers: dict[str, str], sr_id: str) -> dict[str, Any]:
    bundle = service.get(f"/fhir/Task?based-on=ServiceRequest/{sr_id}", headers=headers).json()
    tasks = [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
    assert len(tasks) == 1, bundle
    return tasks[0]  # type: ignore[no-any-return]


def advance(
    service: TestClient, headers: dict[str, str], task: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    body = {**task, **changes}
    r = service.put(
        f"/fhir/Task/{task['id']}",
        json=body,
        headers={**FHIR, **headers, "If-Match": f'W/"{task["meta"]["versionId"]}"'},
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_second_opinion_loop(service: TestClient, parties: dict[str, dict[str, str]]) -> None:
    ids = push_case(service, parties["clinic"], "CONS-90001")
    sr_id = ids["ServiceRequest"]

    # Re-sending the same file creates nothing new.
    again = push_case(service, parties["clinic"], "CONS-90001")
    assert again["Patient"] == ids["Patient"]
    assert again["ServiceRequest"] == sr_id

    # The server opened the case; the coordinator checks eligibility and assigns the expert.
    task = case_task(service, parties["coordinator"], sr_id)
    assert task["status"] == "requested"
    r = service.post(
        f"/fhir/ServiceRequest/{sr_id}/$eligibility",
        json={"resourceType": "Parameters"},
        headers={**FHIR, **parties["coordinator"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["insurance"][0]["inforce"] is True
    task = advance(
        service, parties["coordinator"], task, status="accepted", businessStatus=status("eligible")
    )
    task = advance(
        service,
        parties["coordinator"],
        task,
        status="ready",
        businessStatus=status("expert-matched"),
        owner={"reference": "PractitionerRole/exp-oncology-ca"},
    )

    # The assigned expert pulls the case; another expert cannot.
    r = service.get(f"/fhir/ServiceRequest/{sr_id}/$case-bundle", headers=parties["expert"])
    assert r.status_code == 200, r.text
    pulled = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in r.json()["entry"]
        if e["search"]["mode"] != "outcome"
    }
    assert ("Patient", ids["Patient"]) in pulled
    assert ("Condition", ids["Condition"]) in pulled
    assert ("DocumentReference", ids["DocumentReference"]) in pulled
    assert service.get(
        f"/fhir/ServiceRequest/{sr_id}/$case-bundle", headers=parties["other_expert"]
    ).status_code in (403, 404)
    assert service.get(
        f"/fhir/Condition/{ids['Condition']}", headers=parties["other_expert"]
    ).status_code in (403, 404)

    # The expert reviews and closes the loop with a final report.
    task = advance(
        service,
        parties["expert"],
        task,
        status="in-progress",
        businessStatus=status("under-review"),
    )
    report = seed_resource("DiagnosticReport", "so-report-tremblay")
    report.pop("id")
    report["basedOn"] = [{"reference": f"ServiceRequest/{sr_id}"}]
    report["subject"] = {"reference": f"Patient/{ids['Patient']}"}
    r = service.post("/fhir/DiagnosticReport", json=report, headers={**FHIR, **parties["expert"]})
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]
    task = advance(
        service,
        parties["expert"],
        task,
        status="completed",
        businessStatus=status("report-issued"),
        output=[
            {
                "type": {"text": "Second opinion report"},
                "valueReference": {"reference": f"DiagnosticReport/{report_id}"},
            }
        ],
    )

    # The clinic sees the report; the insurer sees status only, and no clinical resource.
    assert (
        "conclusion"
        in service.get(f"/fhir/DiagnosticReport/{report_id}", headers=parties["clinic"]).json()
    )
    seen = service.get(f"/fhir/Task/{task['id']}", headers=parties["insurer"])
    assert seen.status_code == 200
    assert seen.json()["status"] == "completed"
    redacted = service.get(f"/fhir/DiagnosticReport/{report_id}", headers=parties["insurer"])
    assert redacted.status_code == 200
    assert "conclusion" not in redacted.json()
    assert "presentedForm" not in redacted.json()
    assert service.get(
        f"/fhir/Condition/{ids['Condition']}", headers=parties["insurer"]
    ).status_code in (403, 404)
    assert service.get(
        f"/fhir/Patient/{ids['Patient']}", headers=parties["insurer"]
    ).status_code in (403, 404)


def test_clinic_cannot_see_another_clinics_case(
    service: TestClient, parties: dict[str, dict[str, str]]
) -> None:
    ids = push_case(service, parties["clinic"], "CONS-90002")
    other = bearer(backend_token(service, "system/*.cruds", org="clinic-st-brigid", role="clinic"))
    assert service.get(f"/fhir/Patient/{ids['Patient']}", headers=other).status_code == 404
    found = service.get(
        f"/fhir/ServiceRequest?subject=Patient/{ids['Patient']}", headers=other
    ).json()
    assert not [e for e in found.get("entry", []) if e["search"]["mode"] == "match"]
