"""Token refresh in the tracker (docs/tracker.md "Token refresh"): the server's shortest access
token lifetime (10 s), a real Chromium. An expired access token is renewed with the SMART
``online_access`` refresh token without leaving the page; a refused refresh sends the user to
sign in with a clear message and back to the same page afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from auth.tokens import LEEWAY_SECONDS
from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import BROWSER_MARKS, seeded_server, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_MARKS
LIFETIME = 10  # the setting's minimum (server/config.py)
KEY = "consilium.tracker.session"


@pytest.fixture(scope="module")
def server(seeded_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = seeded_server(
        seeded_data,
        tmp_path_factory,
        {"CONSILIUM_ACCESS_TOKEN_LIFETIME_SECONDS": str(LIFETIME)},
    )
    try:
        yield srv
    finally:
        srv.stop()


def on_the_worklist(page: Page, server: Server, credentials: dict[str, Any]) -> None:
    """The coordinator signed in, the worklist's counts loaded (the tests' starting point)."""
    sign_in(page, server, credentials, "coord.silva")
    page.wait_for_url("**/app/worklist.html")
    page.locator(".folders .count").first.wait_for()


def stored(page: Page) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(page.evaluate(f"sessionStorage.getItem('{KEY}')"))
    return data


def set_expiry(page: Page, from_now_ms: int) -> None:
    """What the browser believes of its token's expiry (the server keeps its own)."""
    page.evaluate(
        f"(() => {{ const s = JSON.parse(sessionStorage.getItem('{KEY}')); s.expires = Date.now() + {from_now_ms};"
        f" sessionStorage.setItem('{KEY}', JSON.stringify(s)); }})()"
    )


def wait_until_expired(token: str, server: Server) -> None:
    """Until the server itself refuses the token (its lifetime + the server's leeway)."""
    deadline = time.monotonic() + LIFETIME + LEEWAY_SECONDS + 20
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{server.base}/fhir/Task?_count=1", headers={"Authorization": f"Bearer {token}"}
        )
        if r.status_code == 401:
            return
        time.sleep(1)
    raise AssertionError("the access token did not expire")


def test_an_expired_token_is_refreshed_without_leaving_the_page(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    on_the_worklist(page, server, credentials)
    first = stored(page)
    assert first["refresh"], "the tracker asks for online_access and gets a refresh token"
    wait_until_expired(first["token"], server)

    # Known expired (the stored expiry has passed): renewed before the call.
    with page.expect_response("**/oauth/token") as renewed:
        page.locator("#folder-rejected").click()
    assert renewed.value.status == 200
    page.locator("table.cases caption").wait_for()
    assert page.locator("table.cases caption").inner_text().startswith("Rejected")
    assert page.locator("#problem").is_hidden()
    second = stored(page)
    assert second["token"] != first["token"] and second["refresh"] != first["refresh"]
    r = httpx.get(
        f"{server.base}/fhir/Task?_count=1", headers={"Authorization": f"Bearer {second['token']}"}
    )
    assert r.status_code == 200
    # The spent refresh token is dead (rotation).
    spent = httpx.post(
        f"{server.base}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh"],
            "client_id": "consilium-tracker",
        },
    )
    assert spent.status_code == 400


def test_a_401_on_a_token_thought_valid_is_refreshed_and_retried(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    on_the_worklist(page, server, credentials)
    first = stored(page)
    wait_until_expired(first["token"], server)
    # The browser believes the token still valid (a skewed clock): the server's 401 triggers
    # one refresh and the same request again.
    set_expiry(page, 3600_000)
    page.reload()
    page.locator(".folders .count").first.wait_for()
    assert page.locator("#problem").is_hidden()
    assert stored(page)["token"] != first["token"]
    assert page.evaluate("document.body.dataset.refreshed") == "1"  # one refresh for all counts


def test_a_refused_refresh_asks_to_sign_in_and_comes_back_to_the_page(
    page: Page, server: Server, credentials: dict[str, Any]
) -> None:
    on_the_worklist(page, server, credentials)
    page.locator("#folder-completed").click()
    page.wait_for_url("**folder=completed")
    page.locator("table.cases caption").wait_for()
    first = stored(page)
    # The refresh token is revoked (as sign-out elsewhere would), then the access token expires.
    r = httpx.post(
        f"{server.base}/oauth/revoke",
        data={"token": first["refresh"], "client_id": "consilium-tracker"},
    )
    assert r.status_code == 200
    set_expiry(page, -1000)  # the stored expiry has passed: the app must refresh, and cannot
    page.reload()
    alert = page.get_by_role("alert")
    alert.get_by_role("heading").wait_for()
    assert alert.get_by_role("heading").inner_text() == "Your sign-in has expired (401)"
    assert "you will come back to this page" in alert.inner_text()
    assert page.evaluate(f"sessionStorage.getItem('{KEY}')") is None  # the dead session is gone
    shot(page, "token-expired")
    alert.get_by_role("button", name="Sign in again").click()
    page.wait_for_url("**/oauth/authorize**")
    page.get_by_label("User name").fill("coord.silva")
    page.get_by_label("Password").fill(credentials["users"]["coord.silva"])
    page.get_by_role("button", name="Sign in and allow").click()
    page.wait_for_url("**/app/worklist.html?folder=completed")
    page.locator("table.cases caption").wait_for()
    assert page.locator("table.cases caption").inner_text().startswith("Completed")
