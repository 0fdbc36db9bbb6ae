"""``Patient/[id]/$everything`` (R4 Patient-everything), on top of the search engine.

Why reuse ``server.search.execute.run``: a compartment search over every compartment type is
exactly this operation, and the engine reads through the repository's one read primitive
(``Repository.find_visible``: access filter, ``can_read`` and redaction of each result) and
pages through stored snapshots (so
writes between pages neither skip nor repeat entries; at most ``SNAPSHOT_MAX`` keys, beyond
which it adds a ``too-costly`` warning to the Bundle). Referenced resources outside the
compartment (practitioners, organizations, plans) come as ``search.mode = include`` per page.

Links carry this operation's own parameters (``_count``, ``_type``, ``_since``) plus ``_page``,
so following ``next`` is a valid GET of the operation.
"""

from __future__ import annotations

from typing import Any

from resources.registry import patient_compartment
from server.errors import FhirError
from server.operations import Invocation, Operation, load_definition
from server.search import params as search_params
from server.search.bundle import searchset
from server.search.execute import run
from server.search.model import Include


def compartment_types() -> list[str]:
    return list(dict.fromkeys(["Patient", *patient_compartment()]))


def _requested_types(values: list[Any]) -> list[str] | None:
    if not values:
        return None
    allowed = set(compartment_types())
    out: list[str] = []
    for value in values:
        for t in str(value).split(","):
            t = t.strip()
            if t not in allowed:
                raise FhirError(
                    400,
                    "invalid",
                    f"_type {t[:64]!r} is not a type of the Patient compartment",
                    expression=["Parameters.parameter('_type')"],
                )
            out.append(t)
    return list(dict.fromkeys(out))


def everything(call: Invocation) -> dict[str, Any]:
    assert call.rid is not None
    repo, settings, p = call.repo, call.settings, call.params
    repo.read("Patient", call.rid)  # 404/410 (and the policy) before anything else
    count_value = p.first("_count")
    if count_value is not None and count_value < 1:
        raise FhirError(400, "invalid", "_count must be at least 1")
    count = min(count_value or settings.default_page_size, settings.max_page_size)
    wanted = _requested_types(p.all("_type"))
    present = set(repo.store.db.list_collection_names(session=repo.session))
    types = [t for t in (wanted or compartment_types()) if t in present]

    items: list[tuple[str, str]] = []
    since = p.first("_since")
    if since is not None:
        items.append(("_lastUpdated", f"ge{since}"))
    if "_page" in p.control:
        items.append(("_page", p.control["_page"]))
    req = search_params.parse("Basic", items, strict=True, max_count=settings.max_page_size)
    req.includes = [Include("*", "*", None)]
    req.echo = [("_count", str(count))]
    if wanted:
        req.echo.append(("_type", ",".join(wanted)))
    if since is not None:
        req.echo.append(("_since", str(since)))

    result = run(repo, req, types, count=count, compartment=f"Patient/{call.rid}")
    result.count = count
    path = f"Patient/{call.rid}/$everything"
    return searchset(call.base, path, req, result)


OPERATION = Operation(load_definition("everything.json"), everything)
