"""Fixtures shared by the server's tests: an app with the read cache (and so the page cache) on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient


def ready(app: FastAPI) -> None:
    """Wait until the read-cache watcher serves (the first lease after start)."""
    cache = app.state.consilium.read_cache
    deadline = time.monotonic() + 10
    while not cache.usable():
        assert time.monotonic() < deadline, "the read-cache watcher never became healthy"
        time.sleep(0.05)


@pytest.fixture
def cached(app_factory: Any) -> Iterator[tuple[TestClient, FastAPI]]:
    app = app_factory(read_cache=100, read_cache_lease_seconds=0.5)
    with TestClient(app, base_url="http://testserver") as c:
        ready(app)
        yield c, app
