"""fhirpy, a real FHIR client over real HTTP: ``get_or_create`` twice gives one resource.

fhirpy sends ``POST Patient?identifier=system|value`` and expects a conditional create; a server
that ignores the query stores a duplicate on every call. The app runs in uvicorn on a free
loopback port (fhirpy speaks HTTP through ``requests``, not ASGI).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound

from server.embedded_db import free_loopback_port

SYSTEM = "urn:oid:2.16.840.1.113883.4.1"


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    port = free_loopback_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-fhirpy", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def fhir(base_url: str) -> SyncFHIRClient:
    return SyncFHIRClient(base_url, extra_headers={"Content-Type": "application/fhir+json"})


def _patient(fhir: SyncFHIRClient, value: str) -> object:
    return fhir.resource(
        "Patient", identifier=[{"system": SYSTEM, "value": value}], name=[{"family": "Okafor"}]
    )


def test_get_or_create_twice_gives_one_resource(fhir: SyncFHIRClient) -> None:
    search = fhir.resources("Patient").search(identifier=f"{SYSTEM}|goc-1")
    first, created_first = search.get_or_create(_patient(fhir, "goc-1"))
    second, created_second = search.get_or_create(_patient(fhir, "goc-1"))
    assert (created_first, created_second) == (True, False)
    assert second["id"] == first["id"]
    assert [p["id"] for p in search.fetch_all()] == [first["id"]]


def test_get_or_create_with_two_matches_is_refused(fhir: SyncFHIRClient) -> None:
    for _ in range(2):
        _patient(fhir, "goc-2").save()
    search = fhir.resources("Patient").search(identifier=f"{SYSTEM}|goc-2")
    with pytest.raises(MultipleResourcesFound) as raised:  # fhirpy's name for a 412
        search.get_or_create(_patient(fhir, "goc-2"))
    assert "more than one" in str(raised.value)
    assert search.count() == 2
