"""Time helpers: JSOC TAI strings -> UTC, and UTC normalisation.

Every datetime leaving flare_core is tz-aware UTC. JSOC writes ``T_REC`` in TAI as
``2014.02.04_03:00:00_TAI``; TAI - UTC was 34 s (2010) to 37 s (2017 on). The offset table
below is the IERS leap-second list for the SDO era.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .errors import ParseError

__all__ = ["tai_to_utc", "parse_t_rec", "to_utc", "format_t_rec", "TAI_MINUS_UTC_S"]

# (first UTC instant at which the offset applies, TAI - UTC in seconds)
TAI_MINUS_UTC_S: tuple[tuple[datetime, int], ...] = (
    (datetime(2009, 1, 1, tzinfo=UTC), 34),
    (datetime(2012, 7, 1, tzinfo=UTC), 35),
    (datetime(2015, 7, 1, tzinfo=UTC), 36),
    (datetime(2017, 1, 1, tzinfo=UTC), 37),
)

_T_REC_RE = re.compile(
    r"^(\d{4})\.(\d{2})\.(\d{2})_(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:_(TAI|UTC|Z))?$"
)


def _offset_s(tai: datetime) -> int:
    if tai < TAI_MINUS_UTC_S[0][0]:
        raise ParseError(f"T_REC {tai.isoformat()} is before the SDO era (no offset table)")
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
    try:
        naive = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0),
                         int((frac or "0")[:6].ljust(6, "0")))
    except ValueError as e:
        raise ParseError(f"malformed T_REC {t_rec!r}: {e}") from e
    if zone in ("UTC", "Z"):
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
        try:
            t = datetime.fromisoformat(t.strip().replace("Z", "+00:00"))
        except ValueError as e:
            raise ParseError(f"malformed time {t!r} (expected ISO 8601)") from e
    if not isinstance(t, datetime):
        raise ParseError(f"expected a datetime, got {t!r}")
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
