"""Fixtures: a real receiver per test, and Subscription bodies pointing at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.notifications import spec
from tests.server.notifications.receiver import Receiver

FAST = {
    "notify_allow_loopback": True,
    "notify_backoff_base_seconds": 0.05,
    "notify_backoff_max_seconds": 0.2,
    "notify_poll_seconds": 0.05,
}


@pytest.fixture
def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    """An app whose worker polls and retries fast; modules with other settings override it."""
    return app_factory(**FAST)


@pytest.fixture
def c(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def subscription(
    endpoint: str,
    criteria: str = "DiagnosticReport?status=final",
    *,
    payload: str | None = "full-resource",
    secret: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": endpoint}
    if payload is not None:
        channel["payload"] = "application/fhir+json"
        channel["_payload"] = {"extension": [{"url": spec.PAYLOAD_EXT, "valueCode": payload}]}
    if secret is not None:
        channel["extension"] = [{"url": spec.SECRET_EXT, "valueString": secret}]
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "second-opinion reports",
        "criteria": criteria,
        "channel": channel,
        **kw,
    }
