"""The clinic's "Submit a case" page (/app/submit.html) in a real headless Chromium against a
real ``consilium serve --seed`` (auth on): St Brigid's ``dr.walsh`` picks the seed's
``pat-gb-010`` (Charlotte Robinson, Albion Health group AHA-G-6021, certificate AHA-6021-2881),
finds the cover, attaches a PDF and an image, and submits; the server opens the case in the
same transaction and the page shows it. Wrong numbers, wrong files and the server's own
``$validate`` refusals are shown on the page and nothing is submitted.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import BROWSER_MARKS, admin_get, admin_search, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = BROWSER_MARKS

CLINIC = "dr.walsh"
PATIENT = "pat-gb-010"
GROUP = "AHA-G-6021"
CERT = "AHA-6021-2881"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
INVESTIGATION = "Core biopsy histopathology"
QUESTION = "Is adjuvant chemotherapy indicated after the resection?"


def open_submit(page: Page, server: Server, credentials: dict[str, Any]) -> None:
    sign_in(page, server, credentials, CLINIC)
    page.wait_for_url("**/app/cases.html")
    page.get_by_role("link", name="Submit a case").click()
    page.wait_for_url("**/app/submit.html")
    page.locator("#patient-choices").wait_for()


def choose_patient_and_cover(page: Page, cert: str = CERT) -> None:
    page.get_by_label("Search your patients by name").fill("Robinson")
    page.get_by_label("Search your patients by name").press("Enter")
    page.locator("#patient-choices legend", has_text='named "Robinson"').wait_for()
    page.get_by_label("Charlotte Robinson").check()
    page.get_by_label("Group policy number").fill(GROUP)
    page.get_by_label("Certificate number").fill(cert)
    page.get_by_role("button", name="Find the cover").click()


def fill_case(page: Page) -> None:
    page.get_by_label("Covered condition").select_option(label="Cancer")
    page.get_by_label("Stated diagnosis").fill("Invasive ductal carcinoma, left breast, pT2 N1")
    page.get_by_label("Question for the expert").fill(QUESTION)
    page.get_by_label("Specialty").select_option(label="Clinical oncology")
    page.get_by_label("Priority").select_option("urgent")
    page.get_by_label("Investigation", exact=True).fill(INVESTIGATION)
    page.get_by_label("Date of the investigation").fill("2026-11-20")
    page.get_by_label("Result", exact=True).fill("Grade 2 IDC, ER+ HER2-, 1 of 3 sentinel nodes.")


def cases_of_patient(server: Server, credentials: dict[str, Any]) -> int:
    bundle = admin_search(server, credentials, f"patient=Patient/{PATIENT}&_summary=count")
    return int(bundle["total"])


def test_clinic_submits_a_case_with_documents_and_sees_it(
    page: Page, server: Server, credentials: dict[str, Any], tmp_path: Path
) -> None:
    before = cases_of_patient(server, credentials)
    open_submit(page, server, credentials)
    # The clinic's own patients only: another clinic's patient (Lakeshore's pat-moreau) is absent.
    names = page.locator("#patient-choices label").all_inner_texts()
    assert any("Charlotte Robinson" in n for n in names)
    assert not any("Moreau" in n for n in names)
    choose_patient_and_cover(page)
    found = page.locator("#coverage-found")
    found.wait_for()
    assert found.get_attribute("data-coverage") == "cov-gb-010"
    assert GROUP in found.inner_text()
    fill_case(page)
    (tmp_path / "letter.pdf").write_bytes(PDF)
    (tmp_path / "scan.png").write_bytes(PNG)
    page.get_by_label("Documents (PDF or images)").set_input_files(
        [str(tmp_path / "letter.pdf"), str(tmp_path / "scan.png")]
    )
    assert page.locator("#file-list li").count() == 2
    assert "5.0 MB a file" in page.locator("#documents-hint").inner_text()  # the limit is shown
    shot(page, "submit-case")
    page.get_by_role("button", name="Check and submit the case").click()
    page.wait_for_url("**/app/case.html?task=*")
    page.locator("#case-status").wait_for()
    shot(page, "submit-case-opened")

    assert cases_of_patient(server, credentials) == before + 1
    task_id = page.url.split("task=")[1]
    task = admin_get(server, credentials, f"Task/{task_id}")
    # The engine decided in the transaction: eligible, with the final investigation report.
    assert task["status"] == "accepted", task.get("statusReason")
    assert "accepted" in page.locator("#case-status").inner_text()
    request = admin_get(server, credentials, task["focus"]["reference"])
    assert request["insurance"] == [{"reference": "Coverage/cov-gb-010"}]
    assert request["requester"]["reference"] == "PractitionerRole/role-doc-st-brigid-walsh"
    assert request["priority"] == "urgent"
    assert request["note"][0]["text"] == QUESTION
    assert request["performerType"]["coding"][0]["code"] == "394592004"
    covered = [c for cc in request["reasonCode"] for c in cc["coding"]]
    assert {"system": "http://terminology.hl7.org/CodeSystem/v2-0336", "code": "S"}.items() <= (
        covered[0].items()
    )
    assert any(c["code"] == "cancer" for c in covered)
    infos = [admin_get(server, credentials, r["reference"]) for r in request["supportingInfo"]]
    reports = [d for d in infos if d["resourceType"] == "DiagnosticReport"]
    assert [(r["status"], r["code"]["text"]) for r in reports] == [("final", INVESTIGATION)]
    docs = [d for d in infos if d["resourceType"] == "DocumentReference"]
    attachments = {
        d["content"][0]["attachment"]["title"]: d["content"][0]["attachment"] for d in docs
    }
    assert base64.b64decode(attachments["letter.pdf"]["data"]) == PDF
    assert attachments["letter.pdf"]["contentType"] == "application/pdf"
    assert base64.b64decode(attachments["scan.png"]["data"]) == PNG
    condition = admin_get(server, credentials, request["reasonReference"][0]["reference"])
    assert condition["subject"]["reference"] == f"Patient/{PATIENT}"


def test_wrong_certificate_is_a_clear_error_and_blocks_the_submission(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    before = cases_of_patient(server, credentials)
    open_submit(page, server, credentials)
    choose_patient_and_cover(page, cert="AHA-6021-9999")
    error = page.locator("#coverage-not-found")
    error.wait_for()
    assert "No cover of Charlotte Robinson" in error.inner_text()
    assert "AHA-6021-9999" in error.inner_text()
    assert page.locator("#coverage-result").get_attribute("role") == "alert"
    assert page.get_by_label("Certificate number").get_attribute("aria-invalid") == "true"
    shot(page, "submit-coverage-not-found")
    fill_case(page)
    page.get_by_role("button", name="Check and submit the case").click()
    problems = page.locator("#submit-problems li")
    problems.first.wait_for()
    assert "Find the patient's cover" in problems.first.inner_text()
    assert page.evaluate("document.activeElement.id") == "submit-result"  # read out
    assert cases_of_patient(server, credentials) == before


def test_missing_fields_and_wrong_files_are_named_before_anything_is_sent(
    page: Page, server: Server, credentials: dict[str, Any], tmp_path: Path
) -> None:
    open_submit(page, server, credentials)
    (tmp_path / "notes.txt").write_text("not a PDF")
    page.get_by_label("Documents (PDF or images)").set_input_files(str(tmp_path / "notes.txt"))
    assert "only PDF and image files" in page.locator("#file-list").inner_text()
    page.get_by_role("button", name="Check and submit the case").click()
    text = page.locator("#submit-problems").inner_text()
    for expected in (
        "Choose the patient",
        "covered condition",
        "diagnosis",
        "question",
        "notes.txt",
    ):
        assert expected in text
    for label in ("Covered condition", "Stated diagnosis", "Question for the expert"):
        assert page.get_by_label(label).get_attribute("aria-invalid") == "true"


def test_the_servers_validate_refusal_is_shown_and_nothing_is_submitted(
    page: Page, server: Server, credentials: dict[str, Any], tmp_path: Path
) -> None:
    before = cases_of_patient(server, credentials)
    open_submit(page, server, credentials)
    choose_patient_and_cover(page)
    page.locator("#coverage-found").wait_for()
    fill_case(page)
    (tmp_path / "empty.pdf").write_bytes(b"")  # the server refuses an empty attachment
    page.get_by_label("Documents (PDF or images)").set_input_files(str(tmp_path / "empty.pdf"))
    page.get_by_role("button", name="Check and submit the case").click()
    issue = page.locator("#submit-issues li").first
    issue.wait_for()
    text = issue.inner_text()
    assert text.startswith("error:")
    assert 'Document "empty.pdf"' in text
    assert "empty strings are not allowed" in text  # the server's own diagnostics
    assert "DocumentReference.content[0].attachment.data" in text  # and its expression
    shot(page, "submit-validate-refused")
    assert cases_of_patient(server, credentials) == before


def test_the_form_is_usable_from_the_keyboard(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    open_submit(page, server, credentials)
    page.get_by_label("Search your patients by name").focus()
    page.keyboard.type("Robinson")
    page.keyboard.press("Enter")
    page.locator("#patient-choices legend", has_text='named "Robinson"').wait_for()
    page.keyboard.press("Tab")  # the Find button
    page.keyboard.press("Tab")  # the first patient
    page.keyboard.press("Space")
    assert page.get_by_label("Charlotte Robinson").is_checked()
    page.keyboard.press("Tab")
    page.keyboard.type(GROUP)
    page.keyboard.press("Tab")
    page.keyboard.type(CERT)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "find-coverage"
    page.keyboard.press("Enter")
    page.locator("#coverage-found").wait_for()
    # every control has a label
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('#submit-form input, #submit-form select, "
        "#submit-form textarea')].filter(c => c.type !== 'radio' && !c.labels.length)"
        ".map(c => c.id)"
    )
    assert unlabelled == []


def test_other_roles_are_told_only_clinics_submit(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "expert.oncology")
    page.wait_for_url("**/app/queue.html")
    page.goto(f"{server.base}/app/submit.html")
    assert "Only a clinic submits cases" in page.locator("#not-clinic").inner_text()
    assert page.locator("#submit-form").count() == 0


def test_the_form_fits_a_tablet_without_sideways_scrolling(
    browser: Browser, server: Server, credentials: dict[str, Any]
) -> None:
    context = browser.new_context(viewport={"width": 768, "height": 1024})
    try:
        page = context.new_page()
        open_submit(page, server, credentials)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 768, width
        shot(page, "submit-tablet")
    finally:
        context.close()


def test_the_transactions_own_refusal_is_shown(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    """The sign-in is revoked between the $validate checks and the transaction (the real
    server then refuses the POST itself): the page shows that refusal and opens no case."""
    before = cases_of_patient(server, credentials)
    open_submit(page, server, credentials)
    choose_patient_and_cover(page)
    page.locator("#coverage-found").wait_for()
    fill_case(page)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('consilium.tracker.session')).token")

    def revoke_then_send(route: Any) -> None:
        r = httpx.post(
            f"{server.base}/oauth/revoke",
            data={"token": token, "client_id": "consilium-tracker"},
        )
        assert r.status_code == 200, r.text
        route.continue_()

    page.route(f"{server.base}/fhir", revoke_then_send)
    page.get_by_role("button", name="Check and submit the case").click()
    result = page.locator("#submit-result", has_text="The submission was refused (401)")
    result.wait_for()
    assert result.get_attribute("role") == "alert"
    assert page.url.endswith("/app/submit.html")
    assert cases_of_patient(server, credentials) == before
