"""Time helpers: JSOC TAI strings -> UTC, and UTC normalisation.

Every datetime leaving flare_core is tz-aware UTC. JSOC writes ``T_REC`` in TAI as
``2014.02.04_03:00:00_TAI``; TAI - UTC was 34 s (2010) to 37 s (2017 on).

The leap-second table `TAI_MINUS_UTC_S` is derived once, at import, from the table that
ships with ERFA (``erfa.leap_seconds``, the one astropy's ``Time`` uses); it is not
written by hand. `flare_core.sources._parse.tai_to_utc_expr` applies the same table to
polars columns, so the scalar and vectorised conversions cannot disagree.

Leap-second strings: TAI has no leap seconds, so a TAI ``..._23:59:60_TAI`` is malformed.
A UTC string whose clock reads ``23:59:60`` (a real leap second) cannot be held by a
``datetime``; it becomes ``23:59:59.999999`` of the same day, never 00:00 of the next day
(so a flare peaking in a leap second keeps its date and its order). Second 60 at any
other time of day is malformed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import erfa

from .errors import ParseError

__all__ = ["tai_to_utc", "parse_t_rec", "to_utc", "format_t_rec", "TAI_MINUS_UTC_S",
           "LEAP_SECOND_CLAMP_US"]


def _leap_second_table() -> tuple[tuple[datetime, int], ...]:
    """(first UTC instant of an offset, TAI - UTC in s) from ERFA's table, 1972 on.

    Before 1972 UTC ran at a different rate (fractional, drifting offsets); those rows are
    left out, so times before 1972-01-01 have no offset (`ParseError` / null).
    """
    rows = [(datetime(int(r["year"]), int(r["month"]), 1, tzinfo=UTC), r["tai_utc"])
            for r in erfa.leap_seconds.get() if r["year"] >= 1972]
    if any(v != int(v) for _, v in rows):
        raise AssertionError("ERFA leap-second table has a fractional offset after 1972")
    return tuple((t, int(v)) for t, v in rows)


#: (first UTC instant at which the offset applies, TAI - UTC in seconds), from ERFA
TAI_MINUS_UTC_S: tuple[tuple[datetime, int], ...] = _leap_second_table()
#: A UTC ``23:59:60`` (leap second) is read as ``23:59:59`` plus this many microseconds.
LEAP_SECOND_CLAMP_US = 999_999

_T_REC_RE = re.compile(
    r"^(\d{4})\.(\d{2})\.(\d{2})_(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:_(TAI|UTC|Z))?$"
)


_LEAP_ISO_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ])23:59:60(?:\.0*)?((?:[+-]00:?00)?)$")


def _offset_s(tai: datetime) -> int:
    if tai < TAI_MINUS_UTC_S[0][0]:
        raise ParseError(f"T_REC {tai.isoformat()} is before 1972 (no leap-second offset)")
    off = TAI_MINUS_UTC_S[0][1]
    for start, value in TAI_MINUS_UTC_S:
        # The table is in UTC; compare in TAI using the offset that applied just before.
        if tai - timedelta(seconds=value) >= start:
            off = value
    return off


def tai_to_utc(tai: datetime) -> datetime:
    """Convert a naive TAI datetime to tz-aware UTC."""
    if tai.tzinfo is not None:
        raise ParseError(f"TAI time must be naive, got {tai!r}")
    t = tai.replace(tzinfo=UTC)
    return t - timedelta(seconds=_offset_s(t))


def parse_t_rec(t_rec: str) -> datetime:
    """Parse a JSOC ``T_REC`` string to tz-aware UTC.

    ``2014.02.04_03:00:00_TAI`` -> ``2014-02-04 02:59:25+00:00``. Strings without a zone
    suffix are TAI (the series' native scale); ``_UTC``/``_Z`` are taken as UTC. Raises
    `ParseError` quoting the string if it is malformed.
    """
    if not isinstance(t_rec, str):
        raise ParseError(f"T_REC must be a string, got {t_rec!r}")
    m = _T_REC_RE.match(t_rec.strip())
    if m is None:
        raise ParseError(f"malformed T_REC {t_rec!r} (expected YYYY.MM.DD_hh:mm:ss_TAI)")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    utc_zone = zone in ("UTC", "Z")
    sec, micro = int(s or 0), int((frac or "0")[:6].ljust(6, "0"))
    if sec == 60 and utc_zone and (h, mi) == ("23", "59"):
        sec, micro = 59, LEAP_SECOND_CLAMP_US  # a UTC leap second: keep its day
    try:
        naive = datetime(int(y), int(mo), int(d), int(h), int(mi), sec, micro)
    except ValueError as e:
        raise ParseError(f"malformed T_REC {t_rec!r}: {e}") from e
    if utc_zone:
        return naive.replace(tzinfo=UTC)
    return tai_to_utc(naive)


def format_t_rec(t_utc: datetime) -> str:
    """Inverse of `parse_t_rec`: a tz-aware UTC datetime as a JSOC TAI string."""
    t = to_utc(t_utc)
    off = TAI_MINUS_UTC_S[0][1]
    for start, value in TAI_MINUS_UTC_S:
        if t >= start:
            off = value
    tai = (t + timedelta(seconds=off)).replace(tzinfo=None)
    return tai.strftime("%Y.%m.%d_%H:%M:%S_TAI")


def to_utc(t: datetime | str) -> datetime:
    """Any datetime or ISO string -> tz-aware UTC. Naive values are taken as UTC."""
    if isinstance(t, str):
        text = t.strip().replace("Z", "+00:00")
        leap = _LEAP_ISO_RE.match(text)
        if leap:  # 23:59:60 UTC: a leap second, kept on its own day
            text = f"{leap.group(1)}23:59:59.{LEAP_SECOND_CLAMP_US:06d}{leap.group(2)}"
        try:
            t = datetime.fromisoformat(text)
        except ValueError as e:
            raise ParseError(f"malformed time {t!r} (expected ISO 8601)") from e
    if not isinstance(t, datetime):
        raise ParseError(f"expected a datetime, got {t!r}")
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
