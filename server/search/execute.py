"""Stage 3: run a planned search — chains, keyset paging, _include/_revinclude.

Security contract: every read of resource data goes through the repository's one read
primitive, ``Repository.find_visible`` / ``fetch_visible`` (matches, chains, _has, includes,
revincludes, compartments), which applies the request's access filter (in the database filter
or, when ``residual.exact`` says Python decides it identically, on the fetched documents), the
residual re-checks, ``can_read`` and redaction. The one other read is the *position* of a
resource that changed between pages: its version of first-page time, read through
``Repository.history`` on the server's account, only ever for a resource the caller's own
``find_visible`` just matched, and only its sort values are used (never disclosed). Paging
state is bound to the access filters and the query. This module never touches a resource
collection itself.

Paging is keyset paging (docs/paging.md): a page reads only ``_count + 1`` matches in sort order
(``_id`` the final tie-breaker) and the ``next`` link names a small paging state in the
``_search`` collection (query fingerprint, sort, first-page time, owner binding, the last key of
each page served) plus an offset, so any worker serves any page and a first page costs no work
proportional to the match count. Resources that changed after the first page keep their
first-page position (read from history), resources created after it are left out, deleted ones
drop out: no entry of the first-page result is skipped or repeated. Sorts whose values Python
cannot order exactly as MongoDB does (``keyset.keyset_pageable``) fall back to a stored result
set (the ordered keys, up to ``SNAPSHOT_MAX``). The opaque ``_page`` token only names a state
and an offset; it is decoded defensively.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cmp_to_key
from typing import Any
from urllib.parse import parse_qsl

import bson
import bson.errors
import orjson

from server.errors import FhirError, Issue
from server.repository import Repository
from server.search import keyset, params, residual
from server.search import query as qb
from server.search.includes import includes
from server.search.index import COMPARTMENT, extract_index
from server.search.keys import BUCKET, BUCKETS, Window, bucket_text
from server.search.model import SearchRequest
from server.search.page_cache import FirstPage, PageCache
from server.search.types import Filter
from server.storage import build_documents
from server.timeutil import now

SNAPSHOTS = "_search"
SNAPSHOT_MAX = 10_000  # result-set fallback only (sorts keyset paging cannot order exactly)
SNAPSHOT_TTL = timedelta(hours=1)
TOTAL_SCAN = 100  # without _total=accurate, total is counted exactly up to this many matches
CHANGED_MAX = 1_000  # resources changed since the first page a later page re-positions
CHAIN_MAX = 10_000
_cleanup_counter = itertools.count()
Doc = dict[str, Any]
Row = tuple[int, keyset.Key, str]  # (index into the searched types, sort key, logical id)


# --------------------------------------------------------------------------------- primitives
def find_ids(
    repo: Repository,
    resource_type: str,
    plan: qb.Plan,
    sort: Sequence[tuple[str, int]] = (("_id", 1),),
    limit: int = 0,
) -> list[str]:
    """Ids matching ``plan`` (deleted excluded, access filter applied), in ``sort`` order."""
    fields = ["_id"] if _union_branches(plan.filter) is None else None
    return [doc["_id"] for doc in find_rows(repo, resource_type, plan, sort, limit, fields)]


def find_rows(
    repo: Repository,
    resource_type: str,
    plan: qb.Plan,
    sort: Sequence[tuple[str, int]],
    limit: int = 0,
    fields: Sequence[str] | None = None,
) -> list[Doc]:
    """The first ``limit`` (0: all) projected matches of ``plan`` in ``sort`` order.

    ``fields`` defaults to ``_id`` and the sort fields. An OR across ranges is one index scan
    per branch (each sorted and limited by the database), merged and cut here.
    """
    wanted = list(dict.fromkeys(fields or ["_id", *(f for f, _ in sort)]))
    branches = _union_branches(plan.filter)
    if branches is None:
        docs = repo.find_visible(
            resource_type, plan.filter, fields=wanted, checks=plan.residual, sort=sort, limit=limit
        )
        return list(docs)
    wanted = list(dict.fromkeys([*wanted, *(f for f, _ in sort)]))
    found: dict[str, Doc] = {}
    for branch in branches:
        for doc in repo.find_visible(
            resource_type, branch, fields=wanted, checks=plan.residual, sort=sort, limit=limit
        ):
            found.setdefault(doc["_id"], doc)
    ordered = sorted(found.values(), key=cmp_to_key(keyset.comparator(sort)))
    return ordered[:limit] if limit else ordered


def _union_branches(flt: Filter) -> list[Filter] | None:
    if set(flt) != {"$or"}:
        return None
    branches: list[Filter] = flt["$or"]
    if all(len(b) == 1 and not next(iter(b)).startswith("$") for b in branches):
        return branches
    return None


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


def _query_fingerprint(req: SearchRequest, compartment: str | None) -> str:
    """The search a paging state belongs to: every parameter but the page size, and where."""
    pairs = sorted([n, v] for n, v in req.echo if n != "_count")
    return hashlib.sha256(orjson.dumps([req.resource_type, compartment, pairs])).hexdigest()


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


def _save_state(
    repo: Repository,
    req: SearchRequest,
    types: Sequence[str],
    compartment: str | None,
    state: Doc,
) -> str:
    """Store a paging state (``_search``, shared by every worker) and return its id."""
    sid = uuid.uuid4().hex
    coll = repo.store.db[SNAPSHOTS]
    state.setdefault("created", now())
    state |= {
        "_id": sid,
        "owner": _fingerprint(repo, types),
        "query": _query_fingerprint(req, compartment),
        "types": list(types),
    }
    coll.insert_one(state)
    if next(_cleanup_counter) % 50 == 0:
        coll.delete_many({"created": {"$lt": now() - SNAPSHOT_TTL}})
    return sid


def _load_state(repo: Repository, sid: str, req: SearchRequest, compartment: str | None) -> Doc:
    doc = repo.store.db[SNAPSHOTS].find_one({"_id": sid})
    if doc is None or not isinstance(doc.get("created"), datetime):
        raise FhirError(410, "not-found", "these search results expired; repeat the search")
    if doc["created"] < now() - SNAPSHOT_TTL:
        raise FhirError(410, "not-found", "these search results expired; repeat the search")
    types = doc.get("types")
    if not isinstance(types, list) or doc.get("owner") != _fingerprint(repo, types):
        raise FhirError(400, "invalid", "this _page token belongs to another session")
    if doc.get("query") != _query_fingerprint(req, compartment):
        raise FhirError(400, "invalid", "this _page token belongs to another search")
    return doc


@dataclass
class SearchResult:
    matches: list[tuple[str, Doc]]
    included: list[tuple[str, Doc]] = field(default_factory=list)
    total: int | None = None
    offset: int = 0
    count: int = 20
    snapshot: str | None = None  # the paging state the links name
    has_next: bool = False
    prev_offset: int | None = None  # offset of the previous page, when it can be linked
    issues: list[Issue] = field(default_factory=list)


def _type_plan(repo: Repository, req: SearchRequest, t: str, compartment: str | None) -> qb.Plan:
    extra = None
    if compartment is not None:
        extra = (
            {"_id": compartment.split("/")[1]}
            if t == "Patient"
            else {f"idx.{COMPARTMENT}": compartment}
        )
    return plan_for(repo, req, t, extra)


def _count(
    repo: Repository, req: SearchRequest, types: Sequence[str], compartment: str | None
) -> int:
    """Every match over ``types`` (ids only, unsorted): only when the client asks for it."""
    return sum(len(find_ids(repo, t, _type_plan(repo, req, t, compartment), ())) for t in types)


def _version_at(repo: Repository, t: str, rid: str, before: datetime) -> Doc | None:
    """The stored document of ``t/rid`` as it was just before ``before`` (None: not there).

    Read on the server's account: only its sort values are used, to keep the first-page
    position of a resource the caller's own ``find_visible`` matched (module docstring).
    """
    old = next(
        repo.unrestricted().history(
            resource_type=t, rid=rid, at_or_before=before - timedelta(milliseconds=1), limit=1
        ),
        None,
    )
    if old is None or old.deleted or old.resource is None:
        return None
    docs = build_documents(
        t,
        rid,
        old.version_id,
        old.last_updated,
        old.resource,
        interaction="update",
        idx=extract_index(t, old.resource),
        acl=old.acl or {},
    )
    return docs.current


def _rows_after(
    repo: Repository,
    t: str,
    plan: qb.Plan,
    sort: keyset.Sort,
    after: keyset.Key | None,
    since: datetime | None,
    need: int,
    hint: int,
) -> list[tuple[keyset.Key, str]]:
    """The first ``need`` (key, id) of ``t`` after ``after`` in ``sort`` order.

    ``since`` (the first-page time) given: rows written since then are left out of the scan and
    re-positioned by their version of that time instead (``_version_at``), or left out when
    they did not exist then. The database filter stays the plan's own (SecantusDB keeps its
    index scan only when the index covers every predicate), so the key range is applied here
    on the projected sort values; ``hint`` (rows already paged) sizes the first read.
    """
    fields = list(dict.fromkeys(["_id", "ts", *(f for f, _ in sort)]))
    found: list[tuple[keyset.Key, str]] = []
    limit = need if after is None else hint + need + 16
    while True:
        docs = find_rows(repo, t, plan, sort, limit, fields)
        found = []
        for doc in docs:
            if since is not None and doc["ts"] >= since:
                continue
            key = keyset.key_of(doc, sort)
            if after is None or keyset.compare_keys(key, after, sort) > 0:
                found.append((key, doc["_id"]))
                if len(found) >= need:
                    break
        if len(found) >= need or len(docs) < limit:
            break
        limit *= 4
    if since is not None:
        found += _changed_after(repo, t, plan, sort, after, since)

        def by_key(a: tuple[keyset.Key, str], b: tuple[keyset.Key, str]) -> int:
            return keyset.compare_keys(a[0], b[0], sort)

        found.sort(key=cmp_to_key(by_key))
    return found[:need]


WINDOW_SORT: keyset.Sort = ((BUCKET, 1), ("_id", 1))
# what a window read takes of each match: its row, and all a page entry needs (the database
# decodes the whole document either way; this spares the page its second read)
WINDOW_FIELDS = ("_id", "ts", "vid", "deleted", BUCKET, "resource", "idx", "acl")
WINDOW_FIRST = 16  # buckets of the first window of a value never seen (1/4096 of them)
WINDOW_GROWTH = 32  # how much wider the next window is after an empty one
WINDOW_PROBES = 5  # windows before the rest of the range is read in one
# above this many matches (as windows estimate them) a first page reads only its own rows: a
# result of up to TOTAL_SCAN is then read whole but for a chance of about 1e-5 (Poisson)
SMALL_RESULT = 5 * TOTAL_SCAN
# (type, key) and (type, field) -> matches per bucket, as last seen (sizes the first window)
_densities: dict[tuple[str, str], float] = {}
DENSITIES_MAX = 4096


def _window_rows(
    repo: Repository,
    t: str,
    plan: qb.Plan,
    window: Window,
    after: keyset.Key | None,
    since: datetime | None,
    need: int,
    enough: int,
    kept: dict[str, Doc] | None = None,
) -> tuple[list[tuple[keyset.Key, str]], bool]:
    """``_rows_after`` for a query windows serve, in ``WINDOW_SORT`` order (docs/indexing.md),
    and whether it stopped short of ``need`` rows with more matches left unread.

    Reads bucket ranges of the key from the cursor's bucket on, each as wide as the matches
    seen so far say the missing rows take, until the rows found below the window's end are
    ``need``, or are ``enough`` (the page and one more) while the matches seen put the whole
    result above ``SMALL_RESULT`` (then its total is not given anyway), or the buckets run
    out; so a page over 10,000 matches reads about a page of them. A prefix search also reads
    its longer values whole (``Window.longer_query``). Rows are final below the covered end:
    every read is complete for its buckets.
    ``kept`` gets the rows' stored documents: the page is then disclosed from them
    (``Repository.fetch_visible``) instead of being read again.
    """
    fields = WINDOW_FIELDS
    density_key, field_key = (t, window.key), (t, window.field)

    def rows(docs: Any) -> dict[str, tuple[keyset.Key, str]]:
        out: dict[str, tuple[keyset.Key, str]] = {}
        for doc in docs:
            if since is not None and doc["ts"] >= since:
                continue
            key: keyset.Key = [doc.get(BUCKET), doc["_id"]]
            if after is None or keyset.compare_keys(key, after, WINDOW_SORT) > 0:
                out[doc["_id"]] = (key, doc["_id"])
                if kept is not None:
                    kept[f"{t}/{doc['_id']}"] = doc
        return out

    start = int(after[0], 16) if after is not None and isinstance(after[0], str) else 0
    # the key's own density when it was searched before, else the field's last one (a
    # patient's Observations are a few, whichever the patient), else a narrow first window
    density = _densities.get(density_key, _densities.get(field_key))

    if density is None:
        width = WINDOW_FIRST
    else:
        width = _width(enough if density * BUCKETS > SMALL_RESULT else need, density)
    if start + width >= BUCKETS:  # the rest in one read: the plain query, one find
        docs = list(repo.find_visible(t, plan.filter, fields=fields, checks=plan.residual))
        _densities[density_key] = _densities[field_key] = len(docs) / BUCKETS
        ordered = sorted(rows(docs).values(), key=cmp_to_key(_by_key(WINDOW_SORT)))
        return _with_changed(repo, t, plan, ordered, after, since)[:need], False
    found: dict[str, tuple[keyset.Key, str]] = {}
    longer = 0
    if window.prefix:
        found = rows(
            repo.find_visible(t, plan.filter, fields=fields, checks=plan.residual, longer=True)
        )
        longer = len(found)
    lo, seen, probes, short = start, 0, 0, False
    while lo < BUCKETS:
        hi = BUCKETS if probes >= WINDOW_PROBES else min(BUCKETS, lo + width)
        docs = list(
            repo.find_visible(t, plan.filter, fields=fields, checks=plan.residual, window=(lo, hi))
        )
        seen += len(docs)
        found.update(rows(docs))
        lo, probes = hi, probes + 1
        top = bucket_text(lo)
        have = sum(1 for k, _ in found.values() if k[0] < top)
        covered = lo - start
        goal = enough if seen / covered * BUCKETS + longer > SMALL_RESULT else need
        if have >= goal:
            short = have < need and lo < BUCKETS
            break
        width = width * WINDOW_GROWTH if seen == 0 else _width(goal - have, seen / covered)
    if seen >= 8 or lo - start >= BUCKETS // 64:  # enough read for the density to mean much
        if len(_densities) >= DENSITIES_MAX:
            _densities.clear()
        _densities[density_key] = _densities[field_key] = seen / (lo - start)
    ordered = sorted(found.values(), key=cmp_to_key(_by_key(WINDOW_SORT)))
    return _with_changed(repo, t, plan, ordered, after, since)[:need], short


def _with_changed(
    repo: Repository,
    t: str,
    plan: qb.Plan,
    ordered: list[tuple[keyset.Key, str]],
    after: keyset.Key | None,
    since: datetime | None,
) -> list[tuple[keyset.Key, str]]:
    """A later page's rows plus the matches written since the first page, at their positions."""
    if since is None:
        return ordered
    ordered = ordered + _changed_after(repo, t, plan, WINDOW_SORT, after, since)
    merged = {rid: (k, rid) for k, rid in ordered}
    return sorted(merged.values(), key=cmp_to_key(_by_key(WINDOW_SORT)))


def _width(need: int, density: float) -> int:
    """Buckets expected to hold 1.5x ``need`` matches at ``density`` matches per bucket."""
    return max(1, math.ceil(1.5 * need / density)) if density > 0 else BUCKETS


def _by_key(sort: keyset.Sort) -> Any:
    def compare(a: tuple[keyset.Key, str], b: tuple[keyset.Key, str]) -> int:
        return keyset.compare_keys(a[0], b[0], sort)

    return compare


def _changed_after(
    repo: Repository,
    t: str,
    plan: qb.Plan,
    sort: keyset.Sort,
    after: keyset.Key | None,
    since: datetime,
) -> list[tuple[keyset.Key, str]]:
    """Matches written since the first page, at their first-page position after ``after``."""
    changed = [
        d["_id"]
        # deletions included: ``ts`` alone is an index scan (``deleted`` is not in that index);
        # the narrowed match below leaves deleted documents out.
        for d in repo.find_visible(
            t,
            {"ts": {"$gte": since}},
            fields=["_id"],
            limit=CHANGED_MAX + 1,
            include_deleted=True,
        )
    ]
    if not changed:
        return []
    if len(changed) > CHANGED_MAX:
        raise FhirError(
            410, "not-found", "too much changed since the first page; repeat the search"
        )
    narrowed = qb.Plan(qb.and_merge([plan.filter, {"_id": {"$in": changed}}]), plan.residual)
    out: list[tuple[keyset.Key, str]] = []
    for doc in find_rows(repo, t, narrowed, sort, 0, ["_id"]):
        old = _version_at(repo, t, doc["_id"], since)
        if old is None:
            continue  # created after the first page: not part of this result
        key = keyset.key_of(old, sort)
        if after is None or keyset.compare_keys(key, after, sort) > 0:
            out.append((key, doc["_id"]))
    return out


def _collect(
    repo: Repository,
    req: SearchRequest,
    types: Sequence[str],
    compartment: str | None,
    start: tuple[int, keyset.Key | None],
    since: datetime | None,
    need: int,
    hint: int = 0,
    plans: Sequence[qb.Plan] | None = None,
    enough: int | None = None,
    kept: dict[str, Doc] | None = None,
) -> tuple[list[Row], bool]:
    """Up to ``need`` rows over ``types`` (type by type, each in sort order) after ``start``,
    and whether they stopped short of ``need`` with matches left unread (a windowed search
    stops at ``enough`` rows once its matches are many: ``_window_rows``).

    ``plans``: the types' plans when the caller already resolved them (else planned lazily, so
    a system search stops planning once it has enough rows)."""
    enough = need if enough is None else enough
    rows: list[Row] = []
    short = False
    first, after = start
    for ti in range(first, len(types)):
        t = types[ti]
        plan = plans[ti] if plans is not None else _type_plan(repo, req, t, compartment)
        cursor = after if ti == first else None
        window = None if req.sort else repo.window_for(t, plan.filter)
        if window is not None:
            _check_cursor(cursor, WINDOW_SORT)
            got, short = _window_rows(
                repo, t, plan, window, cursor, since, need - len(rows), enough - len(rows), kept
            )
        else:
            sort = qb.sort_spec(t, req.sort)
            _check_cursor(cursor, sort)
            got = _rows_after(repo, t, plan, sort, cursor, since, need - len(rows), hint)
        for key, rid in got:
            rows.append((ti, key, rid))
        if len(rows) >= need or (short and len(rows) >= enough):
            break
    return rows, short


def _check_cursor(cursor: keyset.Key | None, sort: keyset.Sort) -> None:
    """A stored cursor of another order (a state saved before an upgrade) names no position."""
    if cursor is not None and (not isinstance(cursor, list) or len(cursor) != len(sort)):
        raise FhirError(410, "not-found", "this search's paging changed; repeat the search")


def _keyset_page(
    repo: Repository,
    req: SearchRequest,
    types: Sequence[str],
    compartment: str | None,
    count: int,
    state: Doc,
    offset: int,
) -> SearchResult:
    """A later keyset page: the one at ``offset`` of ``state`` (``_first_keyset_page``: the first)."""
    cursor = (state.get("cursors") or {}).get(str(offset)) if offset else [0, None]
    if not (
        isinstance(cursor, list)
        and len(cursor) == 2
        and isinstance(cursor[0], int)
        and 0 <= cursor[0] < len(types)
    ):
        raise FhirError(400, "invalid", "this _page token names no page of this search")
    since = state["created"]
    start = (cursor[0], cursor[1])
    kept: dict[str, Doc] = {}
    rows, _ = _collect(repo, req, types, compartment, start, since, count + 1, offset, kept=kept)
    page, has_next = rows[:count], len(rows) > count
    result = _page_of(repo, types, page, offset, count, kept)
    result.has_next = has_next
    result.total = state.get("total")
    result.snapshot = state["_id"]
    if has_next:
        ti, key, _ = page[-1]
        repo.store.db[SNAPSHOTS].update_one(
            {"_id": state["_id"]}, {"$set": {f"cursors.{offset + len(page)}": [ti, key]}}
        )
    back = offset - count
    if back == 0 or (back > 0 and str(back) in (state.get("cursors") or {})):
        result.prev_offset = back
    return result


def _page_of(
    repo: Repository,
    types: Sequence[str],
    page: Sequence[Row],
    offset: int,
    count: int,
    kept: dict[str, Doc] | None = None,
) -> SearchResult:
    """The page's resources, fetched (access-checked, redacted) for this request; ``kept``:
    the stored documents the rows were read with, which need no second read."""
    keys = [f"{types[ti]}/{rid}" for ti, _, rid in page]
    return SearchResult(repo.fetch_visible(keys, kept), offset=offset, count=count)


def _first_keyset_page(
    repo: Repository,
    req: SearchRequest,
    types: Sequence[str],
    compartment: str | None,
    count: int,
    cache: PageCache | None,
) -> SearchResult:
    """The first page: ``count + 1`` rows (or up to TOTAL_SCAN + 1 to count a small result
    exactly in the same read, so the total costs no second query and no work beyond that
    bound), then the paging state when there is more; reused from ``cache`` while valid."""
    need = count + 1 if req.total in ("none", "accurate") else max(count, TOTAL_SCAN) + 1
    plans: list[qb.Plan] | None = None
    key, stamp = None, None
    if cache is not None and repo.session is None:  # a transaction sees its own writes
        plans = [_type_plan(repo, req, t, compartment) for t in types]
        key = _cache_key(repo, req, types, compartment, plans, count, need)
        hit = cache.get(key) if key is not None else None
        if hit is not None:
            result = _page_of(repo, types, hit.rows[:count], 0, count)
            result.has_next, result.total = len(hit.rows) > count, hit.total
            result.snapshot = hit.snapshot
            return result
        stamp = cache.begin(types) if key is not None else None
    since = now()
    kept: dict[str, Doc] = {}
    rows, short = _collect(
        repo,
        req,
        types,
        compartment,
        (0, None),
        None,
        need,
        plans=plans,
        enough=count + 1,
        kept=kept,
    )
    page, has_next = rows[:count], len(rows) > count
    result = _page_of(repo, types, page, 0, count, kept)
    result.has_next = has_next
    total = len(rows) if len(rows) < need and not short else None  # every match was read
    if req.total == "accurate" and total is None:
        total = _count(repo, req, types, compartment)
    result.total = total
    if has_next:
        last = page[-1]
        result.snapshot = _save_state(
            repo,
            req,
            types,
            compartment,
            {
                "kind": "keyset",
                "created": since,
                "total": total,
                "cursors": {str(len(page)): [last[0], last[1]]},
            },
        )
    if cache is not None and key is not None and stamp is not None:
        first = FirstPage(tuple(rows), total, result.snapshot, time.monotonic())
        cache.put(key, types, first, stamp)
    return result


def _cache_key(
    repo: Repository,
    req: SearchRequest,
    types: Sequence[str],
    compartment: str | None,
    plans: Sequence[qb.Plan],
    count: int,
    need: int,
) -> bytes | None:
    """The resolved search (see server/search/page_cache.py); None when it cannot be encoded."""
    # The query's own fingerprint too: the paging state a hit hands out is bound to it (two
    # searches differing only in _elements resolve alike but own different states).
    parts: list[Any] = [list(types), _query_fingerprint(req, compartment), count, need, req.total]
    for t, plan in zip(types, plans, strict=True):
        parts.append([plan.filter, plan.residual, qb.sort_spec(t, req.sort), repo.access_filter(t)])
    try:
        return PageCache.key(parts, repo.store.db.codec_options)
    except (bson.errors.InvalidDocument, TypeError, OverflowError):
        return None


def _snapshot_first_page(
    repo: Repository,
    req: SearchRequest,
    types: Sequence[str],
    compartment: str | None,
    count: int,
    issues: list[Issue],
) -> SearchResult:
    """The result-set fallback for sorts keyset paging cannot order exactly."""
    exact = req.total == "accurate"
    cap = 0 if exact else SNAPSHOT_MAX + 1
    keys: list[str] = []
    for t in types:
        plan = _type_plan(repo, req, t, compartment)
        sort = qb.sort_spec(t, req.sort)
        keys += [f"{t}/{i}" for i in find_ids(repo, t, plan, sort, cap - len(keys) if cap else 0)]
        if cap and len(keys) > SNAPSHOT_MAX:
            break
    capped = len(keys) > SNAPSHOT_MAX
    total = len(keys) if exact or not capped else None
    keys = keys[:SNAPSHOT_MAX]
    if capped:
        issues.append(
            Issue(
                "too-costly",
                f"only the first {SNAPSHOT_MAX} matches can be paged with this _sort; "
                "narrow the search",
                "warning",
            )
        )
    result = SearchResult(repo.fetch_visible(keys[:count]), total=total, count=count)
    if 0 < count < len(keys):
        result.snapshot = _save_state(repo, req, types, compartment, {"kind": "keys", "keys": keys})
        result.has_next = True
    return result


def run(
    repo: Repository,
    req: SearchRequest,
    types: Sequence[str],
    *,
    count: int,
    compartment: str | None = None,
    cache: PageCache | None = None,
) -> SearchResult:
    """Search ``types`` (one for a type search; several for system/compartment searches).

    ``cache``: first pages may be reused from it (the REST search interactions pass the app's
    ``PageCache``; Bundle entries and operations do not)."""
    issues = list(req.issues)
    if req.page:
        sid, offset = decode_page(req.page)
        state = _load_state(repo, sid, req, compartment)
        types = list(state["types"])
        if state.get("kind") == "keyset":
            result = _keyset_page(repo, req, types, compartment, count, state, offset)
        else:
            keys: list[str] = state.get("keys") or []
            page = keys[offset : offset + count]
            result = SearchResult(
                repo.fetch_visible(page), total=len(keys), offset=offset, count=count
            )
            result.snapshot, result.has_next = sid, count > 0 and offset + count < len(keys)
            result.prev_offset = max(0, offset - count) if offset > 0 else None
    elif req.summary == "count" or count == 0:
        # Counting is the point of the request: every match is read (ids only).
        total = _count(repo, req, types, compartment)
        return SearchResult([], total=total, count=count, issues=issues)
    elif all(keyset.keyset_pageable(t, req.sort) for t in types):
        result = _first_keyset_page(repo, req, types, compartment, count, cache)
    else:
        result = _snapshot_first_page(repo, req, types, compartment, count, issues)
    result.issues = issues
    if req.includes or req.revincludes:
        result.included, more = includes(repo, result.matches, req.includes, req.revincludes)
        result.issues += more
    return result


def compartment_filter(patient_id: str) -> Filter:
    return {f"idx.{COMPARTMENT}": f"Patient/{patient_id}"}
