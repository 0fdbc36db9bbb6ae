"""Building cases over HTTP the way parties do: an insurer feed holds the member's cover, the
clinic pushes the file as a transaction Bundle, and every party acts with its own bound token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from tests.smart_helpers import backend_token, bearer

FHIR = {"Content-Type": "application/fhir+json"}
CBS = "https://consilium.health/fhir/CodeSystem/case-business-status"
CSC = "https://consilium.health/fhir/CodeSystem/covered-serious-conditions"
COMM = "https://consilium.health/fhir/CodeSystem/case-communication"
OUTCOME = "https://consilium.health/fhir/CodeSystem/second-opinion-outcome"
TRANSITION = "https://consilium.health/fhir/CodeSystem/case-transition"
SNOMED = "http://snomed.info/sct"
EXPERTS = (
    "exp-oncology-ca",
    "exp-oncology-in",
    "exp-cardiology",
    "exp-orthopaedics",
    "exp-neurology",
    "exp-nephrology",
)
ONCOLOGY = {"system": SNOMED, "code": "394592004", "display": "Clinical oncology"}


def ref(key: str) -> dict[str, str]:
    return {"reference": key}


@dataclass
class Parties:
    """Bearer headers per party (each a client bound with RFC 7591 registration)."""

    trusted: dict[str, str]
    clinic: dict[str, str]
    clinic_b: dict[str, str]
    coordinator: dict[str, str]
    insurer: dict[str, str]
    insurer_b: dict[str, str]
    experts: dict[str, dict[str, str]] = field(default_factory=dict)

    def expert(self, role: str) -> dict[str, str]:
        return self.experts[role]


def make_parties(client: TestClient) -> Parties:
    def party(org: str, role: str, scope: str = "system/*.cruds", **kw: Any) -> dict[str, str]:
        return bearer(backend_token(client, scope, org=org, role=role, **kw))

    return Parties(
        trusted=bearer(backend_token(client, "system/*.cruds")),
        clinic=party("clinic-lakeshore", "clinic"),
        clinic_b=party("clinic-st-brigid", "clinic"),
        coordinator=party("net-consilium-experts", "coordinator"),
        insurer=party("ins-maple-mutual", "insurer", "system/*.rs"),
        insurer_b=party("ins-albion-health", "insurer", "system/*.rs"),
        experts={
            e: party("net-consilium-experts", "specialist", practitioner_role=e) for e in EXPERTS
        },
    )


def ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return dict(r.json()) if r.content else {}


@dataclass
class Case:
    ids: dict[str, str]

    @property
    def sr(self) -> str:
        return self.ids["ServiceRequest"]

    @property
    def patient(self) -> str:
        return self.ids["Patient"]


class Kit:
    def __init__(self, client: TestClient, parties: Parties) -> None:
        self.http = client
        self.p = parties

    # ------------------------------------------------------------------ member and cover
    def member(
        self,
        *,
        plan: str = "MM-GCI-PLUS",
        payor: str = "ins-maple-mutual",
        clinic: str = "clinic-lakeshore",
        writer: dict[str, str] | None = None,
        status: str = "active",
        period: dict[str, str] | None = None,
        language: str = "en",
        country: str = "CA",
        state: str = "ON",
    ) -> tuple[str, str]:
        """(Patient id, Coverage id): the clinic's patient, the insurer-held cover."""
        number = f"CERT-{uuid.uuid4().hex[:10]}"
        patient = ok(
            self.http.post(
                "/fhir/Patient",
                json={
                    "resourceType": "Patient",
                    "name": [{"family": f"Member{number[-4:]}"}],
                    "birthDate": "1970-01-01",
                    "address": [{"country": country, **({"state": state} if state else {})}],
                    "communication": [
                        {
                            "language": {
                                "coding": [{"system": "urn:ietf:bcp:47", "code": language}]
                            },
                            "preferred": True,
                        }
                    ],
                    "managingOrganization": ref(f"Organization/{clinic}"),
                },
                headers={**FHIR, **self.p.trusted},
            ),
            201,
        )
        coverage = ok(
            self.http.post(
                "/fhir/Coverage",
                json={
                    "resourceType": "Coverage",
                    "status": status,
                    "identifier": [
                        {
                            "type": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                        "code": "MB",
                                    }
                                ]
                            },
                            "system": f"https://consilium.health/fhir/sid/certificate/{payor}",
                            "value": number,
                        }
                    ],
                    "beneficiary": ref(f"Patient/{patient['id']}"),
                    "period": period or {"start": "2025-01-01", "end": "2030-12-31"},
                    "payor": [ref(f"Organization/{payor}")],
                    "class": [
                        {
                            "type": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                        "code": "group",
                                    }
                                ]
                            },
                            "value": "GP-1",
                        },
                        {
                            "type": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                        "code": "plan",
                                    }
                                ]
                            },
                            "value": plan,
                        },
                    ],
                },
                headers={**FHIR, **(writer or self.p.trusted)},
            ),
            201,
        )
        return patient["id"], coverage["id"]

    # -------------------------------------------------------------------------- submission
    def bundle(
        self,
        patient: str,
        coverage: str | None,
        *,
        code: list[dict[str, str]] | None = None,
        verification: str = "confirmed",
        result_status: str = "final",
        performer_type: dict[str, str] | None = ONCOLOGY,
        requester: str = "PractitionerRole/role-doc-lakeshore-patel",
        replaces: str | None = None,
        extensions: list[dict[str, Any]] | None = None,
        with_result: bool = True,
    ) -> dict[str, Any]:
        coding = code or [{"system": CSC, "code": "cancer", "display": "Cancer"}]
        condition = {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": verification,
                    }
                ]
            },
            "code": {"coding": coding},
            "subject": ref(f"Patient/{patient}"),
        }
        observation = {
            "resourceType": "Observation",
            "status": result_status,
            "code": {"text": "Histopathology"},
            "subject": ref(f"Patient/{patient}"),
            "valueString": "adenocarcinoma",
        }
        sr: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "meta": {
                "profile": [
                    "https://consilium.health/fhir/StructureDefinition/second-opinion-request"
                ]
            },
            "status": "active",
            "intent": "order",
            "category": [
                {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
            ],
            "code": {"coding": [{"system": SNOMED, "code": "11429006", "display": "Consultation"}]},
            "subject": ref(f"Patient/{patient}"),
            "requester": ref(requester),
            "reasonCode": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0336",
                            "code": "S",
                            "display": "Second Opinion",
                        }
                    ]
                },
                {"coding": coding},
            ],
            "reasonReference": [ref("urn:uuid:cond")],
            "supportingInfo": [ref("urn:uuid:obs")] if with_result else [],
            "authoredOn": "2026-12-01T09:00:00Z",
        }
        if not sr["supportingInfo"]:
            del sr["supportingInfo"]
        if coverage:
            sr["insurance"] = [ref(f"Coverage/{coverage}")]
        if performer_type:
            sr["performerType"] = {"coding": [performer_type]}
        if replaces:
            sr["replaces"] = [ref(f"ServiceRequest/{replaces}")]
        if extensions:
            sr["extension"] = extensions
        entries = [
            {
                "fullUrl": "urn:uuid:cond",
                "resource": condition,
                "request": {"method": "POST", "url": "Condition"},
            },
            {
                "fullUrl": "urn:uuid:obs",
                "resource": observation,
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": "urn:uuid:sr",
                "resource": sr,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ]
        # The request first: the case is decided on the whole transaction, not entry by entry.
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [entries[2], *entries[:2]],
        }

    def submit(
        self,
        patient: str,
        coverage: str | None,
        *,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Case:
        r = self.http.post(
            "/fhir",
            json=self.bundle(patient, coverage, **kw),
            headers={**FHIR, **(headers or self.p.clinic)},
        )
        body = ok(r)
        ids = {"Patient": patient}
        for e in body["entry"]:
            rtype, rid = e["response"]["location"].split("/")[-4:-2]
            ids[rtype] = rid
        return Case(ids)

    def new_case(self, **kw: Any) -> Case:
        member_kw = {
            k: kw.pop(k) for k in ("plan", "payor", "language", "country", "state") if k in kw
        }
        patient, coverage = self.member(**member_kw)
        return self.submit(patient, coverage, **kw)

    # ------------------------------------------------------------------------------ reading
    def task(self, case: Case, headers: dict[str, str] | None = None) -> dict[str, Any]:
        bundle = ok(
            self.http.get(
                f"/fhir/Task?focus=ServiceRequest/{case.sr}&_count=50",
                headers=headers or self.p.coordinator,
            )
        )
        tasks = [
            e["resource"]
            for e in bundle.get("entry", [])
            if e["search"]["mode"] == "match" and not e["resource"].get("partOf")
        ]
        assert len(tasks) == 1, bundle
        return tasks[0]

    def read(self, key: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return ok(self.http.get(f"/fhir/{key}", headers=headers or self.p.coordinator))

    def timeline(self, task_id: str) -> list[str]:
        bundle = ok(
            self.http.get(
                f"/fhir/Provenance?target=Task/{task_id}&_count=100", headers=self.p.coordinator
            )
        )
        records = sorted(
            (e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"),
            key=lambda r: (r["recorded"], int(r["target"][0]["reference"].rsplit("/", 1)[-1])),
        )
        return [r["activity"]["coding"][0]["code"] for r in records]

    # ------------------------------------------------------------------------------ acting
    def pull(self, case: Case, headers: dict[str, str]) -> Any:
        return self.http.get(f"/fhir/ServiceRequest/{case.sr}/$case-bundle", headers=headers)

    def op(self, task_id: str, name: str, headers: dict[str, str], **params: Any) -> Any:
        parameters: list[dict[str, Any]] = []
        for k, v in params.items():
            if k == "expert":
                parameters.append({"name": k, "valueReference": ref(v)})
            else:
                parameters.append({"name": k, "valueString": v})
        return self.http.post(
            f"/fhir/Task/{task_id}/${name}",
            json={"resourceType": "Parameters", "parameter": parameters},
            headers={**FHIR, **headers},
        )

    def ask(self, case: Case, headers: dict[str, str], text: str = "Please send the MRI") -> Any:
        return self.http.post(
            "/fhir/Communication",
            json={
                "resourceType": "Communication",
                "status": "completed",
                "category": [{"coding": [{"system": COMM, "code": "information-request"}]}],
                "basedOn": [ref(f"ServiceRequest/{case.sr}")],
                "subject": ref(f"Patient/{case.patient}"),
                "payload": [{"contentString": text}],
            },
            headers={**FHIR, **headers},
        )

    def answer(
        self, case: Case, question: str, headers: dict[str, str], attach: str | None = None
    ) -> Any:
        payload: list[dict[str, Any]] = [{"contentString": "Here it is"}]
        if attach:
            payload.append({"contentReference": ref(attach)})
        return self.http.post(
            "/fhir/Communication",
            json={
                "resourceType": "Communication",
                "status": "completed",
                "inResponseTo": [ref(f"Communication/{question}")],
                "subject": ref(f"Patient/{case.patient}"),
                "payload": payload,
            },
            headers={**FHIR, **headers},
        )

    def report_body(
        self,
        case: Case,
        status: str = "final",
        outcomes: tuple[str, ...] = ("confirm-diagnosis",),
        performer: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resourceType": "DiagnosticReport",
            "meta": {
                "profile": [
                    "https://consilium.health/fhir/StructureDefinition/second-opinion-report"
                ]
            },
            "status": status,
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}
                ]
            },
            "basedOn": [ref(f"ServiceRequest/{case.sr}")],
            "subject": ref(f"Patient/{case.patient}"),
            "conclusion": "Reviewed the whole file.",
        }
        if outcomes:
            body["conclusionCode"] = [
                {"coding": [{"system": OUTCOME, "code": o}]} for o in outcomes
            ]
        if performer:
            body["performer"] = [ref(performer)]
        return body

    def report(self, case: Case, headers: dict[str, str], **kw: Any) -> Any:
        return self.http.post(
            "/fhir/DiagnosticReport", json=self.report_body(case, **kw), headers={**FHIR, **headers}
        )


def business(task: dict[str, Any]) -> str:
    return str(task["businessStatus"]["coding"][0]["code"])


def seeded_kit(settings: Any, mongo_uri: str) -> Iterator[Kit]:
    """A module's app with authorization on and the core demo seeded, its parties registered;
    the database is dropped afterwards. For ``scope="module"`` fixtures (conftest.py here and in
    tests/server/operations)."""
    from pymongo import MongoClient

    from server.app import create_app
    from tests.demo_copy import seed_demo

    app = create_app(settings)
    seed_demo(app.state.consilium)
    with TestClient(app, base_url="http://testserver") as client:
        yield Kit(client, make_parties(client))
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(app.state.consilium.settings.db_name)
    cleanup.close()
    app.state.consilium.store.close()
