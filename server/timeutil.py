"""Server clock in MongoDB's precision (milliseconds, UTC) and FHIR instant formatting."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime


def now() -> datetime:
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def fhir_instant(t: datetime) -> str:
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def http_date(t: datetime) -> str:
    return format_datetime(t.astimezone(UTC), usegmt=True)


def parse_http_date(value: str) -> datetime | None:
    try:
        t = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_fhir_instant(value: str) -> datetime | None:
    """Parse an instant or dateTime with at least a date; naive values are taken as UTC."""
    v = value.strip()
    if not v or len(v) < 4:
        return None
    try:
        if len(v) == 4:
            t = datetime(int(v), 1, 1, tzinfo=UTC)
        elif len(v) == 7:
            t = datetime(int(v[:4]), int(v[5:7]), 1, tzinfo=UTC)
        else:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
