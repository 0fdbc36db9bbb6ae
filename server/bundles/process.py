"""``POST [base]`` with a Bundle: dispatch to transaction or batch and build the response."""

from __future__ import annotations

import uuid
from typing import Any

from server.bundles.batch import run_batch
from server.bundles.entries import error_entry, parse_bundle, response_entry
from server.bundles.transaction import run_transaction
from server.config import Settings
from server.errors import FhirError
from server.integrity import request_base
from server.repository import Repository


def process_bundle(
    repo: Repository, settings: Settings, body: Any, base: str, prefer: str
) -> dict[str, Any]:
    token = request_base.set(base)
    try:
        kind, entries = parse_bundle(body, base, settings.max_bundle_entries)
        out: list[dict[str, Any]] = []
        if kind == "transaction":
            for outcome in run_transaction(repo, entries, settings, base):
                out.append(response_entry(outcome, base, prefer))
        else:
            for result in run_batch(repo, entries, settings, base):
                if isinstance(result, FhirError):
                    out.append(error_entry(result))
                else:
                    out.append(response_entry(result, base, prefer))
    finally:
        request_base.reset(token)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": f"{kind}-response",
    }
    if out:
        bundle["entry"] = out
    return bundle
