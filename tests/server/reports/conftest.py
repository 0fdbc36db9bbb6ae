"""The case kit (tests/server/cases/kit.py) on one app per module, with the expert's credentials
on file so the PDF has something to show."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from server.app import create_app
from tests.server.cases.conftest import _kit
from tests.server.cases.kit import FHIR, Kit, ok
from tests.smart_helpers import ADMIN

EXPERT = "exp-oncology-ca"
CREDENTIAL = "FRCPC Medical Oncology"


@pytest.fixture(scope="module")
def kit(module_settings: Callable[..., Any], mongo_uri: str) -> Iterator[Kit]:
    app = create_app(module_settings("reports", auth="on", admin_token=ADMIN))
    for k in _kit(app):
        practitioner = k.read(f"Practitioner/prac-{EXPERT}", k.p.trusted)
        practitioner["qualification"] = [{"code": {"text": CREDENTIAL}}]
        ok(
            k.http.put(
                f"/fhir/Practitioner/prac-{EXPERT}",
                json=practitioner,
                headers={**FHIR, **k.p.trusted},
            )
        )
        yield k
    cleanup: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    cleanup.drop_database(app.state.consilium.settings.db_name)
    cleanup.close()
    app.state.consilium.store.close()
