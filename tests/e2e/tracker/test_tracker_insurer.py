"""The tracker's insurer and coordinator pages (dashboard, member lookup, worklist filters,
reassign) in a real headless Chromium against a real ``consilium serve`` on seeded demo data with auth on.

Same set-up as test_tracker_browser.py (own server, own browser, Debian's chromium); each figure
on a page is checked against the FHIR call it comes from, made with the same user's token.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
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


def fhir_get(server: Server, token: str, path: str) -> dict[str, Any]:
    r = httpx.get(f"{server.base}/fhir/{path}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def page_token(page: Page) -> str:
    """The token the app holds for the signed-in user (the same one its calls carry)."""
    token: str = json.loads(page.evaluate("sessionStorage.getItem('consilium.tracker.session')"))[
        "token"
    ]
    return token


def group(report: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        g for g in report["group"] if g["code"]["coding"][0]["code"] == code
    )
    return found


def count(thing: dict[str, Any], code: str) -> Any:
    return next(p for p in thing["population"] if p["code"]["coding"][0]["code"] == code).get(
        "count"
    )


def test_insurer_dashboard_matches_the_stats_operation_and_shows_no_clinical_text(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "insurer.maple")
    page.wait_for_url("**/app/cases.html")
    page.goto(f"{server.base}/app/dashboard.html")
    page.locator("#fig-cases").wait_for()
    year = datetime.now(UTC).year
    report = fhir_get(server, page_token(page), f"$second-opinion-stats?period={year}")
    cases = group(report, "cases")
    assert page.locator("#fig-cases").inner_text() == str(count(cases, "initial-population"))
    median = group(report, "turnaround-median")["measureScore"]["value"]
    assert page.locator("#fig-median").inner_text() == f"{median:g} business days"
    sla = group(report, "sla-breaches")
    assert page.locator("#fig-sla").inner_text() == (
        f"{count(sla, 'numerator')} of {count(sla, 'denominator')}"
    )
    opinions = group(report, "opinions")
    assert (
        page.locator("#fig-opinions")
        .inner_text()
        .startswith(f"{count(opinions, 'numerator')} / {count(opinions, 'denominator')}")
    )
    status = {
        s["value"]["coding"][0]["code"]: str(s["population"][0]["count"])
        for s in cases["stratifier"][0]["stratum"]
    }
    table = page.locator("#chart-status table tbody tr")
    shown = dict(
        zip(
            table.locator("th").all_inner_texts(),
            table.locator("td").all_inner_texts(),
            strict=True,
        )
    )
    assert shown == status
    masked = [
        s for st in cases["stratifier"] for s in st["stratum"] if "count" not in s["population"][0]
    ]
    assert page.locator("td[data-value=masked]").count() == len(masked)
    assert all(t == "fewer than 5" for t in page.locator("td[data-value=masked]").all_inner_texts())
    # No clinical text: a report conclusion of one of this insurer's members is not on the page.
    task = fhir_get(server, page_token(page), f"Task?{CASE}&status=completed&_count=1")["entry"][0]
    report_dr = fhir_get(
        server,
        credentials["admin_token"],
        f"DiagnosticReport?based-on={task['resource']['focus']['reference']}",
    )
    assert report_dr["entry"][0]["resource"]["conclusion"] not in page.locator("main").inner_text()
    request = fhir_get(server, credentials["admin_token"], task["resource"]["focus"]["reference"])
    reasons = [rc["text"] for rc in request.get("reasonCode", []) if rc.get("text")]
    assert reasons
    assert not any(r in page.locator("main").inner_text() for r in reasons)
    shot(page, "dashboard-insurer")


def test_sla_breaches_per_month_add_up_to_the_year(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/dashboard.html")
    page.locator("#chart-sla td").first.wait_for()
    token = page_token(page)
    year = datetime.now(UTC).year
    cells = page.locator("#chart-sla td").all_inner_texts()
    assert len(cells) == 12
    for month, cell in enumerate(cells, start=1):
        report = fhir_get(server, token, f"$second-opinion-stats?period={year}-{month:02d}")
        assert int(cell) == count(group(report, "sla-breaches"), "numerator")
    shot(page, "dashboard-network")


def test_coordinator_dashboard_narrows_to_one_insurer(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/dashboard.html")
    page.locator("#fig-cases").wait_for()
    year = datetime.now(UTC).year
    page.get_by_label("Insurer").select_option("Organization/ins-albion-health")
    page.get_by_role("button", name="Show").click()
    report = fhir_get(
        server,
        page_token(page),
        f"$second-opinion-stats?period={year}&insurer=Organization/ins-albion-health",
    )
    expected = str(count(group(report, "cases"), "initial-population"))
    page.wait_for_function(
        f"document.querySelector('#fig-cases') && "
        f"document.querySelector('#fig-cases').textContent === '{expected}'"
    )


def test_member_lookup_finds_an_own_member_with_case_status(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "insurer.maple")
    page.wait_for_url("**/app/cases.html")
    page.get_by_role("link", name="Members").click()
    page.wait_for_url("**/app/members.html")
    page.get_by_label("Group policy").fill("GP-40213")
    page.get_by_label("Certificate number").fill("MM-40213-0007")
    page.get_by_label("Certificate number").press("Enter")
    member = page.locator("section.member")
    member.wait_for()
    assert member.get_attribute("data-coverage") == "cov-tremblay"
    tasks = fhir_get(server, page_token(page), f"Task?{CASE}&patient=Patient/pat-tremblay")["entry"]
    statuses = member.locator("tbody td:nth-child(2)").all_inner_texts()
    assert statuses == [t["resource"]["status"] for t in tasks]
    shot(page, "member-lookup")


@pytest.mark.parametrize(
    ("group_policy", "cert", "subscriber"),
    [("AHA-G-7781", "AHA-7781-0043", ""), ("", "", "AHA-7781-0043")],
)
def test_member_lookup_does_not_find_another_insurers_member(
    page: Page,
    server: Server,
    credentials: dict[str, Any],
    group_policy: str,
    cert: str,
    subscriber: str,
) -> None:
    sign_in(page, server, credentials, "insurer.maple")
    page.wait_for_url("**/app/cases.html")
    page.goto(f"{server.base}/app/members.html")
    page.get_by_label("Group policy").fill(group_policy)
    page.get_by_label("Certificate number").fill(cert)
    page.get_by_label("or subscriber id").fill(subscriber)
    page.get_by_role("button", name="Look up").click()
    page.locator("#not-found").wait_for()
    assert page.locator("section.member").count() == 0


def test_coordinator_filters_a_folder_by_expert(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    config = json.loads(FOLDERS.read_text())
    expected = admin_search(
        server,
        credentials,
        f"{config['caseTask']}&status=in-progress&owner=PractitionerRole/exp-cardiology"
        "&_summary=count",
    )["total"]
    assert expected > 0
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/worklist.html?folder=in-review")
    page.locator("#filter-expert").wait_for()
    page.locator("#filter-expert").select_option("exp-cardiology")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**expert=exp-cardiology**")
    page.locator("#view[data-ready=true] table.cases caption").wait_for()
    assert (
        page.locator("table.cases caption").inner_text().startswith(f"In review: {expected} cases")
    )
    assert page.locator("table.cases tbody a").count() == expected
    shot(page, "worklist-filtered")


def test_coordinator_filters_a_folder_by_insurer_and_condition(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    config = json.loads(FOLDERS.read_text())
    bundle = admin_search(server, credentials, f"{config['caseTask']}&status=completed&_count=100")
    expected = 0
    for entry in bundle["entry"]:
        sr = fhir_get(server, credentials["admin_token"], entry["resource"]["focus"]["reference"])
        codes = [c["code"] for rc in sr.get("reasonCode", []) for c in rc["coding"]]
        cov = fhir_get(server, credentials["admin_token"], sr["insurance"][0]["reference"])
        if "cancer" in codes and cov["payor"][0]["reference"] == "Organization/ins-maple-mutual":
            expected += 1
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(
        f"{server.base}/app/worklist.html?folder=completed&insurer=ins-maple-mutual&condition=cancer"
    )
    page.locator("#view[data-ready=true] table.cases caption").wait_for()
    assert (
        page.locator("table.cases caption").inner_text().startswith(f"Completed: {expected} cases")
    )


def accepted_case(server: Server, credentials: dict[str, Any]) -> dict[str, Any]:
    found = admin_search(
        server, credentials, f"{CASE}&status=accepted&business-status=expert-assigned&_count=1"
    )
    task: dict[str, Any] = found["entry"][0]["resource"]
    return task


def test_coordinator_reassigns_an_accepted_case(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    task = accepted_case(server, credentials)
    before = task["owner"]["reference"]
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/worklist.html?folder=awaiting-expert")
    page.locator(f"button.reassign[data-task='{task['id']}']").click()
    page.get_by_label("Reason (required)").fill("Expert unavailable this week")
    shot(page, "reassign-dialog")
    with page.expect_response(f"**/Task/{task['id']}/$reassign") as answer:
        page.locator("#reassign-submit").click()
    assert answer.value.status == 200, answer.value.text()
    after = fhir_get(server, credentials["admin_token"], f"Task/{task['id']}")
    assert after.get("owner", {}).get("reference") != before


def test_reassign_to_the_current_expert_shows_the_servers_refusal(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    task = accepted_case(server, credentials)
    owner = task["owner"]["reference"].split("/")[1]
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/worklist.html?folder=awaiting-expert")
    page.locator(f"button.reassign[data-task='{task['id']}']").click()
    page.get_by_label("Reason (required)").fill("Try the same expert")
    page.get_by_label("New expert").select_option(owner)
    page.locator("#reassign-submit").click()
    error = page.locator("#reassign-error p")
    error.wait_for()
    assert error.inner_text().startswith("The server refused (422)")
    assert "already holds this case" in error.inner_text()
    unchanged = fhir_get(server, credentials["admin_token"], f"Task/{task['id']}")
    assert unchanged["owner"] == task["owner"]


def test_specialist_dashboard_shows_the_servers_refusal(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "expert.cardiology")
    page.wait_for_url("**/app/queue.html")
    page.goto(f"{server.base}/app/dashboard.html")
    heading = page.get_by_role("alert").get_by_role("heading")
    heading.wait_for()
    assert heading.inner_text().startswith("Access denied (403)")
    assert page.locator("#fig-cases").count() == 0


def test_dashboard_month_from_the_keyboard_on_a_tablet(
    browser: Browser, server: Server, credentials: dict[str, Any]
) -> None:
    context = browser.new_context(viewport={"width": 768, "height": 1024})
    try:
        page = context.new_page()
        sign_in(page, server, credentials, "insurer.maple")
        page.wait_for_url("**/app/cases.html")
        page.goto(f"{server.base}/app/dashboard.html")
        page.locator("#fig-cases").wait_for()
        month = datetime.now(UTC).strftime("%Y-%m")
        page.get_by_label("Month", exact=True).first.focus()
        page.keyboard.press("Space")  # the radio button "Month"
        page.get_by_role("button", name="Show").focus()
        page.keyboard.press("Enter")
        page.locator("#chart-sla td").first.wait_for()
        page.wait_for_function("document.querySelectorAll('#chart-sla td').length === 1")
        report = fhir_get(server, page_token(page), f"$second-opinion-stats?period={month}")
        total = report["group"][0]["population"][0]["count"]
        assert page.locator("#fig-cases").inner_text() == str(total)
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        shot(page, "dashboard-tablet")
    finally:
        context.close()


def test_reassign_dialog_works_from_the_keyboard_and_escape_changes_nothing(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    task = accepted_case(server, credentials)
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.goto(f"{server.base}/app/worklist.html?folder=awaiting-expert")
    button = page.locator(f"button.reassign[data-task='{task['id']}']")
    button.focus()
    page.keyboard.press("Enter")
    page.locator("#reassign-dialog[open]").wait_for()
    assert page.evaluate("document.activeElement.id") == "reassign-reason"
    page.keyboard.press("Escape")
    page.locator("#reassign-dialog").wait_for(state="detached")
    unchanged = fhir_get(server, credentials["admin_token"], f"Task/{task['id']}")
    assert unchanged["owner"] == task["owner"]


def test_member_lookup_asks_for_both_policy_and_certificate(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    sign_in(page, server, credentials, "insurer.maple")
    page.wait_for_url("**/app/cases.html")
    page.goto(f"{server.base}/app/members.html")
    page.get_by_label("Group policy").fill("GP-40213")
    page.get_by_role("button", name="Look up").click()
    status = page.locator("#result [role=status]")
    status.wait_for()
    assert status.inner_text().startswith("Enter the group policy and certificate number")
