"""Time scales in one place: JSOC TAI -> UTC (scalar and polars), and UTC normalisation.

Every datetime leaving flare_core is tz-aware UTC. JSOC writes ``T_REC`` in TAI as
``2014.02.04_03:00:00_TAI``; TAI - UTC was 34 s (2010) to 37 s (2017 on).

One leap-second table, derived once at import from the table that ships with ERFA
(``erfa.leap_seconds``, the one astropy's ``Time`` uses; tests/test_timeutil.py checks
that `tai_to_utc` agrees with ``astropy.time.Time(..., scale="tai").utc``). It is not
written by hand. `TAI_MINUS_UTC_S` holds it as (first UTC instant, offset) pairs; the
scalar conversions (`tai_to_utc`, `parse_t_rec`, `format_t_rec`) and the vectorised polars
expression `tai_to_utc_expr` all look instants up in the same two sorted arrays derived
from it (`_UTC_STARTS`, `_TAI_STARTS`), so they cannot disagree. Times before 1972-01-01
UTC have no integer offset (UTC then ran at a different rate): `ParseError`, or null in
the polars expression.

Leap-second strings: TAI has no leap seconds, so a TAI ``..._23:59:60_TAI`` is malformed.
A UTC string whose clock reads ``23:59:60`` (a real leap second) cannot be held by a
``datetime``; it becomes ``23:59:59.999999`` of the same day, never 00:00 of the next day
(so a flare peaking in a leap second keeps its date and its order). Second 60 at any
other time of day is malformed.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

import erfa
import polars as pl

from .errors import ConfigError, ParseError

__all__ = ["to_utc_columns", "tai_to_utc", "tai_to_utc_expr", "utc_expr", "parse_t_rec", "to_utc",
           "format_t_rec", "TAI_MINUS_UTC_S", "LEAP_SECOND_CLAMP_US"]


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

# The lookup arrays, derived once from TAI_MINUS_UTC_S. An offset applies from its UTC
# start on, i.e. from the TAI instant start + offset on (TAI clock readings are held as
# tz-aware datetimes labelled UTC so that they compare with the UTC ones).
_OFFSETS_S: tuple[int, ...] = tuple(v for _, v in TAI_MINUS_UTC_S)
_UTC_STARTS: tuple[datetime, ...] = tuple(t for t, _ in TAI_MINUS_UTC_S)
_TAI_STARTS: tuple[datetime, ...] = tuple(t + timedelta(seconds=v) for t, v in TAI_MINUS_UTC_S)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_TAI_STARTS_US = pl.Series([(t - _EPOCH) // _US for t in _TAI_STARTS], dtype=pl.Int64)
_OFFSETS_US = pl.Series([v * 1_000_000 for v in _OFFSETS_S], dtype=pl.Int64)

_T_REC_RE = re.compile(
    r"^(\d{4})\.(\d{2})\.(\d{2})_(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:_(TAI|UTC|Z))?$"
)
_LEAP_ISO_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ])23:59:60(?:\.0*)?((?:[+-]00:?00)?)$")


def _offset_s(t: datetime, starts: tuple[datetime, ...], scale: str) -> int:
    """TAI - UTC (s) at ``t`` (tz-aware; a TAI reading labelled UTC when ``scale`` is TAI)."""
    i = bisect_right(starts, t) - 1
    if i < 0:
        raise ParseError(f"{scale} time {t.replace(tzinfo=None).isoformat()} is before 1972 "
                         "(no leap-second offset)")
    return _OFFSETS_S[i]


def tai_to_utc(tai: datetime) -> datetime:
    """Convert a naive TAI datetime to tz-aware UTC.

    ``datetime(2017, 1, 1, 0, 0, 37)`` (TAI) -> ``2017-01-01 00:00:00+00:00``. The second
    of a leap (TAI ``2017-01-01 00:00:36``) maps to the same UTC instant as the next one.
    Raises `ParseError` for an aware datetime or a time before 1972.
    """
    if tai.tzinfo is not None:
        raise ParseError(f"TAI time must be naive, got {tai!r}")
    t = tai.replace(tzinfo=UTC)
    return t - timedelta(seconds=_offset_s(t, _TAI_STARTS, "TAI"))


def tai_to_utc_expr(tai: pl.Expr) -> pl.Expr:
    """Naive TAI ``Datetime`` expression -> ``Datetime("us", "UTC")``, vectorised `tai_to_utc`.

    A sorted search of each time among the TAI instants at which an offset starts (the
    table of `tai_to_utc`), so the cost does not grow with the number of leap seconds.
    Times before 1972-01-01 (no integer offset) give null; the caller reports them.
    """
    tai_us = tai.cast(pl.Datetime("us")).dt.epoch("us")
    idx = pl.lit(_TAI_STARTS_US).search_sorted(tai_us, side="right").cast(pl.Int64) - 1
    offset = pl.when(idx >= 0).then(pl.lit(_OFFSETS_US).gather(idx.clip(0)))
    return (tai_us - offset).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def utc_expr(expr: pl.Expr) -> pl.Expr:
    """Mark a naive datetime expression as UTC (for sources that write UTC, e.g. GOES lists)."""
    return expr.dt.replace_time_zone("UTC")


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
    """Inverse of `parse_t_rec`: a UTC datetime (naive = UTC) as a JSOC TAI string.

    ``2014-02-04 02:59:25+00:00`` -> ``2014.02.04_03:00:00_TAI``; `ParseError` before 1972.
    """
    t = to_utc(t_utc)
    tai = (t + timedelta(seconds=_offset_s(t, _UTC_STARTS, "UTC"))).replace(tzinfo=None)
    return tai.strftime("%Y.%m.%d_%H:%M:%S_TAI")


def to_utc(t: datetime | str) -> datetime:
    """Any datetime or ISO string -> tz-aware UTC. Naive values are taken as UTC.

    ``"2014-02-04T03:00:00Z"`` -> ``2014-02-04 03:00:00+00:00``; a leap second
    ``23:59:60`` -> ``23:59:59.999999`` of its day. Raises `ParseError` quoting a malformed
    string or a value that is not a datetime.
    """
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


def to_utc_columns(frame: pl.DataFrame, columns: Iterable[str], *,
                   time_unit: Literal["ns", "us", "ms"] | None = None) -> pl.DataFrame:
    """``frame`` with each of ``columns`` as a tz-aware UTC ``Datetime``.

    Parameters
    ----------
    frame : polars.DataFrame
        Holds ``columns``, each a ``Datetime`` (any time zone, or none).
    columns : iterable of str
        Columns to convert. Values with a time zone are converted to UTC (the instant is
        kept); naive values are taken as UTC (the wall time is kept).
    time_unit : {"ns", "us", "ms"}, optional
        Cast to this unit as well (flareflow frames are ``Datetime("us", "UTC")``); None
        keeps each column's unit.

    Returns
    -------
    polars.DataFrame
        ``frame`` itself when nothing needs changing, else a frame with those columns
        replaced (same order and other columns).

    Raises
    ------
    ConfigError
        A column is not a ``Datetime``.
    """
    exprs = []
    for col in columns:
        dtype = frame.schema[col]
        if not isinstance(dtype, pl.Datetime):
            raise ConfigError(f"column {col!r} must be a Datetime, got {dtype}")
        if dtype.time_zone == "UTC" and time_unit in (None, dtype.time_unit):
            continue
        expr = pl.col(col)
        expr = (expr.dt.convert_time_zone("UTC") if dtype.time_zone
                else expr.dt.replace_time_zone("UTC"))
        if time_unit is not None:
            expr = expr.dt.cast_time_unit(time_unit)
        exprs.append(expr.alias(col))
    return frame.with_columns(exprs) if exprs else frame
