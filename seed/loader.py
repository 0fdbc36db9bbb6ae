"""Loads the conformance resources and the demo network through the repository.

Everything is written with ``Repository.update(type, fixed_id, resource)``: PUT semantics with
ids fixed in the data, and an identical PUT makes no new version, so seeding is idempotent
(a second run writes nothing) and going through the one write path means the demo data meets
exactly the validation, profile and domain hooks a client's writes meet.

Demo data are FHIR collection Bundles in ``seed/data/``, loaded in file-name order; the files are
ordered so that every reference points at a resource written earlier (the referential-integrity
check may be on), which is also why second-opinion reports come before the Tasks that output
them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from profiles.conformance import conformance_resources
from server import fhirjson
from server.repository import Repository

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).resolve().parent / "data"

Resource = dict[str, Any]


def demo_files() -> list[Path]:
    return sorted(DATA_DIR.glob("*.json"))


def _resources_of(doc: Any) -> Iterator[Resource]:
    if isinstance(doc, list):
        for item in doc:
            yield from _resources_of(item)
    elif isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for entry in doc.get("entry", []):
            yield entry["resource"]
    elif isinstance(doc, dict):
        yield doc


def demo_resources() -> list[Resource]:
    """Every demo resource, in load order."""
    out: list[Resource] = []
    for path in demo_files():
        out.extend(_resources_of(fhirjson.loads(path.read_bytes())))  # exact decimals
    return out


def _write_all(repo: Repository, resources: Iterable[Resource], counts: dict[str, int]) -> None:
    for resource in resources:
        rtype, rid = resource["resourceType"], resource["id"]
        before = repo.current(rtype, rid)
        stored, created = repo.update(rtype, rid, resource)
        if created:
            counts["created"] += 1
        elif before is not None and stored.version_id == before.version_id:
            counts["unchanged"] += 1
        else:
            counts["updated"] += 1


def seed_all(state: Any, *, demo: bool) -> dict[str, int]:
    """Write the IG's conformance resources and, with ``demo``, the demo network.

    Returns how many resources were created, updated, or left unchanged (all unchanged on a
    second run).
    """
    repo = Repository(state.store, state.hooks)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    _write_all(repo, conformance_resources(), counts)
    if demo:
        _write_all(repo, demo_resources(), counts)
    log.info("seed: %s", counts)
    return counts
