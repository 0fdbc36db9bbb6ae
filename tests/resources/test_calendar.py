"""Days, periods and business days of the case rules."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from resources.calendar import business_days_after, fhir_day, period_covers

MON = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (MON, 0, MON),
        (MON, 1, date(2026, 11, 24)),
        (MON, 4, date(2026, 11, 27)),  # Friday
        (MON, 5, date(2026, 11, 30)),  # the next Monday
        (MON, 10, date(2026, 12, 7)),
        (date(2026, 11, 27), 1, date(2026, 11, 30)),  # Friday + 1 → Monday
        (date(2026, 11, 28), 1, date(2026, 11, 30)),  # Saturday + 1 → Monday
        (date(2026, 11, 29), 5, date(2026, 12, 4)),  # Sunday + 5 → Friday
        (date(2026, 12, 31), 2, date(2027, 1, 4)),  # over the year end and a weekend
    ],
)
def test_business_days_after(start: date, days: int, due: date) -> None:
    assert business_days_after(start, days) == due


def test_negative_business_days_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        business_days_after(MON, -1)


@pytest.mark.parametrize(
    ("value", "end", "day"),
    [
        ("2026", False, date(2026, 1, 1)),
        ("2026", True, date(2026, 12, 31)),
        ("2026-02", True, date(2026, 2, 28)),
        ("2026-12", True, date(2026, 12, 31)),
        ("2026-11-25T10:00:00Z", False, date(2026, 11, 25)),
        ("soon", False, None),
        (None, False, None),
        ("2026-13", False, None),
    ],
)
def test_fhir_day(value: Any, end: bool, day: date | None) -> None:
    assert fhir_day(value, end=end) == day


@pytest.mark.parametrize(
    ("period", "covers"),
    [
        (None, True),
        ({}, True),
        ({"start": "2026-11-25"}, True),
        ({"start": "2026-11-26"}, False),
        ({"end": "2026-11"}, True),
        ({"end": "2026-11-24"}, False),
        ({"start": "2026", "end": "2026"}, True),
        ({"start": "soon"}, False),
        ("2026", False),
    ],
)
def test_period_covers(period: Any, covers: bool) -> None:
    assert period_covers(period, date(2026, 11, 25)) is covers
