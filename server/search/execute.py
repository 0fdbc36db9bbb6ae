"""Stage 3: run a planned search — chains, paging snapshots, _include/_revinclude.

Security contract: every read goes through the repository's one read primitive,
``Repository.find_visible`` / ``fetch_visible`` (matches, chains, _has, includes, revincludes,
compartments), which applies the request's access filter (in the database filter or, when
``residual.exact`` says Python decides it identically, on the fetched documents), the residual
re-checks, ``can_read`` and redaction; paging snapshots are bound to the access filters. This
module never touches a resource collection itself.

Paging is by stored result sets: the first page stores the ordered keys of the whole match (up
to ``SNAPSHOT_MAX``), later pages read slices of it, so writes during paging neither skip nor
repeat entries. The opaque ``_page`` token only names a snapshot and an
offset; it is decoded defensively and the snapshot is bound to the caller's access filters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cmp_to_key
from typing import Any
from urllib.parse import parse_qsl

import orjson

from resources.registry import is_resource_type, search_params_for
from server.errors import FhirError, Issue
from server.repository import Repository
from server.search import params, residual
from server.search import query as qb
from server.search.index import COMPARTMENT
from server.search.model import Include, SearchRequest
from server.search.types import Filter
from server.timeutil import now

SNAPSHOTS = "_search"
SNAPSHOT_MAX = 10_000
SNAPSHOT_TTL = timedelta(hours=1)
CHAIN_MAX = 10_000
INCLUDE_MAX = 1_000
ITERATE_ROUNDS = 3
_cleanup_counter = itertools.count()
Doc = dict[str, Any]


# --------------------------------------------------------------------------------- primitives
def find_ids(
    repo: Repository,
    resource_type: str,
    plan: qb.Plan,
    sort: Sequence[tuple[str, int]] = (("_id", 1),),
    limit: int = 0,
) -> list[str]:
    """Ids matching ``plan`` (deleted excluded, access filter applied), in ``sort`` order."""
    branches = _union_branches(plan.filter)
    if branches is None:
        docs = repo.find_visible(
            resource_type, plan.filter, fields=["_id"], checks=plan.residual, sort=sort, limit=limit
        )
        return [doc["_id"] for doc in docs]
    # An OR across ranges: one index scan per branch, merged and sorted here.
    found: dict[str, Doc] = {}
    for branch in branches:
        fields = ["_id", *(f for f, _ in sort)]
        for doc in repo.find_visible(resource_type, branch, fields=fields, checks=plan.residual):
            found.setdefault(doc["_id"], doc)
    ordered = sorted(found.values(), key=cmp_to_key(_comparator(sort)))
    return [doc["_id"] for doc in (ordered[:limit] if limit else ordered)]


def _union_branches(flt: Filter) -> list[Filter] | None:
    if set(flt) != {"$or"}:
        return None
    branches: list[Filter] = flt["$or"]
    if all(len(b) == 1 and not next(iter(b)).startswith("$") for b in branches):
        return branches
    return None


def _sort_value(doc: Doc, field: str, direction: int) -> Any:
    values = [v for v in residual.values(doc, field) if v is not None]
    if not values:
        return None
    return min(values) if direction > 0 else max(values)


def _comparator(sort: Sequence[tuple[str, int]]) -> Callable[[Doc, Doc], int]:
    """MongoDB's order: arrays sort by their min (ascending) or max (descending); null first."""

    def compare(a: Doc, b: Doc) -> int:
        for name, direction in sort:
            va, vb = _sort_value(a, name, direction), _sort_value(b, name, direction)
            if va == vb:
                continue
            if va is None or vb is None:
                less = va is None
            else:
                try:
                    less = va < vb
                except TypeError:
                    less = str(va) < str(vb)
            return (-1 if less else 1) * direction
        return 0

    return compare


def _plain(flt: Filter) -> qb.Plan:
    return qb.Plan(flt, [f for f in [flt] if qb.needs_recheck(f)])


def _resolver(repo: Repository) -> tuple[qb.Resolver, qb.RefResolver]:
    def resolve(resource_type: str, flt: Filter) -> list[str]:
        ids = find_ids(repo, resource_type, _plain(flt), limit=CHAIN_MAX + 1)
        if len(ids) > CHAIN_MAX:
            raise FhirError(
                400, "too-costly", f"a chained search matches more than {CHAIN_MAX} resources"
            )
        return ids

    def referenced(resource_type: str, flt: Filter, code: str) -> list[str]:
        plan = _plain(flt)
        keys: list[str] = []
        fields = ["_id", f"idx.{code}", *residual.fields(flt)]
        for doc in repo.find_visible(resource_type, flt, fields=fields, checks=plan.residual):
            keys += (doc.get("idx") or {}).get(code) or []
            if len(keys) > CHAIN_MAX:
                raise FhirError(400, "too-costly", f"_has matches more than {CHAIN_MAX}")
        return [k for k in keys if isinstance(k, str)]

    return resolve, referenced


def plan_for(
    repo: Repository, req: SearchRequest, resource_type: str, extra: Filter | None = None
) -> qb.Plan:
    resolve, referenced = _resolver(repo)
    return qb.build(resource_type, req.clauses, resolve, referenced, [extra] if extra else [])


# --------------------------------------------------------------------------- conditional API
def match(repo: Repository, resource_type: str, query: str, *, limit: int = 2) -> list[str]:
    """Logical ids matching a conditional URL's query (``identifier=http://x|1&birthdate=1970``).

    Strict: an unknown or malformed parameter, a result parameter, or an empty query is a 400,
    so a conditional operation can never match everything because a parameter was dropped.
    """
    qs = query.strip()
    if "?" in qs:
        qs = qs.split("?", 1)[1]
    items = parse_qsl(qs, keep_blank_values=True)
    if not items:
        raise FhirError(400, "invalid", "a conditional operation needs search parameters")
    req = params.parse(resource_type, items, strict=True)
    if not req.clauses:
        raise FhirError(400, "invalid", f"the conditional query {query!r} has no search criteria")
    extra = [n for n, _ in req.echo if n.startswith("_") and n not in ("_id",)]
    extra = [n for n in extra if n in params.RESULT_PARAMS or n.startswith("_include")]
    if extra:
        raise FhirError(400, "invalid", f"result parameters are not allowed here: {extra}")
    plan = plan_for(repo, req, resource_type)
    return find_ids(repo, resource_type, plan, limit=limit)


# ------------------------------------------------------------------------------------ paging
def _fingerprint(repo: Repository, types: Sequence[str]) -> str:
    raw = orjson.dumps(
        [repo.access_filter(t) for t in types], default=str, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(raw).hexdigest()


def encode_page(sid: str, offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([sid, offset])).decode().rstrip("=")


def decode_page(token: str) -> tuple[str, int]:
    try:
        if len(token) > 200:
            raise ValueError
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        sid, offset = orjson.loads(raw)
        if (
            not isinstance(sid, str)
            or len(sid) != 32
            or not all(c in "0123456789abcdef" for c in sid)
        ):
            raise ValueError
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 10**7:
            raise ValueError
        return sid, offset
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise FhirError(400, "invalid", f"invalid _page token {token[:40]!r}") from exc


def save_snapshot(repo: Repository, keys: list[str], types: Sequence[str]) -> str:
    sid = uuid.uuid4().hex
    coll = repo.store.db[SNAPSHOTS]
    coll.insert_one(
        {"_id": sid, "keys": keys, "created": now(), "owner": _fingerprint(repo, types)}
    )
    if next(_cleanup_counter) % 50 == 0:
        coll.delete_many({"created": {"$lt": now() - SNAPSHOT_TTL}})
    return sid


def load_snapshot(repo: Repository, sid: str, types: Sequence[str]) -> list[str]:
    doc = repo.store.db[SNAPSHOTS].find_one({"_id": sid})
    if doc is None or doc["created"] < now() - SNAPSHOT_TTL:
        raise FhirError(410, "not-found", "these search results expired; repeat the search")
    if doc.get("owner") != _fingerprint(repo, types):
        raise FhirError(400, "invalid", "this _page token belongs to another session")
    keys: list[str] = doc["keys"]
    return keys


@dataclass
class SearchResult:
    matches: list[tuple[str, Doc]]
    included: list[tuple[str, Doc]] = field(default_factory=list)
    total: int | None = None
    offset: int = 0
    count: int = 20
    snapshot: str | None = None
    has_next: bool = False
    issues: list[Issue] = field(default_factory=list)


def _keys_for_type(
    repo: Repository, req: SearchRequest, resource_type: str, extra: Filter | None, cap: int
) -> list[str]:
    plan = plan_for(repo, req, resource_type, extra)
    sort = qb.sort_spec(resource_type, req.sort)
    return [f"{resource_type}/{i}" for i in find_ids(repo, resource_type, plan, sort, cap)]


def run(
    repo: Repository,
    req: SearchRequest,
    types: Sequence[str],
    *,
    count: int,
    compartment: str | None = None,
) -> SearchResult:
    """Search ``types`` (one for a type search; several for system/compartment searches)."""
    issues = list(req.issues)
    if req.page:
        sid, offset = decode_page(req.page)
        keys = load_snapshot(repo, sid, types)
        page = keys[offset : offset + count]
        result = SearchResult(repo.fetch_visible(page), total=len(keys), offset=offset, count=count)
        result.snapshot, result.has_next = sid, count > 0 and offset + count < len(keys)
    else:
        keys = []
        # Counting exactly (``_total=accurate`` or ``_summary=count``) reads every match anyway.
        exact = req.total == "accurate" or req.summary == "count"
        cap = 0 if exact else SNAPSHOT_MAX + 1
        for t in types:
            extra = None
            if compartment is not None:
                extra = (
                    {"_id": compartment.split("/")[1]}
                    if t == "Patient"
                    else {f"idx.{COMPARTMENT}": compartment}
                )
            keys += _keys_for_type(repo, req, t, extra, cap)
            if cap and len(keys) > SNAPSHOT_MAX:
                break
        capped = len(keys) > SNAPSHOT_MAX
        total = len(keys) if exact or not capped else None
        keys = keys[:SNAPSHOT_MAX]
        if req.summary == "count":
            return SearchResult([], total=total, issues=issues)
        if capped:
            issues.append(
                Issue(
                    "too-costly",
                    f"only the first {SNAPSHOT_MAX} matches can be paged; narrow the search",
                    "warning",
                )
            )
        page = keys[:count]
        result = SearchResult(repo.fetch_visible(page), total=total, count=count)
        if 0 < count < len(keys):
            result.snapshot = save_snapshot(repo, keys, types)
            result.has_next = True
    result.issues = issues
    if req.includes or req.revincludes:
        result.included, more = includes(repo, result.matches, req.includes, req.revincludes)
        result.issues += more
    return result


# ----------------------------------------------------------------------------------- includes
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


def compartment_filter(patient_id: str) -> Filter:
    return {f"idx.{COMPARTMENT}": f"Patient/{patient_id}"}
