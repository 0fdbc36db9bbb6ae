"""One real ``consilium serve --seed`` (auth on) and one headless Debian Chromium per module of
the tracker's browser tests; a fresh browser context per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import CHROMIUM, sync_playwright

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("tracker") / "data",
        {"CONSILIUM_AUTH": "on"},
        args=("--seed",),
        timeout=180,
    )
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def credentials(server: Server) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((server.log.parent / "demo-credentials.json").read_text())
    return data


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()
