"""The import pipeline: NDJSON lines → validated ``PUT``s, one transaction per batch.

Per line, before any transaction: JSON parse (``server.fhirjson``, exact decimals), a resource
with a valid ``id``, the type filter, and the R4/R4B structural validation a REST write runs
first (``validate_resource``). A line failing here is reported and never reaches a batch.

Per batch (``batch`` lines), one ``Repository.transaction``: the current versions of the batch's
ids are read with one query per type (``Repository.prefetch``), then every line is written as
``Repository.update(type, id, body)`` — the PUT path itself, so profiles, the access hook
(``acl``), the roster's member-number claims, domain hooks, versioning with history, index
values, PRE_COMMIT follow-ups and the same-content rule (no new version) all apply unchanged —
inside ``write_batch`` (one insert_many / bulk_write per collection at the end).

Referential integrity is checked per batch with the batch's own ids known (deferred to the end
of the batch, like a transaction Bundle): a reference to an id written earlier in the import or
in the same batch resolves. A line whose reference names an id not stored yet (a forward
reference to a later batch or file) is set aside and retried after the rest of the input, over
and over while retries make progress; what still does not resolve then is reported with the
integrity error. So input order does not matter, and a dangling reference is never stored.

Never a partial batch: a failing line aborts its batch's transaction; the line is reported and
the batch runs again without it. A failure that names no line (a PRE_COMMIT hook, a concurrent
writer) splits the batch in halves until the line is found.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from auth.audit import AuditFacts
from resources.validation import ID_PATTERN, ResourceInvalid, validate_resource
from server import fhirjson
from server.bulk.ndjson import Line
from server.bundles.references import local_targets
from server.config import Settings
from server.errors import FhirError
from server.integrity import bases, deferred_checks, missing_targets, unresolvable
from server.repository import Repository, invalid
from server.timeutil import fhir_instant, now

DEFAULT_BATCH = 500
# Who the audit trail names as the writer of imported resources.
IMPORT_CLIENT = "consilium-import"


@dataclass
class Item:
    """One parsed line waiting for its batch."""

    line: Line
    resource_type: str
    rid: str
    resource: dict[str, Any]
    targets: frozenset[str]


@dataclass(frozen=True)
class Failure:
    """A line that was not imported: its place, the HTTP status a REST PUT would have got, and
    the OperationOutcome it would have returned."""

    source: str
    line: int
    status: int
    outcome: dict[str, Any]

    @property
    def text(self) -> str:
        return "; ".join(str(i.get("diagnostics", "")) for i in self.outcome.get("issue", []))


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # lines of a type not asked for (``types``)
    failures: list[Failure] = field(default_factory=list)
    batches: int = 0  # committed transactions
    seconds: float = 0.0
    stopped: bool = False  # ``fail_fast`` stopped the import

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def ok(self) -> bool:
        return not self.failures


class _ItemFailed(Exception):
    def __init__(self, item: Item, error: FhirError) -> None:
        super().__init__(str(error))
        self.item, self.error = item, error


class _Unresolved(Exception):
    def __init__(self, missing: set[str]) -> None:
        super().__init__(", ".join(sorted(missing)))
        self.missing = missing


class _Stop(Exception):
    """``fail_fast``: the first failure ends the import."""


def parse_line(line: Line, types: frozenset[str] | None, base: tuple[str, ...]) -> Item | None:
    """The line as an ``Item``; None when its type is not asked for. Raises ``FhirError``
    with the status a REST PUT of the same body would get."""
    try:
        resource = fhirjson.loads(line.text)
    except ValueError as exc:
        raise FhirError(400, "structure", f"the line is not JSON: {exc}") from None
    if not isinstance(resource, dict):
        raise FhirError(400, "structure", "the line must be a JSON object holding a resource")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        raise FhirError(400, "invalid", "the resource has no resourceType")
    if types is not None and rtype not in types:
        return None
    rid = resource.get("id")
    if not isinstance(rid, str) or not ID_PATTERN.match(rid):
        raise FhirError(
            400,
            "invalid",
            f"an imported resource needs a valid id (it is written as PUT {rtype}/[id]), "
            f"got {rid!r}",
            expression=[f"{rtype}.id"],
        )
    try:
        validate_resource(resource, rtype)
    except ResourceInvalid as exc:
        raise invalid(exc) from None
    own = f"{rtype}/{rid}"
    targets = frozenset(t for t in local_targets(resource, base) if t != own)
    return Item(line, rtype, rid, resource, targets)


class Importer:
    """Runs one import; ``run`` may be called once per instance.

    ``on_failure`` is called with every failed line as soon as it is known (the CLI prints
    it); ``progress(done, total)`` after every committed batch; ``audit`` with the facts of
    every line's PUT, as the audit middleware records a REST PUT (status 201/200, or the
    failure's status)."""

    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        *,
        batch: int = DEFAULT_BATCH,
        types: Iterable[str] | None = None,
        fail_fast: bool = False,
        on_failure: Callable[[Failure], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        audit: Callable[[AuditFacts], None] | None = None,
        writer: AuditFacts | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.repo = repo
        self.settings = settings
        self.batch = batch
        self.types = frozenset(types) if types else None
        self.fail_fast = fail_fast
        self.on_failure = on_failure
        self.progress = progress
        self.audit = audit
        # Who the audit facts name: the importing client (``$import``), else the command.
        self.writer = writer or AuditFacts("update", 0, "", client_id=IMPORT_CLIENT)
        self.enforce = settings.enforce_referential_integrity
        # The checks are ours (per line, see _attempt); the hook only collects the targets.
        self._collect_only = settings.model_copy(update={"enforce_referential_integrity": False})
        self.result = ImportResult()
        self.run_id = self.writer.request_id or str(uuid.uuid4())
        self._later: list[tuple[Item, FhirError]] = []
        self._done = 0
        self._total = 0

    # ------------------------------------------------------------------------------- driving
    def run(self, lines: Iterable[Line], total: int = 0) -> ImportResult:
        start = time.perf_counter()
        self._total = total
        base = bases(self.settings)
        buf: list[Item] = []
        try:
            for line in lines:
                try:
                    item = parse_line(line, self.types, base)
                except FhirError as err:
                    self._fail(line, err)
                    self._tick(1)
                    continue
                if item is None:
                    self.result.skipped += 1
                    self._tick(1)
                    continue
                buf.append(item)
                if len(buf) >= self.batch:
                    self._commit(buf)
                    buf = []
            self._commit(buf)
            self._retry_later()
        except _Stop:
            self.result.stopped = True
        self.result.seconds = time.perf_counter() - start
        if self.progress is not None and self._total and not self.result.stopped:
            self.progress(self._total, self._total)
        return self.result

    def _retry_later(self) -> None:
        """Forward references: retry the set-aside lines while a round imports any of them."""
        while self._later:
            waiting, self._later = self._later, []
            before = self.result.imported
            for k in range(0, len(waiting), self.batch):
                self._commit([item for item, _ in waiting[k : k + self.batch]], retry=True)
            if self.result.imported == before:
                for item, err in self._later:
                    self._fail(item.line, err, item)
                self._later = []

    def _tick(self, n: int) -> None:
        self._done += n
        if self.progress is not None and self._total:
            self.progress(min(self._done, self._total), self._total)

    # ----------------------------------------------------------------------------- batches
    def _commit(self, items: list[Item], *, retry: bool = False) -> None:
        """Commit ``items`` as one transaction, taking out failing lines until it commits."""
        self.repo.prepare({i.resource_type for i in items})
        work = [items]
        while work:
            batch = work.pop()
            if not batch:
                continue
            try:
                outcomes = self.repo.transaction(lambda r, b=batch: self._attempt(r, b))  # type: ignore[misc]
            except _ItemFailed as exc:
                self._fail(exc.item.line, exc.error, exc.item)
                work.append([i for i in batch if i is not exc.item])
                continue
            except _Unresolved as exc:
                late = [i for i in batch if i.targets & exc.missing]
                err = unresolvable(sorted(exc.missing))
                if not late:  # a hook's reference, no line's own: find the line by halving
                    work.extend(self._halves(batch, err))
                    continue
                for item in late:
                    mine = sorted(item.targets & exc.missing)
                    self._later.append((item, unresolvable(mine) if mine else err))
                work.append([i for i in batch if not (i.targets & exc.missing)])
                continue
            except FhirError as err:  # names no line: halve until it does
                work.extend(self._halves(batch, err))
                continue
            self.result.batches += 1
            for item, (status, _) in zip(batch, outcomes, strict=True):
                if status == 201:
                    self.result.created += 1
                elif status == 200:
                    self.result.updated += 1
                else:
                    self.result.unchanged += 1
                self._audit(item, 201 if status == 201 else 200)
        if not retry:  # every line of ``items`` is decided now, or set aside for the retries
            self._tick(len(items))

    def _halves(self, batch: list[Item], err: FhirError) -> list[list[Item]]:
        """The two halves to retry (second half last, so the first runs first), or none after
        reporting the single line that fails on its own."""
        if len(batch) == 1:
            self._fail(batch[0].line, err, batch[0])
            return []
        mid = len(batch) // 2
        return [batch[mid:], batch[:mid]]

    def _attempt(self, r: Repository, batch: list[Item]) -> list[tuple[int, int]]:
        """One attempt of one batch inside its transaction: (status, version) per item, status
        201 created, 200 new version, 0 same content (no new version)."""
        out: list[tuple[int, int]] = []
        by_type: dict[str, list[str]] = {}
        for item in batch:
            by_type.setdefault(item.resource_type, []).append(item.rid)
        for rtype, ids in by_type.items():
            r.prefetch(rtype, ids)
        with r.write_batch(), deferred_checks(r, self._collect_only) as deferred:
            for item in batch:
                before = r.current(item.resource_type, item.rid)
                body = fhirjson.copy(item.resource)  # hooks may edit it; a retry needs the line's
                try:
                    stored, created = r.update(item.resource_type, item.rid, body, validated=True)
                except FhirError as err:
                    raise _ItemFailed(item, err) from None
                same = before is not None and stored.version_id == before.version_id
                out.append((201 if created else 0 if same else 200, stored.version_id))
            if self.enforce and deferred.referenced:
                missing = set(missing_targets(r, deferred.referenced))
                if missing:
                    raise _Unresolved(missing)
        return out

    # ----------------------------------------------------------------------------- reports
    def _fail(self, line: Line, err: FhirError, item: Item | None = None) -> None:
        failure = Failure(line.source, line.number, err.status, err.outcome())
        self.result.failures.append(failure)
        if self.on_failure is not None:
            self.on_failure(failure)
        if self.audit is not None:
            rtype, rid = (item.resource_type, item.rid) if item is not None else (None, None)
            self.audit(self._facts(rtype, rid, err.status))
        if self.fail_fast:
            raise _Stop

    def _audit(self, item: Item, status: int) -> None:
        if self.audit is not None:
            self.audit(self._facts(item.resource_type, item.rid, status))

    def _facts(self, rtype: str | None, rid: str | None, status: int) -> AuditFacts:
        return AuditFacts(
            interaction="update",
            status=status,
            recorded=fhir_instant(now()),
            resource_type=rtype,
            resource_id=rid,
            client_id=self.writer.client_id,
            user=self.writer.user,
            source_ip=self.writer.source_ip,
            request_id=self.run_id,
            method="PUT",
        )
