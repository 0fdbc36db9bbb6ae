"""What every browser test of the tracker (/app) shares besides the fixtures (conftest.py):
Debian's Chromium, the skip marks, a server on the seeded data, screenshots, signing in on the server's own page."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.serve_process import Server

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = next(
    (p for p in (Path("/usr/bin/chromium"), Path("/usr/bin/chromium-browser")) if p.exists()),
    None,
)

try:
    from playwright.sync_api import Page, sync_playwright
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # pragma: no cover - dev extra missing
    sync_playwright = None  # type: ignore[assignment]
    PlaywrightTimeout = TimeoutError  # type: ignore[assignment,misc]

BROWSER_MARKS = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="browser tests need Debian's chromium: apt-get install -y chromium",
    ),
    pytest.mark.skipif(
        sync_playwright is None, reason="browser tests need playwright: pip install -e '.[dev]'"
    ),
]


def seeded_server(
    seeded_data: Path, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> Server:
    """A ``consilium serve`` (auth on, ``env`` added) on a fresh copy of the seeded data."""
    data = tmp_path_factory.mktemp("tracker") / "data"
    shutil.copytree(seeded_data, data)
    (data / "serve.log").unlink(missing_ok=True)
    # ``serve --seed`` takes the admin token from demo-credentials.json; a plain serve, from
    # its setting, as a deployment does.
    admin = json.loads((data / "demo-credentials.json").read_text())["admin_token"]
    env = {"CONSILIUM_AUTH": "on", "CONSILIUM_ADMIN_TOKEN": admin, **(env or {})}
    return Server(data, env, timeout=180)


class ScreenshotNotTaken(UserWarning):
    """Shown in pytest's warning summary (pyproject's filterwarnings), never an error."""


def shot(page: Page, name: str) -> None:
    """A screenshot for people reading build/screenshots, not a check, so a capture that does
    not finish is a warning, not a failure.

    Chromium's capture never finishes when the page navigates under it (the tracker reloads
    itself 600 ms after a successful action): it waited out the whole timeout. So the capture
    waits for the current page's load, gives up after 15 s, and is tried once more on the page
    that has loaded since."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        try:
            page.wait_for_load_state("load")
            page.screenshot(
                path=str(SHOTS / f"{name}.png"),
                full_page=True,
                animations="disabled",
                timeout=15_000,
            )
            return
        except PlaywrightTimeout:
            if attempt == 2:
                warnings.warn(
                    f"screenshot {name} not taken: Chromium did not finish it",
                    ScreenshotNotTaken,
                    stacklevel=2,
                )


def sign_in(page: Page, server: Server, credentials: dict[str, Any], user: str) -> None:
    page.goto(f"{server.base}/app/")
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url("**/oauth/authorize**")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(credentials["users"][user])
    page.get_by_role("button", name="Sign in and allow").click()


def admin_get(server: Server, credentials: dict[str, Any], path: str) -> dict[str, Any]:
    """``GET /fhir/{path}`` with the admin token (what the server holds, beside what a page shows)."""
    r = httpx.get(
        f"{server.base}/fhir/{path}",
        headers={"Authorization": f"Bearer {credentials['admin_token']}"},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def admin_search(server: Server, credentials: dict[str, Any], query: str) -> dict[str, Any]:
    return admin_get(server, credentials, f"Task?{query}")


# ---- trk2: coordination, reports, tokens, accessibility tests
def admin_headers(credentials: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['admin_token']}"}


def user_token(server: Server, user: str) -> str:
    """A demo user's access token, as ``consilium token`` makes it for the README examples."""
    import subprocess
    import sys

    out = subprocess.run(
        [
            *(sys.executable, "-m", "server.cli", "token", "--user", user),
            *("--port", str(server.port), "--data-dir", str(server.log.parent)),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return out.stdout.strip()


def open_as(page: Page, server: Server, credentials: dict[str, Any], user: str, path: str) -> None:
    """Sign ``user`` in on the server's page and open ``path`` (under /app) in ``page``."""
    page.goto(f"{server.base}{path}")
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url("**/oauth/authorize**")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(credentials["users"][user])
    page.get_by_role("button", name="Sign in and allow").click()
    page.wait_for_url(f"**{path}")
