"""Second-opinion reporting: facts of cases in, figures out (``$second-opinion-stats``).

Pure: the operation (server/operations/stats.py) gathers one ``CaseFacts`` per case from the
Task, its request, cover, reports and Provenance timeline; this module turns them into counts,
turnaround and SLA figures. No I/O, no clock (``as_of`` is passed in), so every rule is a table
test (tests/resources/test_stats.py).

Decisions (docs/stats.md has the whole contract):

* Turnaround is *business time*: the Monday-to-Friday part (UTC, as every case day is) of the
  span from submission to the final report, minus the Monday-to-Friday part of every on-hold
  span inside it, in days of 24 hours. Continuous rather than whole days, so a case done on the
  afternoon it arrived is 0.2 days, not 0 or 1, and a Friday-to-Monday case is not three days.
  Public holidays are not skipped (resources/calendar.py says why).
* On-hold spans come from the status timeline (the Task.status after each Provenance
  transition): a span opens when the case goes ``on-hold`` and closes at the next transition
  that leaves it, whatever it is (an answer, the final report, a cancel, a reassignment).
* The median is the usual one (mean of the two middle values for an even count); the p90 is the
  nearest-rank percentile, an observed turnaround, so "90% of reports within X days" is true of
  the cases reported.
* SLA: a case with a due date (``Task.restriction.period.end``) breaches when it completed after
  the due date, or is still open after it. The engine moves the due date by a pause when the
  question is answered (server/cases/workflow.py ``resume``); a pause that ended otherwise (a
  report issued without the answer, a reassignment), or is still running, has not moved it, so
  it is added here: the clock is stopped while the expert waits, whoever ends the wait.
* Opinions used count as the eligibility rules count them (server/cases/coverage_check.py): the
  operation says per case whether it ``uses_opinion``. Allowed is the plan's opinions per policy
  year for each distinct member cover and policy year among the reported cases (``Allowance``);
  unlimited plans are counted apart, since they have no number to add.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from resources.calendar import fhir_day, is_business_day

ON_HOLD = "on-hold"
OPEN = frozenset({"requested", "accepted", "ready", "in-progress", "on-hold"})
RESUMED = "in-progress"  # the status a pause ends in when the engine moved the due date
DAY = timedelta(days=1)
# Small-number suppression (docs/stats.md): cells below this count are masked for viewers who
# may not see the cases themselves (insurers), the common threshold of health statistics.
SUPPRESS_BELOW = 5

Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class Allowance:
    """A member's second-opinion allowance for one policy year.

    ``key`` identifies the cover and policy year (never reported); ``per_year`` None means
    unlimited, 0 that the plan does not include the benefit.
    """

    key: str
    plan: str
    per_year: int | None


@dataclass(frozen=True)
class CaseFacts:
    """What the figures need of one case, and nothing clinical beyond two codes."""

    status: str
    submitted: datetime
    business_status: str | None = None
    completed: datetime | None = None  # the final report (the report-final transition)
    due: datetime | None = None  # Task.restriction.period.end as an instant
    timeline: tuple[tuple[datetime, str], ...] = ()  # (when, Task.status after), any order
    condition: str | None = None  # the covered serious condition code
    outcomes: frozenset[str] = frozenset()  # the final report's outcome codes
    third_opinion: bool = False
    uses_opinion: bool = False
    allowance: Allowance | None = None


@dataclass(frozen=True)
class PlanUse:
    used: int = 0
    allowed: int = 0  # over limited allowances
    unlimited: int = 0  # member-years on an unlimited allowance


@dataclass(frozen=True)
class Figures:
    cases: int
    by_status: dict[str, int]
    by_business_status: dict[str, int]
    by_condition: dict[str, int]
    by_outcome: dict[str, int]
    opinions_used: int
    opinions_allowed: int
    unlimited_allowances: int
    by_plan: dict[str, PlanUse]
    turnarounds: tuple[float, ...]  # business days of each completed case, ascending
    median_days: float | None
    p90_days: float | None
    with_due: int
    completed_late: int
    open_overdue: int
    third_opinions: int
    breaches_by_kind: dict[str, int] = field(default_factory=dict)
    by_turnaround_band: dict[str, int] = field(default_factory=dict)

    @property
    def breaches(self) -> int:
        return self.completed_late + self.open_overdue


# ------------------------------------------------------------------------- business time
def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def business_time(start: datetime, end: datetime) -> timedelta:
    """The Monday-to-Friday (UTC) part of ``[start, end)``; zero when ``end <= start``."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return timedelta(0)
    total = timedelta(0)
    cursor = start
    while cursor < end:
        midnight = datetime(cursor.year, cursor.month, cursor.day, tzinfo=UTC) + DAY
        stop = min(midnight, end)
        if is_business_day(cursor.date()):
            total += stop - cursor
        cursor = stop
    return total


def business_days(start: datetime, end: datetime) -> float:
    return business_time(start, end) / DAY


def on_hold_spans(timeline: Iterable[tuple[datetime, str]], until: datetime) -> list[Span]:
    """The spans the case spent on hold; one still running ends at ``until``."""
    spans: list[Span] = []
    opened: datetime | None = None
    for when, status in sorted(timeline, key=lambda step: _utc(step[0])):
        when = _utc(when)
        if status == ON_HOLD and opened is None:
            opened = when
        elif status != ON_HOLD and opened is not None:
            spans.append((opened, when))
            opened = None
    if opened is not None and _utc(until) > opened:
        spans.append((opened, _utc(until)))
    return spans


def _uncredited_pause(case: CaseFacts, until: datetime) -> timedelta:
    """Wall-clock pause time the recorded due date does not include yet (see the module doc):
    pauses that ended in anything but a resumed review, and one still running at ``until``."""
    steps = sorted(case.timeline, key=lambda step: _utc(step[0]))
    total = timedelta(0)
    opened: datetime | None = None
    for when, status in steps:
        when = _utc(when)
        if when > _utc(until):
            break
        if status == ON_HOLD and opened is None:
            opened = when
        elif status != ON_HOLD and opened is not None:
            if status != RESUMED:
                total += when - opened
            opened = None
    if opened is not None and _utc(until) > opened:
        total += _utc(until) - opened
    return total


def turnaround_days(case: CaseFacts) -> float | None:
    """Business days from submission to the final report, on-hold time excluded."""
    if case.completed is None:
        return None
    start, end = _utc(case.submitted), _utc(case.completed)
    if end < start:
        return None
    held = sum(
        (business_time(max(a, start), min(b, end)) for a, b in on_hold_spans(case.timeline, end)),
        timedelta(0),
    )
    return max(business_time(start, end) - held, timedelta(0)) / DAY


# ---------------------------------------------------------------------------- statistics
def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``percent``% at or below."""
    if not values:
        return None
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)), 1) - 1]


# ------------------------------------------------------------------------------------ SLA
def owed(case: CaseFacts) -> bool:
    """Is a report owed on this case (completed, or still open)? Rejected, cancelled and
    failed cases owe none, so they are neither breaches nor in the SLA denominator."""
    return case.status == "completed" or case.status in OPEN


def breach(case: CaseFacts, as_of: datetime) -> str | None:
    """``completed-late``, ``open-overdue`` or None (on time, or no due date)."""
    if case.due is None:
        return None
    if case.status == "completed" and case.completed is not None:
        due = _utc(case.due) + _uncredited_pause(case, case.completed)
        return "completed-late" if _utc(case.completed) > due else None
    if case.status in OPEN:
        due = _utc(case.due) + _uncredited_pause(case, as_of)
        return "open-overdue" if _utc(as_of) > due else None
    return None  # rejected, cancelled, failed: no report was owed


# -------------------------------------------------------------------------------- figures
def _count(values: Iterable[str | None]) -> dict[str, int]:
    return dict(sorted(Counter(v for v in values if v).items()))


def _allowances(cases: Sequence[CaseFacts]) -> dict[str, PlanUse]:
    used: Counter[str] = Counter()
    seen: dict[str, Allowance] = {}
    for case in cases:
        if case.allowance is None:
            continue
        seen.setdefault(case.allowance.key, case.allowance)
        if case.uses_opinion:
            used[case.allowance.plan] += 1
    allowed: Counter[str] = Counter()
    unlimited: Counter[str] = Counter()
    for a in seen.values():
        if a.per_year is None:
            unlimited[a.plan] += 1
        else:
            allowed[a.plan] += a.per_year
    plans = sorted({a.plan for a in seen.values()})
    return {p: PlanUse(used[p], allowed[p], unlimited[p]) for p in plans}


# The turnaround histogram's band edges in business days (half-open: [0, 1), [1, 2), ... [10, ∞)),
# named as the guide's second-opinion-stats codes ``turnaround-<low>-<high>`` / ``-10-plus``.
# Why these: plans promise 5 business days (p50, resources/coverage.py); the bands resolve the
# first week day by day and show the tail without a long empty axis.
TURNAROUND_BAND_EDGES = (1, 2, 3, 5, 10)


def turnaround_band(days: float) -> str:
    """The band code of one turnaround (business days)."""
    low = 0
    for edge in TURNAROUND_BAND_EDGES:
        if days < edge:
            return f"turnaround-{low}-{edge}"
        low = edge
    return f"turnaround-{low}-plus"


def turnaround_bands(turnarounds: Iterable[float]) -> dict[str, int]:
    """Every band (zeros included, so a histogram has its whole axis) with its case count."""
    lows = (0, *TURNAROUND_BAND_EDGES)
    highs = (*(str(e) for e in TURNAROUND_BAND_EDGES), "plus")
    counts = {f"turnaround-{lo}-{hi}": 0 for lo, hi in zip(lows, highs, strict=True)}
    for t in turnarounds:
        counts[turnaround_band(t)] += 1
    return counts


def compute(cases: Sequence[CaseFacts], as_of: datetime) -> Figures:
    """Every figure of the report over ``cases`` (one cohort: the cases submitted in the
    period), with open cases judged at ``as_of``."""
    turnarounds = tuple(sorted(t for c in cases if (t := turnaround_days(c)) is not None))
    kinds = [breach(c, as_of) for c in cases]
    plans = _allowances(cases)
    return Figures(
        cases=len(cases),
        by_status=_count(c.status for c in cases),
        by_business_status=_count(c.business_status for c in cases),
        by_condition=_count(c.condition for c in cases),
        by_outcome=_count(o for c in cases for o in sorted(c.outcomes)),
        opinions_used=sum(1 for c in cases if c.uses_opinion),
        opinions_allowed=sum(p.allowed for p in plans.values()),
        unlimited_allowances=sum(p.unlimited for p in plans.values()),
        by_plan=plans,
        turnarounds=turnarounds,
        median_days=median(turnarounds),
        p90_days=nearest_rank(turnarounds, 90),
        with_due=sum(1 for c in cases if c.due is not None and owed(c)),
        completed_late=kinds.count("completed-late"),
        open_overdue=kinds.count("open-overdue"),
        third_opinions=sum(1 for c in cases if c.third_opinion),
        breaches_by_kind=_count(kinds),
        by_turnaround_band=turnaround_bands(turnarounds),
    )


def suppress(counts: Mapping[str, int], below: int = SUPPRESS_BELOW) -> dict[str, int | None]:
    """Small-number suppression of one stratifier's cells (None: masked).

    Primary: a count from 1 to ``below - 1`` is masked (zero cells are never reported, so they
    reveal nothing). Complementary: when exactly one cell is masked, the total would give it
    back by subtraction, so the next smallest cell is masked too.
    """
    out: dict[str, int | None] = {
        k: (None if 0 < v < below else v) for k, v in counts.items() if v > 0
    }
    masked = [k for k, v in out.items() if v is None]
    if len(masked) == 1:
        shown = sorted((v, k) for k, v in out.items() if v is not None)
        if shown:
            out[shown[0][1]] = None
    return out


# --------------------------------------------------------------------------------- period
_DAY_TEXT = re.compile(r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$")


def _bound(text: str, *, end: bool) -> date:
    if not _DAY_TEXT.match(text):
        raise ValueError(f"{text[:40]!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
    day = fhir_day(text, end=end)
    if day is None:
        raise ValueError(f"{text[:40]!r} is not a calendar date")
    return day


def period_bounds(start: str, end: str) -> tuple[date, date]:
    """The inclusive days of a period given by its two ends; partial dates widen (``2026-11``
    starts on the 1st, ends on the 30th). ValueError when unreadable or backwards."""
    first, last = _bound(start.strip(), end=False), _bound(end.strip(), end=True)
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    return first, last


def parse_period(text: str) -> tuple[date, date]:
    """``2026``, ``2026-11``, ``2026-11-15`` (that whole year, month or day) or ``START/END``
    (ISO 8601 interval of two such dates) → the inclusive first and last day."""
    parts = text.split("/")
    if len(parts) == 1:
        return period_bounds(parts[0], parts[0])
    if len(parts) == 2:
        return period_bounds(parts[0], parts[1])
    raise ValueError(f"{text[:40]!r} is not a period (START/END)")
