"""An expert takes ("claims") a case from the queue (/app/queue.html) in a real headless
Chromium against a real ``consilium serve`` on seeded demo data (auth on).

Claiming is accepting the case the engine offered (docs/tracker.md "Submitting and claiming"):
the seed's ``task-hughes`` is accepted and assigned to ``expert.nephrology``; "Accept and start
the review" pulls its case file, which starts the review. A case taken away before the expert
accepts is refused by the server and the refusal is shown; an unassigned case is in no
specialist's queue and its page is access denied to them (the party rules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import BROWSER_MARKS, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_MARKS


def admin(server: Server, credentials: dict[str, Any], method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(
        method,
        f"{server.base}/fhir/{path}",
        headers={"Authorization": f"Bearer {credentials['admin_token']}"},
        **kw,
    )
    assert r.status_code == 200, r.text
    return r.json()


def state(server: Server, credentials: dict[str, Any], task_id: str) -> tuple[str, str, str]:
    task = admin(server, credentials, "GET", f"Task/{task_id}")
    owner = (task.get("owner") or {}).get("reference", "")
    return task["status"], task["businessStatus"]["coding"][0]["code"], owner


def reassign(server: Server, credentials: dict[str, Any], task_id: str, expert: str) -> None:
    admin(
        server,
        credentials,
        "POST",
        f"Task/{task_id}/$reassign",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "reason", "valueString": "test: workload"},
                {"name": "expert", "valueReference": {"reference": f"PractitionerRole/{expert}"}},
            ],
        },
    )


def test_expert_accepts_an_offered_case_from_the_keyboard_and_the_review_starts(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    assert state(server, credentials, "task-hughes")[:2] == ("accepted", "expert-assigned")
    sign_in(page, server, credentials, "expert.nephrology")
    page.wait_for_url("**/app/queue.html")
    row = page.locator('#offered tr[data-task="task-hughes"]')
    row.wait_for()
    shot(page, "queue-offered")
    button = row.get_by_role("button", name="Accept")
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/case.html?task=task-hughes")
    page.locator("#case-status").wait_for()
    assert state(server, credentials, "task-hughes")[:2] == ("in-progress", "case-retrieved")
    # Back in the queue, the case is under review and no longer offered.
    page.goto(f"{server.base}/app/queue.html")
    page.locator("#offered").wait_for()
    assert page.locator('#offered tr[data-task="task-hughes"]').count() == 0
    assert "No case is waiting for you." in page.locator("#offered").inner_text()
    assert page.locator('table.cases a[href="/app/case.html?task=task-hughes"]').count() == 1


def test_a_case_taken_away_before_accepting_shows_the_servers_refusal(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    task_id, first = "task-gb-045", state(server, credentials, "task-gb-045")[2]
    reassign(server, credentials, task_id, "exp-oncology-ca")  # offered to expert.oncology
    sign_in(page, server, credentials, "expert.oncology")
    page.wait_for_url("**/app/queue.html")
    row = page.locator(f'#offered tr[data-task="{task_id}"]')
    row.wait_for()
    # A coordinator gives it back to the first expert while the page is open.
    reassign(server, credentials, task_id, first.split("/")[1])
    row.get_by_role("button", name="Accept").click()
    problem = page.locator("#offer-problem")
    problem.wait_for()
    text = problem.inner_text()
    assert text.startswith("Refused (404)") or text.startswith("Refused (403)"), text
    assert page.evaluate("document.activeElement.id") == "offer-problem"  # read out
    shot(page, "queue-accept-refused")
    assert state(server, credentials, task_id) == ("accepted", "expert-assigned", first)


def test_an_unassigned_case_is_in_no_specialists_queue_and_not_theirs_to_open(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    status, business, owner = state(server, credentials, "task-ca-048")
    assert (status, business, owner) == ("accepted", "awaiting-expert", "")
    sign_in(page, server, credentials, "expert.cardiology")
    page.wait_for_url("**/app/queue.html")
    page.locator("#offered").wait_for()
    assert page.locator('a[href="/app/case.html?task=task-ca-048"]').count() == 0
    page.goto(f"{server.base}/app/case.html?task=task-ca-048")
    page.locator('#problem[data-page="forbidden"]').wait_for()
    assert page.locator("h1").inner_text() == "Access denied"
