"""Dates of the case rules: FHIR date/dateTime → calendar day, periods, business days.

Why calendar days and not instants: every rule that reads a date here is a question about a day
(is the cover in force on the date of service, is the expert on leave today, when is the report
due), and partial FHIR dates (``2026``, ``2026-11``) are common in cover periods. A partial date
widens to the whole year or month it names, so ``period.end = "2026-11"`` covers 30 November.

Business days are Monday to Friday. Public holidays differ by country and province and the guide
ships no holiday calendar, so they are not skipped: a due date is at worst a day or two early,
which errs on the member's side.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

SATURDAY = 5  # date.weekday(): Monday is 0


def fhir_day(value: Any, *, end: bool) -> date | None:
    """The day a FHIR date/dateTime names; partial dates widen (``end``: their last day).

    None for anything that is not a date (the caller decides whether that is a failure).
    """
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        year = int(value[:4])
        if len(value) == 4:
            return date(year, 12, 31) if end else date(year, 1, 1)
        month = int(value[5:7])
        if len(value) == 7:
            if not end:
                return date(year, month, 1)
            nxt = date(year + month // 12, month % 12 + 1, 1)
            return nxt - timedelta(days=1)
        return date(year, month, int(value[8:10]))
    except ValueError:
        return None


def period_covers(period: Any, day: date) -> bool:
    """Does a FHIR Period (open ends allowed) cover ``day``? An unreadable bound never covers.

    A missing period covers every day (FHIR: no period means no known limit).
    """
    if period is None:
        return True
    if not isinstance(period, dict):
        return False
    start, end = fhir_day(period.get("start"), end=False), fhir_day(period.get("end"), end=True)
    if period.get("start") is not None and start is None:
        return False
    if period.get("end") is not None and end is None:
        return False
    return (start is None or start <= day) and (end is None or day <= end)


def is_business_day(day: date) -> bool:
    return day.weekday() < SATURDAY


def business_days_after(start: date, days: int) -> date:
    """The day ``days`` business days (Mon-Fri) after ``start``: the case due date.

    Counting starts the day after ``start``, so a case submitted on a Friday with a one-day
    turnaround is due on Monday, and one submitted on Saturday is due on Monday too (the
    weekend adds nothing). ``days == 0`` is ``start`` itself.
    """
    if days < 0:
        raise ValueError(f"business days must not be negative (got {days})")
    day, left = start, days
    while left:
        day += timedelta(days=1)
        if is_business_day(day):
            left -= 1
    return day
