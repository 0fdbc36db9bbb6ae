"""_include and _revinclude (with ``:iterate``) for a page of matches.

Why its own module: resolving includes is a separate stage from matching and paging, with its
own bounds (``INCLUDE_MAX`` per include, ``ITERATE_ROUNDS`` rounds); like the rest of the search
engine it reads only through ``Repository.find_visible``/``fetch_visible``, so included
resources get the same access filter, ``can_read`` and redaction as matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resources.registry import is_resource_type, search_params_for
from server.errors import Issue
from server.repository import Repository
from server.search.model import Include

INCLUDE_MAX = 1_000
ITERATE_ROUNDS = 3
Doc = dict[str, Any]


def _reference_codes(resource_type: str, code: str) -> list[str]:
    ps = search_params_for(resource_type)
    if code == "*":
        return [c for c, p in ps.items() if p.type == "reference" and p.expression]
    return [code] if code in ps else []


def _forward(inc: Include, docs: Sequence[tuple[str, Doc]]) -> list[str]:
    keys: list[str] = []
    for t, doc in docs:
        if inc.source not in ("*", t):
            continue
        idx = doc.get("idx") or {}
        for code in _reference_codes(t, inc.code):
            for ref in idx.get(code) or []:
                if not isinstance(ref, str) or ref.count("/") != 1:
                    continue
                if inc.target and not ref.startswith(inc.target + "/"):
                    continue
                keys.append(ref)
    return keys


def _referring_codes(inc: Include, source: str, targets: set[str]) -> list[str]:
    """The reference parameters of ``source`` to look in.

    For ``_revinclude=*`` only those whose declared targets include a matched type, which keeps
    the wildcard from querying every reference parameter of every stored type; a parameter the
    client named is always used.
    """
    codes = _reference_codes(source, inc.code)
    if inc.source != "*":
        return codes
    ps = search_params_for(source)
    return [c for c in codes if not ps[c].target or targets.intersection(ps[c].target)]


def _sources(repo: Repository, inc: Include) -> list[str]:
    """``_revinclude=*`` looks in every type stored so far; a named source only in itself."""
    if inc.source != "*":
        return [inc.source]
    present = repo.store.db.list_collection_names(session=repo.session)
    return sorted(n for n in present if is_resource_type(n))


def _reverse(repo: Repository, inc: Include, docs: Sequence[tuple[str, Doc]]) -> list[str]:
    refs = [f"{t}/{d['_id']}" for t, d in docs]
    if inc.target:
        refs = [r for r in refs if r.startswith(inc.target + "/")]
    if not refs:
        return []
    targets = {r.split("/", 1)[0] for r in refs}
    keys: list[str] = []
    for source in _sources(repo, inc):
        for code in _referring_codes(inc, source, targets):
            flt = {f"idx.{code}": {"$in": refs}}
            for d in repo.find_visible(source, flt, fields=["_id"], limit=INCLUDE_MAX + 1):
                keys.append(f"{source}/{d['_id']}")
                if len(keys) > INCLUDE_MAX:
                    return keys
    return keys


def includes(
    repo: Repository,
    matches: list[tuple[str, Doc]],
    incs: Sequence[Include],
    revincs: Sequence[Include],
) -> tuple[list[tuple[str, Doc]], list[Issue]]:
    seen = {f"{t}/{d['_id']}" for t, d in matches}
    included: list[tuple[str, Doc]] = []
    frontier = matches
    issues: list[Issue] = []
    for round_no in range(ITERATE_ROUNDS + 1):
        fwd = [i for i in incs if round_no == 0 or i.iterate]
        rev = [i for i in revincs if round_no == 0 or i.iterate]
        if not (fwd or rev) or not frontier:
            break
        keys: list[str] = []
        for inc in fwd:
            keys += _forward(inc, frontier)
        for inc in rev:
            keys += _reverse(repo, inc, frontier)
        new = [k for k in dict.fromkeys(keys) if k not in seen]
        room = INCLUDE_MAX - len(included)
        if len(new) > room:
            issues.append(Issue("too-costly", f"includes capped at {INCLUDE_MAX}", "warning"))
            new = new[:room]
        seen.update(new)
        frontier = repo.fetch_visible(new)
        included += frontier
    return included, issues
