"""The report's PDF through the whole case flow: the assigned expert files the report over HTTP,
the server attaches the PDF, a reader decodes it and finds the report's key facts in it."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import datetime
from typing import Any

from pypdf import PdfReader

from server.reports.hook import SERVER_PDF_TITLE
from tests.server.cases.kit import FHIR, Case, Kit, ok
from tests.server.reports.conftest import CREDENTIAL, EXPERT

OUTCOMES = ("alternative-diagnosis", "alternative-treatment")
DISPLAYS = ("Alternative diagnosis", "Alternative treatment")
CONCLUSION = "Lymphoma rather than adenocarcinoma."


def started(kit: Kit) -> Case:
    case = kit.new_case()
    ok(kit.pull(case, kit.p.expert(EXPERT)))
    return case


def file_report(kit: Kit, case: Case, **kw: Any) -> dict[str, Any]:
    body = kit.report_body(case, **{"outcomes": OUTCOMES, **kw})
    body["conclusion"] = CONCLUSION
    body["issued"] = "2026-12-02T10:00:00Z"
    return ok(
        kit.http.post(
            "/fhir/DiagnosticReport", json=body, headers={**FHIR, **kit.p.expert(EXPERT)}
        ),
        201,
    )


def put(kit: Kit, report: dict[str, Any]) -> dict[str, Any]:
    return ok(
        kit.http.put(
            f"/fhir/DiagnosticReport/{report['id']}",
            json=report,
            headers={**FHIR, **kit.p.expert(EXPERT)},
        )
    )


def server_pdf(report: dict[str, Any]) -> dict[str, Any]:
    forms = [a for a in report.get("presentedForm", []) if a.get("title") == SERVER_PDF_TITLE]
    assert len(forms) == 1, report.get("presentedForm")
    return forms[0]


def text_of(attachment: dict[str, Any]) -> str:
    pdf = base64.b64decode(attachment["data"])
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def test_a_final_report_carries_a_pdf_with_its_key_facts(kit: Kit) -> None:
    case = started(kit)
    report = kit.read(f"DiagnosticReport/{file_report(kit, case)['id']}", kit.p.clinic)
    attachment = report["presentedForm"][0]
    assert attachment["contentType"] == "application/pdf"
    assert attachment["creation"] == "2026-12-02T10:00:00Z"
    text = text_of(attachment)
    patient = kit.read(f"Patient/{case.patient}", kit.p.trusted)
    for expected in (
        patient["name"][0]["family"],
        f"ServiceRequest/{case.sr}",
        "Dr Sophie Leblanc",
        CREDENTIAL,
        *DISPLAYS,
        CONCLUSION,
        "Cancer",
        "Page 1 of 1",
        f"DiagnosticReport/{report['id']}",
        "Electronically signed on 02 December 2026, 10:00 UTC",
    ):
        assert expected in text, expected


def test_the_attachment_states_the_pdfs_size_and_sha1(kit: Kit) -> None:
    report = file_report(kit, started(kit))
    attachment = server_pdf(report)
    pdf = base64.b64decode(attachment["data"])
    assert pdf.startswith(b"%PDF-")
    assert attachment["size"] == len(pdf)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(pdf).digest()).decode()


def test_an_amended_report_gets_a_new_pdf(kit: Kit) -> None:
    report = file_report(kit, started(kit))
    amended = put(kit, {**report, "status": "amended", "conclusion": "Hodgkin lymphoma."})
    text = text_of(server_pdf(amended))
    assert "Hodgkin lymphoma." in text
    assert CONCLUSION not in text
    assert "version 2 - amended" in text
    assert len(amended["presentedForm"]) == 1


def test_a_preliminary_report_has_no_pdf(kit: Kit) -> None:
    report = file_report(kit, started(kit), status="preliminary")
    assert "presentedForm" not in report


def test_the_clients_own_attachment_is_kept(kit: Kit) -> None:
    case = started(kit)
    own = {"contentType": "text/plain", "title": "Expert's notes", "data": "bm90ZXM="}
    body = kit.report_body(case, outcomes=OUTCOMES)
    body["presentedForm"] = [own]
    report = ok(
        kit.http.post(
            "/fhir/DiagnosticReport", json=body, headers={**FHIR, **kit.p.expert(EXPERT)}
        ),
        201,
    )
    assert report["presentedForm"][1:] == [own]
    assert report["presentedForm"][0]["title"] == SERVER_PDF_TITLE


def test_a_stale_server_pdf_sent_back_is_replaced(kit: Kit) -> None:
    report = file_report(kit, started(kit))
    stale = {**server_pdf(report), "data": "JVBERi0K", "size": 6}
    amended = put(kit, {**report, "status": "amended", "presentedForm": [stale]})
    assert len(amended["presentedForm"]) == 1
    assert "version 2" in text_of(server_pdf(amended))


def versions(kit: Kit, rid: str) -> int:
    bundle = ok(kit.http.get(f"/fhir/DiagnosticReport/{rid}/_history", headers=kit.p.clinic))
    return int(bundle["total"]) if "total" in bundle else len(bundle["entry"])


def test_putting_the_report_back_as_read_makes_no_new_version(kit: Kit) -> None:
    report = file_report(kit, started(kit))
    again = put(kit, kit.read(f"DiagnosticReport/{report['id']}", kit.p.clinic))
    assert again["meta"]["versionId"] == report["meta"]["versionId"]
    assert versions(kit, report["id"]) == 1


def test_putting_the_same_body_twice_makes_one_version(kit: Kit) -> None:
    report = file_report(kit, started(kit))
    body = {k: v for k, v in report.items() if k != "presentedForm"}
    body = {**body, "status": "amended", "conclusion": "Hodgkin lymphoma."}
    first = put(kit, body)
    second = put(kit, body)
    assert second["meta"]["versionId"] == first["meta"]["versionId"] == "2"
    assert versions(kit, report["id"]) == 2
    assert server_pdf(second) == server_pdf(first)


def test_a_laboratory_report_gets_no_pdf(kit: Kit) -> None:
    case = started(kit)
    lab = ok(
        kit.http.post(
            "/fhir/DiagnosticReport",
            json={
                "resourceType": "DiagnosticReport",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
                "subject": {"reference": f"Patient/{case.patient}"},
                "conclusion": "Normal blood count.",
            },
            headers={**FHIR, **kit.p.trusted},
        ),
        201,
    )
    assert "presentedForm" not in lab


def test_the_pdf_shows_results_recommendations_and_the_reviews_questions(kit: Kit) -> None:
    case = started(kit)
    question = ok(kit.ask(case, kit.p.expert(EXPERT), "Please send the biopsy slides"), 201)
    ok(kit.answer(case, question["id"], kit.p.clinic), 201)
    body = kit.report_body(case, outcomes=OUTCOMES)
    body["conclusion"] = "Lymphoma.\nRecommendations:\n- Excision biopsy\n- PET-CT staging"
    body["result"] = [{"reference": f"Observation/{case.ids['Observation']}"}]
    report = ok(
        kit.http.post(
            "/fhir/DiagnosticReport", json=body, headers={**FHIR, **kit.p.expert(EXPERT)}
        ),
        201,
    )
    text = text_of(server_pdf(report))
    recommendations = text.index("Recommendations")
    assert text.index("Lymphoma.") < recommendations
    assert text.index("Excision biopsy") > recommendations
    assert "PET-CT staging" in text
    assert "Histopathology: adenocarcinoma" in text
    assert "Question from Dr Sophie Leblanc: Please send the biopsy slides" in text
    assert "Answer" in text and "Here it is" in text


def test_a_report_entered_in_error_loses_the_server_pdf(kit: Kit) -> None:
    report = file_report(kit, started(kit))
    # The profile allows preliminary/final/amended only; a report written without claiming it
    # (basedOn the request, so still a second-opinion report) may be retracted.
    body = {k: v for k, v in report.items() if k != "meta"}
    retracted = put(kit, {**body, "status": "entered-in-error"})
    assert "presentedForm" not in retracted


def test_a_client_attachment_under_the_reserved_title_is_not_kept_on_a_preliminary(
    kit: Kit,
) -> None:
    case = started(kit)
    body = kit.report_body(case, status="preliminary", outcomes=())
    body["presentedForm"] = [
        {"contentType": "application/pdf", "title": SERVER_PDF_TITLE, "data": "JVBERi0K"}
    ]
    report = ok(
        kit.http.post(
            "/fhir/DiagnosticReport", json=body, headers={**FHIR, **kit.p.expert(EXPERT)}
        ),
        201,
    )
    assert "presentedForm" not in report


def test_the_insurer_never_reads_the_report_or_its_pdf(kit: Kit) -> None:
    report = file_report(kit, started(kit))
    r = kit.http.get(f"/fhir/DiagnosticReport/{report['id']}", headers=kit.p.insurer)
    assert r.status_code in (200, 403, 404)  # 200: the status-only view (auth/policy.py)
    assert "presentedForm" not in r.json()
    assert "conclusion" not in r.json()


def test_a_report_without_an_issue_time_is_signed_at_the_writes_time(kit: Kit) -> None:
    case = started(kit)
    report = ok(kit.report(case, kit.p.expert(EXPERT), outcomes=OUTCOMES), 201)
    assert "issued" not in report  # the report itself is not changed
    attachment = server_pdf(report)
    signed = datetime.fromisoformat(attachment["creation"].replace("Z", "+00:00"))
    written = datetime.fromisoformat(report["meta"]["lastUpdated"].replace("Z", "+00:00"))
    assert abs((written - signed).total_seconds()) < 60
    assert f"Electronically signed on {signed:%d %B %Y, %H:%M} UTC" in text_of(attachment)
