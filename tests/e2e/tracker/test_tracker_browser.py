"""The case tracker (/app) in a real headless Chromium against a real ``consilium serve`` on seeded demo data
with authorization on: users sign in through the server's own /oauth/authorize page.

Playwright (PyPI) drives Debian's ``chromium`` (``executable_path``), never a browser build of
its own. One server and one browser per module keep this file at a few seconds past the seed.
Screenshots of each page go to ``build/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import BROWSER_MARKS, ROOT, admin_search, shot, sign_in

FOLDERS = ROOT / "server" / "tracker" / "static" / "folders.json"
CASE = "code=http://hl7.org/fhir/CodeSystem/task-code|fulfill"
CS_COMMUNICATION = "https://consilium.health/fhir/CodeSystem/case-communication"


if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = BROWSER_MARKS


def test_sign_in_page_is_the_servers_own(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    page.goto(f"{server.base}/app/")
    shot(page, "start-signed-out")
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url("**/oauth/authorize**")
    assert "Consilium case tracker" in page.content()
    shot(page, "sign-in")


def test_denying_on_the_sign_in_page_shows_the_refusal(page: Page, server: Server) -> None:
    page.goto(f"{server.base}/app/")
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url("**/oauth/authorize**")
    page.get_by_label("User name").fill("coord.silva")
    page.get_by_label("Password").fill("not-needed-to-deny")
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url("**/app/callback.html**")
    alert = page.get_by_role("alert")
    alert.get_by_role("heading").wait_for()
    assert alert.locator("p").first.inner_text() == "Sign-in refused: access_denied"


def test_coordinator_sees_worklist_counts_matching_the_fhir_searches(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.locator(".folders .count").first.wait_for()
    config = json.loads(FOLDERS.read_text())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for folder in config["folders"]:
        query = f"{config['caseTask']}&{folder['query']}"
        if folder.get("overdue"):
            query += f"&due=lt{now}"
        expected = admin_search(server, credentials, f"{query}&_summary=count")["total"]
        shown = page.locator(f"#folder-{folder['id']} .count").inner_text()
        assert int(shown) == expected, folder["id"]
    assert sum(int(c) for c in page.locator(".folders .count").all_inner_texts()) > 0
    shot(page, "worklist")


def test_worklist_folder_lists_its_cases_soonest_due_first(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.locator("#folder-in-review").click()
    page.wait_for_url("**folder=in-review")
    rows = page.locator("table.cases tbody tr")
    rows.first.wait_for()
    assert "In review" in page.locator("table.cases caption").inner_text()
    assert rows.count() >= 2
    statuses = page.locator("table.cases tbody td:nth-child(2)").all_inner_texts()
    assert set(statuses) == {"in-progress"}
    dues = [
        d
        for d in page.locator("table.cases tbody td[data-due]").evaluate_all(
            "cells => cells.map(c => c.dataset.due)"
        )
        if d
    ]
    assert dues == sorted(dues, key=lambda d: datetime.fromisoformat(d.replace("Z", "+00:00")))


def test_coordinator_opens_a_case_from_the_worklist(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/worklist.html?folder=completed")
    page.locator("table.cases tbody a").first.click()
    page.wait_for_url("**/app/case.html?task=*")
    page.locator("#report article").first.wait_for()
    assert page.locator("#eligibility-verdict").inner_text() == "Eligible"
    with page.expect_download() as info:
        page.locator("#report a[download]").first.click()
    pdf = Path(info.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-")


def user_token(server: Server, user: str) -> str:
    """A demo user's access token, as ``consilium token`` makes it for the README examples."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "token",
            "--user",
            user,
            "--port",
            str(server.port),
            "--data-dir",
            str(server.log.parent),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return out.stdout.strip()


def fhir_get(server: Server, token: str, path: str) -> dict[str, Any]:
    r = httpx.get(f"{server.base}/fhir/{path}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_case_page_shows_the_timeline_and_the_question_thread(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    # The seed imports its cases without transitions; a question from the case's expert is one.
    expert = user_token(server, "expert.cardiology")
    task = fhir_get(
        server, expert, f"Task?{CASE}&owner=PractitionerRole/exp-cardiology&status=in-progress"
    )["entry"][0]["resource"]
    question = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": CS_COMMUNICATION, "code": "information-request"}]}],
        "basedOn": [task["focus"]],
        "subject": task["for"],
        "recipient": [task["requester"]],
        "payload": [{"contentString": "What is the latest ejection fraction?"}],
    }
    r = httpx.post(
        f"{server.base}/fhir/Communication",
        json=question,
        headers={"Authorization": f"Bearer {expert}"},
    )
    assert r.status_code == 201, r.text
    admin = credentials["admin_token"]
    expected = fhir_get(server, admin, f"Provenance?target=Task/{task['id']}&_summary=count")
    assert expected["total"] >= 1

    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/case.html?task={task['id']}")
    page.locator("#timeline ol.timeline li").first.wait_for()
    assert page.locator("#timeline ol.timeline li").count() == expected["total"]
    assert "What is the latest ejection fraction?" in page.locator("#questions").inner_text()
    assert "on-hold" in page.locator("#case-status").inner_text()
    shot(page, "case")


def test_case_page_shows_why_a_case_was_rejected(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    task = fhir_get(server, credentials["admin_token"], "Task/task-reid")
    reasons = [c["display"] for c in task["statusReason"]["coding"]] + [
        task["statusReason"]["text"]
    ]
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/case.html?task=task-reid")
    page.locator("#eligibility-verdict").wait_for()
    assert page.locator("#eligibility-verdict").inner_text() == "Not eligible"
    assert page.locator("#eligibility li").all_inner_texts() == reasons
    shot(page, "case-rejected")


def test_expert_sees_their_queue(page: Page, server: Server, credentials: dict[str, Any]) -> None:
    expected = fhir_get(
        server,
        credentials["admin_token"],
        f"Task?{CASE}&owner=PractitionerRole/exp-cardiology&status=accepted,in-progress,on-hold"
        "&_summary=count",
    )["total"]
    assert expected > 0
    sign_in(page, server, credentials, "expert.cardiology")
    page.wait_for_url("**/app/queue.html")
    caption = page.locator("table.cases caption").first
    caption.wait_for()
    assert f"{expected} open cases" in caption.inner_text()
    assert page.locator("table.cases").first.locator("tbody a").count() == expected
    shot(page, "expert-queue")


OPEN = "status=requested,received,accepted,in-progress,on-hold"


@pytest.mark.parametrize("user", ["dr.patel", "insurer.maple"])
def test_clinic_and_insurer_see_only_their_own_cases(
    page: Page, server: Server, credentials: dict[str, Any], user: str
) -> None:
    token = user_token(server, user)
    own = fhir_get(server, token, f"Task?{CASE}&{OPEN}&_summary=count")["total"]
    everyone = fhir_get(server, credentials["admin_token"], f"Task?{CASE}&{OPEN}&_summary=count")
    assert 0 < own < everyone["total"]  # the party rules narrow the same search
    sign_in(page, server, credentials, user)
    page.wait_for_url("**/app/cases.html")
    caption = page.locator("table.cases caption").first
    caption.wait_for()
    assert caption.inner_text().startswith(f"Open: {own} cases")
    shot(page, f"my-cases-{user.split('.')[0]}")


def test_insurer_case_page_shows_status_but_no_clinical_text(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    token = user_token(server, "insurer.maple")
    task = fhir_get(server, token, f"Task?{CASE}&status=completed&_count=1")["entry"][0]["resource"]
    sign_in(page, server, credentials, "insurer.maple")
    page.wait_for_url("**/app/cases.html")
    page.goto(f"{server.base}/app/case.html?task={task['id']}")
    page.locator("#report h3, #report p").first.wait_for()
    assert page.locator("#case-status").inner_text().startswith("completed")
    assert "Not available (403)" in page.locator("#timeline").inner_text()
    report = fhir_get(
        server,
        credentials["admin_token"],
        f"DiagnosticReport?based-on={task['focus']['reference']}",
    )
    conclusion = report["entry"][0]["resource"]["conclusion"]
    assert conclusion not in page.locator("main").inner_text()
    assert page.locator("#report .redacted").count() == 1
    shot(page, "case-insurer")


def test_wrong_party_case_url_shows_the_access_denied_page(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    admin = credentials["admin_token"]
    other = fhir_get(server, admin, f"Task?{CASE}&owner=PractitionerRole/exp-cardiology")
    task_id = other["entry"][0]["resource"]["id"]
    sign_in(page, server, credentials, "expert.neurology")
    page.wait_for_url("**/app/queue.html")
    page.goto(f"{server.base}/app/case.html?task={task_id}")
    problem = page.get_by_role("alert")
    problem.get_by_role("heading").wait_for()
    assert problem.get_by_role("heading").inner_text().startswith("Access denied")
    assert page.locator("h1").inner_text() == "Access denied"
    assert page.locator("#view section").count() == 0  # nothing of the case is shown
    assert problem.locator("p").first.inner_text() == f"Task/{task_id} is not known"
    shot(page, "forbidden")


def test_sign_out_forgets_and_revokes_the_token(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    stored = page.evaluate("sessionStorage.getItem('consilium.tracker.session')")
    token = json.loads(stored)["token"]
    with page.expect_response("**/oauth/revoke") as revoked:
        page.get_by_role("button", name="Sign out").click()
    assert revoked.value.status == 200
    page.wait_for_url(f"{server.base}/app/")
    page.goto(f"{server.base}/app/worklist.html")
    heading = page.get_by_role("alert").get_by_role("heading")
    assert heading.inner_text() == "Your sign-in has expired (401)"
    r = httpx.get(f"{server.base}/fhir/Task?_count=1", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_worklist_fits_a_tablet_and_works_from_the_keyboard(
    browser: Browser, server: Server, credentials: dict[str, Any]
) -> None:
    context = browser.new_context(viewport={"width": 768, "height": 1024})
    try:
        page = context.new_page()
        sign_in(page, server, credentials, "coord.silva")
        page.wait_for_url("**/app/worklist.html")
        page.locator(".folders .count").first.wait_for()
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow
        page.keyboard.press("Tab")  # the skip link comes first
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.locator("#folder-rejected").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**folder=rejected")
        page.locator("table.cases caption").wait_for()
        assert page.locator("table.cases caption").inner_text().startswith("Rejected")
        shot(page, "worklist-tablet")
    finally:
        context.close()
