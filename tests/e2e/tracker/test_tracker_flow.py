"""The whole second-opinion loop through the case tracker's forms, in a real headless Chromium
against a real ``consilium serve`` on seeded demo data (auth on): the assigned expert starts the review and
asks a question, the clinic answers, the expert files the final report (refused by
``$validate`` first, then fixed), the clinic downloads the PDF, the insurer sees the status and
no conclusion. The seed's ``task-hughes`` is accepted and assigned to ``expert.nephrology``, its
requester is St Brigid's ``dr.walsh``, its member is insured by Albion Health.

Helpers are copied from ``test_tracker_browser.py`` (a module of its own, its own server).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import BROWSER_MARKS, ROOT, open_as, shot, user_token

TASK = "task-hughes"
EXPERT = "expert.nephrology"
CLINIC = "dr.walsh"
INSURER = "insurer.albion"
CONCLUSION = "Chronic kidney disease stage 3b confirmed; continue the proposed plan."


if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = BROWSER_MARKS


def open_case_as(browser: Browser, server: Server, credentials: dict[str, Any], user: str) -> Page:
    """A fresh browser context, signed in as ``user`` on the sign-in page, on the case page."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    open_as(page, server, credentials, user, f"/app/case.html?task={TASK}")
    page.locator("#case-status").wait_for()
    return page


def task_state(server: Server, credentials: dict[str, Any]) -> tuple[str, str]:
    r = httpx.get(
        f"{server.base}/fhir/Task/{TASK}",
        headers={"Authorization": f"Bearer {credentials['admin_token']}"},
    )
    assert r.status_code == 200, r.text
    task = r.json()
    return task["status"], task["businessStatus"]["coding"][0]["code"]


def test_expert_clinic_and_insurer_run_a_case_through_the_tracker(
    browser: Browser, server: Server, credentials: dict[str, Any]
) -> None:
    assert task_state(server, credentials) == ("accepted", "expert-assigned")

    # The expert starts the review: the case file's sections are shown.
    expert = open_case_as(browser, server, credentials, EXPERT)
    assert expert.locator("#decline-form").count() == 1
    expert.get_by_role("button", name="Start review").click()
    expert.locator("#case-file .doc-section").first.wait_for()
    sections = expert.locator("#case-file .doc-section").evaluate_all(
        "s => s.map(x => x.dataset.section)"
    )
    # problems, investigations, documents, treatment plan (docs/documents.md's section codes)
    assert {"11450-4", "30954-2", "documents", "18776-5"} <= set(sections)
    assert task_state(server, credentials) == ("in-progress", "case-retrieved")
    expert.locator("#report-form").wait_for()  # the review's forms replace "Decline"
    assert expert.locator("#decline-form").count() == 0  # the review has started
    shot(expert, "flow-expert-case-file")

    # ... and asks the clinic a question (a Communication): the case waits.
    expert.get_by_label("Your question to the clinic").fill("What is the latest eGFR?")
    expert.get_by_role("button", name="Ask the question").click()
    expert.locator("#questions li").first.wait_for()
    assert "What is the latest eGFR?" in expert.locator("#questions").inner_text()
    assert task_state(server, credentials) == ("on-hold", "awaiting-information")

    # The clinic answers it.
    clinic = open_case_as(browser, server, credentials, CLINIC)
    clinic.locator("#answer form").first.wait_for()
    assert clinic.locator("#report-form, #question-form, #start-review").count() == 0
    clinic.get_by_label("Your answer").fill("eGFR 38 mL/min/1.73m2 last week.")
    clinic.get_by_role("button", name="Send the answer").click()
    clinic.locator("#questions li:nth-child(2)").wait_for()
    thread = clinic.locator("#questions li").all_inner_texts()
    assert [t.split(" ")[0] for t in thread] == ["Question", "Answer"]  # oldest first
    answer = thread[1]
    assert "eGFR 38" in answer
    assert "from PractitionerRole/role-doc-st-brigid-walsh" in answer  # sender, as in reply.json
    assert task_state(server, credentials) == ("in-progress", "under-review")
    shot(clinic, "flow-clinic-answered")

    # The expert files a final report: without an outcome $validate refuses it, shown inline.
    expert.reload()
    expert.locator("#report-form").wait_for()
    expert.get_by_label("final").check()
    expert.get_by_label("Conclusion").fill(CONCLUSION)
    expert.get_by_label("Findings (one per line)").fill("eGFR 38\nNo proteinuria")
    expert.get_by_role("button", name="Check and file the report").click()
    expert.locator("#report-result").wait_for()
    issues = expert.locator("#report-issues li")
    issues.first.wait_for()
    assert "error" in issues.first.inner_text()
    shot(expert, "flow-report-refused")
    assert task_state(server, credentials)[0] == "in-progress"  # nothing was filed
    assert expert.evaluate("document.activeElement.id") == "report-result"  # read out
    # The outcomes offered are the guide's value set, as $expand gives it.
    expansion = httpx.get(
        f"{server.base}/fhir/ValueSet/$expand",
        params={"url": "https://consilium.health/fhir/ValueSet/second-opinion-outcome"},
        headers={"Authorization": f"Bearer {credentials['admin_token']}"},
    ).json()["expansion"]["contains"]
    offered = expert.locator("#report-outcomes input").evaluate_all("i => i.map(x => x.value)")
    assert offered == [c["code"] for c in expansion]
    # Fixed from the keyboard: tick an outcome with Space, submit with Enter.
    expert.locator("#outcome-confirm-diagnosis").focus()
    expert.keyboard.press("Space")
    expert.locator("#report-submit").focus()
    expert.keyboard.press("Enter")
    expert.get_by_text("Report filed (final").wait_for()
    assert task_state(server, credentials) == ("completed", "report-issued")
    admin = {"Authorization": f"Bearer {credentials['admin_token']}"}
    filed = httpx.get(
        f"{server.base}/fhir/DiagnosticReport?based-on=ServiceRequest/sr-hughes", headers=admin
    ).json()["entry"][0]["resource"]
    assert [o["valueString"] for o in filed["contained"]] == ["eGFR 38", "No proteinuria"]
    assert len(filed["result"]) == 2 and filed["conclusion"] == CONCLUSION

    # The clinic downloads the report's PDF.
    clinic.reload()
    clinic.locator("#report a[download]").first.wait_for()
    assert CONCLUSION in clinic.locator("#report").inner_text()
    with clinic.expect_download() as info:
        clinic.locator("#report a[download]").first.click()
    assert Path(info.value.path()).read_bytes().startswith(b"%PDF")
    shot(clinic, "flow-clinic-report")

    # The insurer sees the case completed, and not the conclusion.
    insurer = open_case_as(browser, server, credentials, INSURER)
    insurer.locator("#report article").first.wait_for()
    assert insurer.locator("#case-status").inner_text().startswith("completed")
    assert CONCLUSION not in insurer.locator("main").inner_text()
    assert insurer.locator("form").count() == 0  # no actions for the insurer
    shot(insurer, "flow-insurer")


def test_expert_declines_with_a_reason_and_the_case_moves_on(
    browser: Browser, server: Server, credentials: dict[str, Any]
) -> None:
    # The README walkthrough's submission: matched to expert.oncology (exp-oncology-ca).
    clinic = user_token(server, "dr.patel")
    bundle = json.loads((ROOT / "docs" / "examples" / "case-moreau.json").read_text())
    r = httpx.post(
        f"{server.base}/fhir", json=bundle, headers={"Authorization": f"Bearer {clinic}"}
    )
    assert r.status_code == 200, r.text
    sr = next(
        e["response"]["location"].split("/")[1]
        for e in r.json()["entry"]
        if e["response"]["location"].startswith("ServiceRequest/")
    )
    admin = {"Authorization": f"Bearer {credentials['admin_token']}"}
    task = httpx.get(f"{server.base}/fhir/Task?focus=ServiceRequest/{sr}", headers=admin).json()
    task_id = task["entry"][0]["resource"]["id"]
    assert task["entry"][0]["resource"]["owner"]["reference"] == "PractitionerRole/exp-oncology-ca"

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{server.base}/app/case.html?task={task_id}")
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url("**/oauth/authorize**")
    page.get_by_label("User name").fill("expert.oncology")
    page.get_by_label("Password").fill(credentials["users"]["expert.oncology"])
    page.get_by_role("button", name="Sign in and allow").click()
    page.locator("#decline-form").wait_for()
    page.get_by_role("button", name="Decline").click()  # no reason: refused in the page
    alert = page.locator("#decline-form [role=alert]")
    alert.wait_for()
    assert alert.inner_text() == "Give a reason for declining."
    assert page.get_by_label("Reason for declining (required)").get_attribute("aria-invalid")
    page.get_by_label("Reason for declining (required)").fill("no capacity this week")
    page.get_by_role("button", name="Decline").click()
    page.get_by_text("Declined: the case has left your queue.").wait_for()
    after = httpx.get(f"{server.base}/fhir/Task/{task_id}", headers=admin).json()
    assert after.get("owner", {}).get("reference") != "PractitionerRole/exp-oncology-ca"
    # No longer the owner: the server refuses the case file, and the page shows its reason.
    page.get_by_role("button", name="Start review").click()
    refusal = page.locator("#review [role=alert]")
    refusal.wait_for()
    assert refusal.inner_text().startswith(("Refused (403)", "Refused (404)"))
    shot(page, "flow-declined")
