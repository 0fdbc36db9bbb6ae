"""Coordination services on the case page (docs/coordination.md, docs/tracker.md): the clinic
requests a service for its own case, a coordinator moves it through its lifecycle, assigns it
and records what was arranged; the server's refusals (422 a move that has become wrong, 403 a
case of another clinic) are shown as the server gives them. The seed's ``task-whitfield`` is
on hold, submitted by St Brigid's ``dr.walsh``; ``task-okafor`` is Lakeshore's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import BROWSER_MARKS, admin_headers, open_as, shot, user_token

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = BROWSER_MARKS
CASE = "task-whitfield"
CS = "https://consilium.health/fhir/CodeSystem/coordination-service"


def services(
    server: Server, credentials: dict[str, Any], case: str, code: str
) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{server.base}/fhir/Task",
        params={"part-of": f"Task/{case}", "code": f"{CS}|{code}"},
        headers=admin_headers(credentials),
    )
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def item(page: Page, task_id: str) -> Locator:
    return page.locator(f"#services li[data-task='{task_id}']")


def request_as_clinic(server: Server, code: str) -> dict[str, Any]:
    task = {
        "resourceType": "Task", "status": "requested", "intent": "order",
        "code": {"coding": [{"system": CS, "code": code}]},
        "partOf": [{"reference": f"Task/{CASE}"}],
    }  # fmt: skip
    r = httpx.post(
        f"{server.base}/fhir/Task",
        json=task,
        headers={"Authorization": f"Bearer {user_token(server, 'dr.walsh')}"},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_clinic_requests_and_coordinator_arranges_a_service(
    browser: Browser, page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    # A colleague of the coordinator to assign the service to (not an expert).
    colleague = {
        "resourceType": "PractitionerRole", "id": "coord-costa", "active": True,
        "organization": {"reference": "Organization/net-consilium-experts"},
        "practitioner": {"display": "Ana Costa (coordinator)"},
    }  # fmt: skip
    r = httpx.put(
        f"{server.base}/fhir/PractitionerRole/coord-costa",
        json=colleague,
        headers=admin_headers(credentials),
    )
    assert r.status_code in (200, 201), r.text

    open_as(page, server, credentials, "dr.walsh", f"/app/case.html?task={CASE}")
    page.locator("#co-request").wait_for()
    assert page.locator(".co-form").count() == 0  # a clinic does not move services
    offered = page.locator("#co-service option").evaluate_all("o => o.map(x => x.value)")
    assert "hotel" in offered and "follow-up" not in offered
    page.get_by_label("Service", exact=True).select_option("hotel")
    page.get_by_label("Details (dates, guests, preferred times)").fill(
        "2 nights from 14 Dec, accessible room"
    )
    page.get_by_role("button", name="Request the service").click()
    page.get_by_text("Requested: ").wait_for()
    [hotel] = services(server, credentials, CASE, "hotel")
    assert hotel["status"] == "requested"
    item(page, hotel["id"]).wait_for()  # the page reloaded with the new service
    assert "accessible room" in item(page, hotel["id"]).inner_text()

    coord = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    open_as(coord, server, credentials, "coord.silva", f"/app/case.html?task={CASE}")
    form = item(coord, hotel["id"]).locator("form.co-form")
    form.wait_for()
    assert form.locator("[data-field=status] option").evaluate_all("o => o.map(x => x.value)") == [
        "requested", "accepted", "rejected", "cancelled",
    ]  # fmt: skip
    form.get_by_label("Move to").select_option("accepted")
    form.get_by_label("Assigned to").select_option("PractitionerRole/coord-costa")
    form.get_by_role("button", name="Save").click()
    coord.get_by_text("Saved: ").wait_for()
    coord.wait_for_load_state("load")
    item(coord, hotel["id"]).locator(".co-status").get_by_text("accepted").wait_for()
    [hotel] = services(server, credentials, CASE, "hotel")
    assert (hotel["status"], hotel["owner"]["reference"]) == (
        "accepted",
        "PractitionerRole/coord-costa",
    )

    for move in ("in-progress", "completed"):
        form = item(coord, hotel["id"]).locator("form.co-form")
        form.get_by_label("Move to").select_option(move)
        if move == "completed":
            form.get_by_label("Output (booking, reference, answer)").fill("HTL-DUB-4471")
        form.get_by_role("button", name="Save").click()
        item(coord, hotel["id"]).locator(".co-status").get_by_text(move, exact=True).wait_for()
    [hotel] = services(server, credentials, CASE, "hotel")
    assert hotel["status"] == "completed"
    assert hotel["output"][-1] == {
        "type": {"text": "booking reference"},
        "valueString": "HTL-DUB-4471",
    }
    assert item(coord, hotel["id"]).locator("form").count() == 0  # a finished service has no moves
    shot(coord, "coordination-coordinator")

    page.reload()
    item(page, hotel["id"]).locator(".co-output").wait_for()
    assert "HTL-DUB-4471" in item(page, hotel["id"]).inner_text()
    assert item(page, hotel["id"]).locator("form").count() == 0  # too late to cancel
    shot(page, "coordination-clinic")


def test_a_move_that_has_become_wrong_shows_the_servers_422(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    tickets = request_as_clinic(server, "travel-tickets")
    open_as(page, server, credentials, "coord.silva", f"/app/case.html?task={CASE}")
    form = item(page, tickets["id"]).locator("form.co-form")
    form.wait_for()
    # Meanwhile the clinic cancels its request (allowed while requested).
    r = httpx.patch(
        f"{server.base}/fhir/Task/{tickets['id']}",
        content=b'[{"op": "replace", "path": "/status", "value": "cancelled"}]',
        headers={
            "Authorization": f"Bearer {user_token(server, 'dr.walsh')}",
            "Content-Type": "application/json-patch+json",
        },
    )
    assert r.status_code == 200, r.text
    form.get_by_label("Move to").select_option("accepted")
    form.get_by_role("button", name="Save").click()
    alert = form.get_by_role("alert")
    alert.wait_for()
    text = alert.inner_text()
    assert "The server refused this change (422)" in text
    assert "cancelled" in text  # the server's own diagnostics: the Task is cancelled now
    assert page.evaluate("document.activeElement.classList.contains('co-result')")  # read out
    shot(page, "coordination-422")
    assert services(server, credentials, CASE, "travel-tickets")[0]["status"] == "cancelled"


def test_the_clinic_cancels_a_request_the_coordinator_has_not_started(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    visa = request_as_clinic(server, "passport-visa")
    open_as(page, server, credentials, "dr.walsh", f"/app/case.html?task={CASE}")
    cancel = item(page, visa["id"]).locator("form.co-cancel")
    cancel.wait_for()
    cancel.get_by_label("Why cancel (optional)").fill("The member has a valid visa")
    cancel.get_by_role("button", name="Cancel this request").click()
    item(page, visa["id"]).locator(".co-status").get_by_text("cancelled").wait_for()
    [stored] = services(server, credentials, CASE, "passport-visa")
    assert (
        stored["status"] == "cancelled"
        and stored["statusReason"]["text"] == "The member has a valid visa"
    )


def test_a_request_for_another_clinics_case_shows_the_servers_403(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    open_as(page, server, credentials, "dr.walsh", f"/app/case.html?task={CASE}")
    form = page.locator("#co-request")
    form.wait_for()
    # Hostile input: the form pointed at Lakeshore's case (not St Brigid's).
    form.evaluate("f => { f.dataset.case = 'task-okafor'; }")
    page.get_by_label("Service", exact=True).select_option("hotel")
    page.get_by_role("button", name="Request the service").click()
    alert = page.locator("#co-request-result[role=alert]")
    alert.wait_for()
    assert "Not allowed for your organization or role (403)" in alert.inner_text()
    assert "a case it submitted" in alert.inner_text()
    hotels = services(server, credentials, "task-okafor", "hotel")
    assert [h["id"] for h in hotels] == ["coord-okafor-hotel"]  # nothing new


def test_the_assigned_expert_sees_the_services_and_changes_nothing(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    open_as(page, server, credentials, "expert.cardiology", "/app/case.html?task=task-okafor")
    item(page, "coord-okafor-video").wait_for()
    assert (
        item(page, "coord-okafor-hotel").locator(".co-output").inner_text().count("HTL-TOR-58213")
        == 1
    )
    assert page.locator("#coordination form").count() == 0


def test_the_insurer_sees_no_travel_or_lodging_of_its_member(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    r = httpx.get(f"{server.base}/fhir/Task/task-okafor", headers=admin_headers(credentials))
    sr = r.json()["focus"]["reference"]
    cov = httpx.get(f"{server.base}/fhir/{sr}", headers=admin_headers(credentials)).json()[
        "insurance"
    ][0]["reference"]
    payor = httpx.get(f"{server.base}/fhir/{cov}", headers=admin_headers(credentials)).json()[
        "payor"
    ][0]["reference"]
    insurer = {
        "Organization/ins-maple-mutual": "insurer.maple",
        "Organization/ins-albion-health": "insurer.albion",
    }[payor]
    open_as(page, server, credentials, insurer, "/app/case.html?task=task-okafor")
    page.locator("#coordination #services").wait_for()
    text = page.locator("#coordination").inner_text()
    assert "HTL-TOR-58213" not in text and "Harbourfront" not in text
    assert page.locator("#coordination form").count() == 0
