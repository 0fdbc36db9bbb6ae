"""Date keys and instants written from ``isoformat`` slices must equal the strftime texts they
replace (pure, table-driven: every key already stored was written by strftime)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.search import text

FORMATS = ("%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


def strftime_keys(low: datetime, high: datetime) -> tuple[str, ...]:
    lo, last = low.astimezone(UTC), (high - timedelta(microseconds=1)).astimezone(UTC)
    keys: list[str] = []
    for fmt in FORMATS:
        if lo.strftime(fmt) != last.strftime(fmt):
            break
        keys.append(lo.strftime(fmt))
    return tuple(keys)


def samples() -> list[datetime]:
    rnd = random.Random(14)
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11))]
    fixed = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2024, 3, 1, 2, 0, tzinfo=timezone(timedelta(hours=5))),  # the day before in UTC
    ]
    drawn = [
        datetime(rnd.randrange(1, 9999), 1, 1, tzinfo=rnd.choice(zones))
        + timedelta(seconds=rnd.randrange(0, 364 * 86400), microseconds=rnd.randrange(10**6))
        for _ in range(400)
    ]
    return fixed + [d for d in drawn if 1 < d.year < 9999]


@pytest.mark.parametrize("t", samples())
def test_instant_text_is_the_strftime_text(t: datetime) -> None:
    u = t.astimezone(UTC)
    assert text.iso(t) == u.strftime(text.INSTANT_FMT) + f".{u.microsecond // 1000:03d}Z"


@pytest.mark.parametrize(
    "span",
    [timedelta(microseconds=1), timedelta(seconds=1), timedelta(minutes=1), timedelta(days=1)],
)
def test_precision_keys_are_the_strftime_keys(span: timedelta) -> None:
    for t in samples():
        if t.year < 9999:
            assert text._keys(t, t + span) == strftime_keys(t, t + span), t


@pytest.mark.parametrize("raw", ["0099", "0999-05", "1970", "2024-02", "2024-02-29", "9998-12"])
def test_parsed_dates_keep_their_strftime_keys(raw: str) -> None:
    r = text.parse_date(raw)
    assert r is not None
    assert r.keys == strftime_keys(r.low, r.high)


@pytest.mark.parametrize("raw", ["9999", "9999-12", "9999-12-31", "9999-12-31T23:59:59Z"])
def test_a_range_ending_after_the_year_9999_ends_at_the_last_instant(raw: str) -> None:
    r = text.parse_date(raw)
    assert r is not None and r.low.year == 9999
    assert r.high == datetime.max.replace(tzinfo=UTC)


def test_a_local_time_past_the_year_9999_in_utc_is_not_a_date() -> None:
    assert text.parse_date("9999-12-31T23:59:59-05:00") is None
