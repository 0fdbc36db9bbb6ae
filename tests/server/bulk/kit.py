"""Shared builders for the import tests: NDJSON files and small resources."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from server.bulk.load import Importer, ImportResult
from server.bulk.ndjson import read_lines
from server.repository import Repository

B = "https://consilium.health/fhir"
MB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}


def write_ndjson(path: Path, lines: list[Any]) -> Path:
    """One line per item: dicts as JSON, strings verbatim (for malformed lines)."""
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def patient(pid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": f"Imp-{pid}"}], **extra}


def observation(oid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 13.5, "unit": "g/dL"},
    }


def organization(oid: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": oid, "name": f"Org {oid}"}


def coverage(cid: str, pid: str, payor: str, cert: str) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "id": cid,
        "status": "active",
        "identifier": [{"type": MB, "system": f"{B}/sid/certificate/{payor}", "value": cert}],
        "beneficiary": {"reference": f"Patient/{pid}"},
        "payor": [{"reference": f"Organization/{payor}"}],
    }


def run_import(app: FastAPI, path: Path, **kwargs: Any) -> ImportResult:
    state = app.state.consilium
    importer = Importer(Repository(state.store, state.hooks), state.settings, **kwargs)
    return importer.run(read_lines([path]))
