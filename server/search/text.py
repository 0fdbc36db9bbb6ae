"""Value encodings shared by extraction (write time) and query building (read time).

Both sides must encode identically, so the normalizers live here once: case/accent folding for
strings, order-preserving text for numbers, fixed-width UTC instants for dates, and the FHIR
search escaping rules (``\\,`` ``\\|`` ``\\$`` ``\\\\``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation

SEP = "\x1f"  # joins parts of synthetic (compound/composite) keys; never in normalized text
_WS = re.compile(r"\s+")
STRING_TOP = "\U0010ffff"  # greater than every character: upper bound of a prefix range


def normalize(text: str) -> str:
    """Lowercase, strip accents and punctuation-insensitive whitespace: the string match key."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WS.sub(" ", stripped.casefold()).strip().replace(SEP, " ")


def prefix_range(prefix: str) -> dict[str, str]:
    """``{$gte, $lt}`` bounds selecting every string that starts with ``prefix`` (index-friendly)."""
    return {"$gte": prefix, "$lt": prefix + STRING_TOP}


def split_unescaped(value: str, sep: str) -> list[str]:
    """Split on ``sep`` unless escaped with a backslash; escapes are kept for the next split."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            cur.append(value[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def unescape(value: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", value)


# ------------------------------------------------------------------------------------- numbers
# Exponent field of ``sortable_number``: fixed width, offset so that it is never negative.
_EXP_OFFSET = 500_000
MAX_ADJUSTED_EXPONENT = 400_000  # far beyond Decimal128 (±6144); keeps the field 6 digits wide
MAX_QUERY_DIGITS = 100  # significant digits of a search number (Decimal128 stores 34)
# Range arithmetic (implicit precision, ``ap``) adds at most a few digits to a search number's
# span; the default context (28 digits) would round 30-digit values.
EXACT = Context(
    prec=3 * MAX_QUERY_DIGITS, Emax=MAX_ADJUSTED_EXPONENT * 2, Emin=-MAX_ADJUSTED_EXPONENT * 2
)


def exact_decimal(x: Decimal | float | int) -> Decimal:
    """``x`` as an exact Decimal: a float (older data) by its shortest text, 0.1 as 0.1."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    return Decimal(x)


def sortable_number(x: Decimal | float | int) -> str:
    """Text whose lexicographic order is the exact numeric order of ``x`` (no binary rounding).

    Why not doubles: a double cannot tell 66.899999999999991 from its neighbours, so the implicit
    range of ``eq66.899999999999991`` ([…9905, …9915)) collapses to nothing, and integers beyond
    2**53 merge. Layout: ``"1"`` for zero; ``"2" + exponent + digits`` for positives, where the
    exponent is the position of the first significant digit (6 digits, offset) and the digits are
    the significand without trailing zeros (so 1.5 and 1.50 encode alike); negatives are ``"0"``
    + the complemented exponent and digits + ``"~"`` (a terminator above every digit, so that
    -0.12 sorts above -0.123).
    """
    d = exact_decimal(x)
    if not d.is_finite():
        raise ValueError(f"{x!r} is not a finite number")
    if d.is_zero():
        return "1"
    sign, digits, _ = d.as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    adjusted = d.adjusted()
    if abs(adjusted) > MAX_ADJUSTED_EXPONENT:
        raise ValueError(f"{x!r} is out of the searchable range")
    if not sign:
        return f"2{adjusted + _EXP_OFFSET:06d}{text}"
    complement = text.translate(_COMPLEMENT)
    return f"0{_EXP_OFFSET - 1 - adjusted:06d}{complement}~"


_COMPLEMENT = str.maketrans("0123456789", "9876543210")


@dataclass(frozen=True)
class NumberValue:
    """A search number exactly as written, with its implicit precision range [low, high) per FHIR
    search "number" (``100.00`` → [99.995, 100.005))."""

    value: Decimal
    low: Decimal
    high: Decimal


def parse_number(raw: str) -> NumberValue | None:
    try:
        d = Decimal(raw)
    except InvalidOperation:
        return None
    if not d.is_finite() or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", raw):
        return None
    _, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    if len(digits) > MAX_QUERY_DIGITS or (
        not d.is_zero() and abs(d.adjusted()) > MAX_ADJUSTED_EXPONENT
    ):
        return None
    half = Decimal(5).scaleb(exp - 1, EXACT)
    return NumberValue(d, EXACT.subtract(d, half), EXACT.add(d, half))


# --------------------------------------------------------------------------------------- dates
INSTANT_FMT = "%Y-%m-%dT%H:%M:%S"
_DATE_RE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _utc_text(t: datetime) -> str:
    """``t.strftime(INSTANT_FMT)``, sliced from ``isoformat`` (several times faster: a write
    formats each date it indexes a dozen times); strftime itself before the year 1000, whose
    unpadded year isoformat would not reproduce."""
    return t.isoformat()[:19] if t.year >= 1000 else t.strftime(INSTANT_FMT)


def iso(t: datetime) -> str:
    """Fixed-width UTC text (lexicographic order = time order for years 0001-9999)."""
    t = t.astimezone(UTC)
    return _utc_text(t) + f".{t.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class DateRange:
    """A date/dateTime/instant as the half-open range it denotes, plus its precision keys."""

    low: datetime
    high: datetime  # exclusive
    keys: tuple[str, ...]  # "YYYY", "YYYY-MM", "YYYY-MM-DD", "...THH:MM", "...:SS" (UTC)

    @property
    def lo(self) -> str:
        return iso(self.low)

    @property
    def hi(self) -> str:
        """Inclusive upper bound (1 ms before the exclusive end)."""
        return iso(self.high - timedelta(milliseconds=1))


def _add_months(t: datetime, n: int) -> datetime:
    m = t.month - 1 + n
    return t.replace(year=t.year + m // 12, month=m % 12 + 1)


def parse_date(raw: str) -> DateRange | None:
    """FHIR date/dateTime/instant → implicit range; naive times are taken as UTC."""
    m = _DATE_RE.fullmatch(raw.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    if hh is not None and tz is None and len(raw.strip()) > 16 and raw.strip()[-1].isdigit():
        tz = None
    try:
        tzinfo = UTC
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            from datetime import timezone

            tzinfo = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
        low = datetime(
            int(y),
            int(mo or 1),
            int(d or 1),
            int(hh or 0),
            int(mi or 0),
            int(ss or 0),
            int((frac or "0")[:6].ljust(6, "0")),
            tzinfo=tzinfo,
        )
    except (ValueError, OverflowError):
        return None
    try:
        high = _high(low, mo, d, hh, ss, frac)
    except OverflowError:  # the range ends after 9999-12-31 (a common open-end sentinel)
        high = _END
    try:
        return DateRange(low, high, _keys(low, high))
    except OverflowError:  # a local time whose UTC instant is past the year 9999
        return None


_END = datetime.max.replace(tzinfo=UTC)


def _high(
    low: datetime, mo: str | None, d: str | None, hh: str | None, ss: str | None, frac: str | None
) -> datetime:
    """The exclusive end of the range the given precision implies."""
    if mo is None:
        return low.replace(year=low.year + 1) if low.year < 9999 else low + timedelta(days=365)
    if d is None:
        return _add_months(low, 1) if low.year < 9999 or low.month < 12 else low + timedelta(31)
    if hh is None:
        return low + timedelta(days=1)
    if ss is None:
        return low + timedelta(minutes=1)
    if frac is None:
        return low + timedelta(seconds=1)
    return low + timedelta(milliseconds=1)


def _keys(low: datetime, high: datetime) -> tuple[str, ...]:
    """Precision keys of every calendar unit (UTC) that contains the whole range [low, high)."""
    lo, last = low.astimezone(UTC), (high - timedelta(microseconds=1)).astimezone(UTC)
    if lo.year >= 1000 and last.year >= 1000:  # the formats' texts are prefixes of one text
        a_text, b_text = _utc_text(lo), _utc_text(last)
        pairs = [(a_text[:n], b_text[:n]) for n in _KEY_LENGTHS]
    else:
        pairs = [(lo.strftime(f), last.strftime(f)) for f in _KEY_FORMATS]
    keys: list[str] = []
    for a, b in pairs:
        if a != b:
            break
        keys.append(a)
    return tuple(keys)


_KEY_FORMATS = ("%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
_KEY_LENGTHS = (4, 7, 10, 16, 19)  # each format's text, as a prefix of a 4-digit-year instant


def span(low: DateRange | None, high: DateRange | None) -> DateRange | None:
    """The range covered by a Period (start..end); an open end is unbounded."""
    if low is None and high is None:
        return None
    lo = low.low if low else datetime(1, 1, 1, tzinfo=UTC)
    hi = high.high if high else datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    if hi <= lo:
        hi = lo + timedelta(milliseconds=1)
    keys = _keys(lo, hi) if low and high else ()
    return DateRange(lo, hi, keys)


def query_date_key(raw: str) -> str | None:
    """The precision key an ``eq`` query on ``raw`` must find among a value's keys."""
    r = parse_date(raw)
    if r is None:
        return None
    keys = _keys(r.low, r.high)
    return keys[-1] if keys else None
