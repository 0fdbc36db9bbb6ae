"""The figures of ``$second-opinion-stats`` from case facts: business time, on-hold exclusion,
percentiles, SLA breaches, opinions used vs allowed, third opinions and suppression."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from resources.stats import (
    Allowance,
    CaseFacts,
    breach,
    business_days,
    compute,
    median,
    nearest_rank,
    on_hold_spans,
    parse_period,
    period_bounds,
    suppress,
    turnaround_days,
)


def at(day: int, hour: int = 9, month: int = 11) -> datetime:
    """November 2026: the 2nd is a Monday, the 7th/8th a weekend."""
    return datetime(2026, month, day, hour, tzinfo=UTC)


MON = at(2)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (at(2, 9), at(2, 15), 0.25),  # same afternoon
        (at(2, 9), at(3, 9), 1.0),
        (at(2, 9), at(6, 9), 4.0),  # Monday to Friday
        (at(6, 9), at(9, 9), 1.0),  # Friday to Monday: the weekend adds nothing
        (at(7, 9), at(8, 20), 0.0),  # inside a weekend
        (at(7, 12), at(9, 6), 0.25),  # Saturday noon to Monday 06:00
        (at(2, 9), at(16, 9), 10.0),  # two weeks
        (at(3, 9), at(2, 9), 0.0),  # backwards
    ],
)
def test_business_days(start: datetime, end: datetime, days: float) -> None:
    assert business_days(start, end) == pytest.approx(days)


@pytest.mark.parametrize(
    ("timeline", "until", "spans"),
    [
        ([], at(10), []),
        ([(at(3), "in-progress"), (at(4), "on-hold"), (at(5), "in-progress")], at(10),
         [(at(4), at(5))]),
        ([(at(4), "on-hold"), (at(5), "completed")], at(10), [(at(4), at(5))]),
        ([(at(4), "on-hold")], at(10), [(at(4), at(10))]),  # still on hold
        ([(at(5), "in-progress"), (at(4), "on-hold")], at(10), [(at(4), at(5))]),  # any order
        ([(at(3), "on-hold"), (at(4), "in-progress"), (at(5), "on-hold"), (at(6), "accepted")],
         at(10), [(at(3), at(4)), (at(5), at(6))]),
        ([(at(3), "on-hold"), (at(3, 12), "on-hold"), (at(4), "in-progress")], at(10),
         [(at(3), at(4))]),  # a board member added while on hold keeps the pause
    ],
)  # fmt: skip
def test_on_hold_spans(
    timeline: list[tuple[datetime, str]], until: datetime, spans: list[tuple[datetime, datetime]]
) -> None:
    assert on_hold_spans(timeline, until) == spans


@pytest.mark.parametrize(
    ("submitted", "completed", "timeline", "days"),
    [
        (at(2), at(5), [], 3.0),
        (at(2), None, [], None),  # not completed
        # asked Tuesday, answered Thursday: two business days on hold
        (at(2), at(9), [(at(3), "on-hold"), (at(5), "in-progress")], 3.0),
        # a pause over a weekend: only its weekdays are taken off
        (at(5), at(11), [(at(6), "on-hold"), (at(9), "in-progress")], 3.0),
        # completed straight from on hold: the pause ends with the report
        (at(2), at(6), [(at(4), "on-hold"), (at(6), "completed")], 2.0),
        # a pause recorded before submission (clock skew) counts only inside the case
        (at(3), at(5), [(at(2), "on-hold"), (at(4), "in-progress")], 1.0),
    ],
)
def test_turnaround_excludes_on_hold(
    submitted: datetime,
    completed: datetime | None,
    timeline: list[tuple[datetime, str]],
    days: float | None,
) -> None:
    case = CaseFacts("completed", submitted, completed=completed, timeline=tuple(timeline))
    assert turnaround_days(case) == (pytest.approx(days) if days is not None else None)


@pytest.mark.parametrize(
    ("values", "mid", "p90"),
    [
        ([], None, None),
        ([4.0], 4.0, 4.0),
        ([1.0, 3.0], 2.0, 3.0),
        ([5.0, 1.0, 3.0], 3.0, 5.0),
        ([float(v) for v in range(1, 11)], 5.5, 9.0),  # rank ceil(0.9 * 10) = 9
        ([float(v) for v in range(1, 12)], 6.0, 10.0),  # rank ceil(9.9) = 10
        ([float(v) for v in range(1, 21)], 10.5, 18.0),
    ],
)
def test_median_and_nearest_rank_p90(
    values: list[float], mid: float | None, p90: float | None
) -> None:
    assert median(values) == mid
    assert nearest_rank(values, 90) == p90


def test_a_percentile_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError, match="percent"):
        nearest_rank([1.0], 0)


DUE = at(9, 23)  # the due day, Monday 9 November, to its end


@pytest.mark.parametrize(
    ("status", "completed", "timeline", "as_of", "kind"),
    [
        ("completed", at(9, 12), [], at(20), None),  # on the due day
        ("completed", at(10), [], at(20), "completed-late"),
        ("in-progress", None, [], at(9), None),  # open, not yet due
        ("in-progress", None, [], at(10), "open-overdue"),
        ("accepted", None, [], at(10), "open-overdue"),
        # on hold since before the due date: the clock is stopped, not overdue
        ("on-hold", None, [(at(6), "on-hold")], at(20), None),
        # on hold only after the due date passed: overdue anyway
        ("on-hold", None, [(at(10), "on-hold")], at(12), "open-overdue"),
        # a report issued straight from hold: the wait did not count against the expert
        ("completed", at(12), [(at(6), "on-hold"), (at(12), "completed")], at(20), None),
        # an answered question: the engine already moved the due date, nothing added
        ("completed", at(12), [(at(5), "on-hold"), (at(6), "in-progress")], at(20),
         "completed-late"),
        ("rejected", None, [], at(20), None),
        ("cancelled", None, [], at(20), None),
    ],
)  # fmt: skip
def test_sla_breach(
    status: str,
    completed: datetime | None,
    timeline: list[tuple[datetime, str]],
    as_of: datetime,
    kind: str | None,
) -> None:
    case = CaseFacts(status, MON, completed=completed, due=DUE, timeline=tuple(timeline))
    assert breach(case, as_of) == kind


def test_a_case_without_a_due_date_never_breaches() -> None:
    assert breach(CaseFacts("in-progress", MON), at(30)) is None


PLAN_A = Allowance("cov-1|2026", "A", 2)
PLAN_A2 = Allowance("cov-2|2026", "A", 2)
OPEN_PLAN = Allowance("cov-3|2026", "U", None)
NO_BENEFIT = Allowance("cov-4|2026", "N", 0)


def sample() -> list[CaseFacts]:
    return [
        CaseFacts("completed", at(2), "report-issued", completed=at(5), due=DUE,
                  condition="cancer", outcomes=frozenset({"confirm-diagnosis"}),
                  uses_opinion=True, allowance=PLAN_A),
        CaseFacts("completed", at(2), "report-issued", completed=at(12), due=DUE,
                  condition="cancer",
                  outcomes=frozenset({"alternative-diagnosis", "alternative-treatment"}),
                  uses_opinion=True, allowance=PLAN_A),
        CaseFacts("in-progress", at(3), "under-review", due=DUE, condition="heart-attack",
                  uses_opinion=True, allowance=PLAN_A2),
        CaseFacts("accepted", at(4), "expert-assigned", due=DUE, condition="cancer",
                  third_opinion=True, allowance=PLAN_A),
        CaseFacts("rejected", at(4), "benefit-not-included", allowance=NO_BENEFIT),
        CaseFacts("accepted", at(4), "awaiting-expert", due=DUE, condition="coma",
                  uses_opinion=True, allowance=OPEN_PLAN),
        CaseFacts("rejected", at(5), "member-not-found"),
    ]  # fmt: skip


def test_counts_by_status_condition_and_outcome() -> None:
    figures = compute(sample(), at(6))
    assert figures.cases == 7
    assert figures.by_status == {"accepted": 2, "completed": 2, "in-progress": 1, "rejected": 2}
    assert figures.by_business_status["report-issued"] == 2
    assert figures.by_condition == {"cancer": 3, "coma": 1, "heart-attack": 1}
    assert figures.by_outcome == {
        "alternative-diagnosis": 1,
        "alternative-treatment": 1,
        "confirm-diagnosis": 1,
    }


def test_opinions_used_against_allowance_per_member_year() -> None:
    figures = compute(sample(), at(6))
    assert figures.opinions_used == 4  # the third opinion and the rejections use none
    assert figures.opinions_allowed == 4  # cov-1 and cov-2, two each; cov-4 has none
    assert figures.unlimited_allowances == 1
    assert figures.by_plan["A"].used == 3
    assert figures.by_plan["A"].allowed == 4
    assert figures.by_plan["U"].unlimited == 1
    assert figures.by_plan["N"].allowed == 0


def test_turnaround_and_breaches_over_the_cohort() -> None:
    figures = compute(sample(), at(20))
    assert figures.turnarounds == (3.0, 8.0)
    assert figures.median_days == 5.5
    assert figures.p90_days == 8.0
    assert figures.with_due == 5
    assert figures.completed_late == 1
    assert figures.open_overdue == 3
    assert figures.breaches == 4


def test_third_opinions_are_counted() -> None:
    assert compute(sample(), at(6)).third_opinions == 1


def test_no_cases_no_figures() -> None:
    figures = compute([], at(6))
    assert (figures.cases, figures.median_days, figures.p90_days, figures.breaches) == (
        0,
        None,
        None,
        0,
    )


@pytest.mark.parametrize(
    ("counts", "shown"),
    [
        ({"a": 10, "b": 7}, {"a": 10, "b": 7}),
        ({"a": 10, "b": 0}, {"a": 10}),  # zero cells are left out
        ({"a": 10, "b": 7, "c": 2}, {"a": 10, "b": None, "c": None}),  # complementary
        ({"a": 10, "b": 3, "c": 2}, {"a": 10, "b": None, "c": None}),
        ({"a": 4}, {"a": None}),
        ({"a": 5}, {"a": 5}),
        ({}, {}),
    ],
)
def test_small_number_suppression(counts: dict[str, int], shown: dict[str, int | None]) -> None:
    assert suppress(counts) == shown


def test_naive_instants_are_utc() -> None:
    naive = datetime(2026, 11, 2, 9)
    assert business_days(naive, naive + timedelta(days=1)) == 1.0


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2026-11-15", date(2026, 11, 15), date(2026, 11, 15)),
        ("2026-11-01/2026-11-30", date(2026, 11, 1), date(2026, 11, 30)),
        ("2026-10/2026-12", date(2026, 10, 1), date(2026, 12, 31)),
        ("2025/2026-03-31", date(2025, 1, 1), date(2026, 3, 31)),
        ("2026-11-30/2026-11-30", date(2026, 11, 30), date(2026, 11, 30)),
    ],
)
def test_period(text: str, first: date, last: date) -> None:
    assert parse_period(text) == (first, last)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-12/2026-11", "before it starts"),
        ("2026-11-31", "not a calendar date"),
        ("2026-13", "not a calendar date"),
        ("26-11", "not a date"),
        ("2026-11-01T00:00:00Z", "not a date"),
        ("", "not a date"),
        ("2026/", "not a date"),
        ("2026/2027/2028", "not a period"),
        ("last month", "not a date"),
    ],
)
def test_bad_period(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(text)


def test_period_from_two_ends() -> None:
    assert period_bounds("2026-11", "2026-12") == (date(2026, 11, 1), date(2026, 12, 31))


def test_cancelled_and_rejected_cases_owe_no_report() -> None:
    cases = [
        CaseFacts("cancelled", MON, due=DUE),
        CaseFacts("failed", MON, due=DUE),
        CaseFacts("accepted", MON, due=DUE),
    ]
    figures = compute(cases, at(20))
    assert (figures.with_due, figures.open_overdue) == (1, 1)
