"""One real ``consilium serve`` (auth on) on a copy of seeded demo data and one headless Debian
Chromium per module of the tracker's browser tests; a fresh browser context per test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.serve_process import Server, alive
from tests.e2e.tracker.kit import CHROMIUM, seeded_server, sync_playwright

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="session")
def seeded_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory ``consilium serve --seed`` (auth on) filled and then stopped on, once
    per test process. Seeding is most of a server's start (about 18 s against 3 s on an idle
    2-core machine, far more beside another test worker); each module's server starts on a
    copy of it instead, so modules still never see each other's writes."""
    data = tmp_path_factory.mktemp("tracker-seeded") / "data"
    srv = Server(data, {"CONSILIUM_AUTH": "on"}, args=("--seed",), timeout=180)
    for pid in srv.stop():  # the database child too: its files are copied next
        deadline = time.monotonic() + 30
        while alive(pid):
            assert time.monotonic() < deadline, f"the seeded server's child {pid} did not stop"
            time.sleep(0.05)
    return data


@pytest.fixture(scope="module")
def server(seeded_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = seeded_server(seeded_data, tmp_path_factory)
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
