"""Physically plausible ranges of the SHARP keywords, and the check every reader applies.

A record with a non-finite keyword (``inf``, ``-inf``, ``1e400``) or a keyword outside
its range is **dropped whole** (counted per keyword and file, logged at WARNING; with
``strict=True`` the first one raises `ParseError` naming file, line, keyword and value).
Dropping the record rather than nulling the value is deliberate: a record in which one
keyword is absurd (issue 12 F1: USFLUX 1e30, AREA -5e6, R_VALUE 99 in one record) comes
from a broken pipeline step, and its other keywords cannot be trusted either; a null would
be imputed later and the record would still reach a forecast. NaN is different: JSOC and
the research files write NaN for "not computed", so NaN -> null (counted as a nulled value,
`flare_core.sources._parse.clean_sharp`).

Ranges
------
`KEYWORD_RANGES` maps each canonical keyword to ``(low, high)`` in the unit of the JSOC
keyword table ``hmi.sharp_cea_720s`` (``../shared/data/jsoc_fixtures/hmi.sharp_cea_720s_keywords.csv``,
bundled as ``data/jsoc/hmi.sharp_cea_720s_keywords.csv``; units also in
`flare_core.schema.KEYWORD_UNITS`), inclusive at both ends. They are physical bounds,
not statistics: angles within [0, 90] deg, a percentage within [0, 100], areas at most one
hemisphere (1e6 micro-hemispheres), the normalised Lorentz forces EPS* within +-2 (the
definitions bound them by 1; Bobra et al. 2014, Sol. Phys. 289, 3549, Table 3, and
Fisher et al. 2012), unsigned totals and means >= 0, and every extensive quantity at least
~30x (mostly >1000x) above the largest value in the real data. The largest real values
(1,083,140 NRT records 2021-2023, the four sun2022 folds, SWAN-SF samples, Hollanda and
FlareML; 2.3 M records, read 2026-12-01) are in the comment of each row; those ranges
drop 0 real records.

Times
-----
A record time (``t_rec``) after the time of reading plus `FUTURE_TOLERANCE`, or before
`HMI_FIRST_DATA` (SDO/HMI's first science data, 2010-04-30 UTC), cannot be an observation:
the record is dropped like an absurd keyword (counted, or `ParseError` when strict, naming
file, line, HARP and time; `check_times`). The same future rule applies to flare peak
times (`flare_core.sources._parse.dedupe_flares`); flare lists reach back before SDO, so
they have no lower bound. "The time of reading" is the wall clock when the check runs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from ..schema import KEYWORD_UNITS, SHARP_KEYWORDS

__all__ = ["FUTURE_TOLERANCE", "HMI_FIRST_DATA", "KEYWORD_RANGES", "check_plausible",
           "check_times"]

logger = logging.getLogger(__name__)

#: keyword -> (low, high), inclusive, in the JSOC unit; the largest |value| seen in the
#: real data (2.3 M records) in the comment.
KEYWORD_RANGES: dict[str, tuple[float, float]] = {
    "usflux": (0.0, 1e25),       # Mx; real max 2.0e23
    "meangam": (0.0, 90.0),      # degree (inclination from vertical); real 15.6..67.7
    "meangbt": (0.0, 1e4),       # G/Mm, mean |grad B_total|; real max 213
    "meangbz": (0.0, 1e4),       # G/Mm; real max 219
    "meangbh": (0.0, 1e4),       # G/Mm; real max 130
    "meanjzd": (-1e3, 1e3),      # mA/m^2, signed; real -3.4..17.7
    "totusjz": (0.0, 1e17),      # A; real max 6.0e14
    "meanalp": (-100.0, 100.0),  # 1/Mm, signed twist; real -0.26..0.49
    "meanjzh": (-100.0, 100.0),  # G^2/m, signed; real -0.06..0.10
    "totusjh": (0.0, 1e7),       # G^2/m; real max 2.6e4
    "absnjzh": (0.0, 1e7),       # G^2/m; real max 3.8e3
    "savncpp": (0.0, 1e17),      # A; real max 3.1e14
    "meanpot": (0.0, 1e7),       # erg/cm^3 (B = 5 kG gives ~1e6); real max 2.7e4
    "totpot": (0.0, 1e28),       # erg/cm; real max 5.3e24
    "meanshr": (0.0, 90.0),      # degree; real 5.5..58.5
    "shrgt45": (0.0, 100.0),     # percent of pixels; real max 75.4
    "r_value": (0.0, 10.0),      # log10(Mx) of the flux near the PIL; real max 5.5
    "area_acr": (0.0, 1e6),      # micro-hemisphere; real max 7.2e3
    "area": (0.0, 1e6),          # micro-hemisphere; real max 3.1e4
    "totbsq": (0.0, 1e15),       # G^2; real max 2.8e11
    "totfx": (-1e28, 1e28),      # dyne, signed; real |max| 9.2e24
    "totfy": (-1e28, 1e28),      # dyne, signed; real |max| 3.1e24
    "totfz": (-1e28, 1e28),      # dyne, signed; real |max| 2.6e25
    "epsx": (-2.0, 2.0),         # dimensionless, |eps| <= 1 by definition; real |max| 0.31
    "epsy": (-2.0, 2.0),         # dimensionless; real |max| 0.29
    "epsz": (-2.0, 2.0),         # dimensionless; real |max| 0.72
}
assert set(KEYWORD_RANGES) == set(SHARP_KEYWORDS), "every SHARP keyword needs a range"


#: SDO/HMI's first science data (UTC): no SHARP record can be older.
HMI_FIRST_DATA = datetime(2010, 4, 30, tzinfo=UTC)
#: How far after the time of reading a record or peak time may lie (clock differences
#: between the archive and this machine); later times are impossible.
FUTURE_TOLERANCE = timedelta(hours=1)


def check_times(df: pl.DataFrame, column: str, *, path: str | Path, drops, strict: bool,
                earliest: datetime | None = HMI_FIRST_DATA, now: datetime | None = None,
                line_offset: int = 2) -> pl.DataFrame:
    """Drop rows whose ``column`` lies after ``now + FUTURE_TOLERANCE`` or before ``earliest``.

    Parameters
    ----------
    df
        A frame with a Datetime ``column`` (tz-aware UTC, or naive UTC); null times are
        left alone (the readers judge those). ``harpnum``, when present, names the record.
    column
        ``"t_rec"`` or ``"peak_time"``; the reason names it in upper case.
    path, drops, strict, line_offset
        As for `check_plausible`. Reasons: ``"T_REC after the time of reading (+1 h)"``,
        ``"T_REC before SDO/HMI (2010-04-30)"``.
    earliest
        Lower bound, inclusive (default `HMI_FIRST_DATA`); None: no lower bound.
    now
        The time of reading, tz-aware; default the wall clock (UTC).

    Returns
    -------
    polars.DataFrame
        ``df`` without those rows.
    """
    from ._parse import drop_bad  # late: _parse.clean_sharp calls this module

    dtype = df.schema.get(column) if column in df.columns else None
    if not isinstance(dtype, pl.Datetime) or df.height == 0:
        return df
    latest = (now or datetime.now(UTC)).astimezone(UTC) + FUTURE_TOLERANCE

    def lit(t: datetime) -> pl.Expr:
        t = t.astimezone(UTC)
        return pl.lit(t if dtype.time_zone else t.replace(tzinfo=None))

    t = pl.col(column)
    label = pl.col(column).dt.to_string("%Y-%m-%dT%H:%M:%S")
    if "harpnum" in df.columns:
        label = pl.format("HARP {} at {}", pl.col("harpnum"), label)
    df = df.with_columns(label.alias("_time_label"))
    hours = FUTURE_TOLERANCE / timedelta(hours=1)
    opts = dict(raw_col="_time_label", path=path, drops=drops, strict=strict,
                line_offset=line_offset)
    df = drop_bad(df, t > lit(latest), reason=f"{column.upper()} after the time of reading "
                  f"(+{hours:g} h)", **opts)
    if earliest is not None:
        df = drop_bad(df, t < lit(earliest), reason=f"{column.upper()} before SDO/HMI "
                      f"({earliest:%Y-%m-%d})", **opts)
    return df.drop("_time_label")


def check_plausible(df: pl.DataFrame, *, path: str | Path, drops, strict: bool,
                    line_offset: int = 2) -> pl.DataFrame:
    """Drop records with a non-finite or out-of-range keyword, or an impossible ``t_rec``
    (`check_times`; see the module docstring).

    Parameters
    ----------
    df
        A frame with Float64 keyword columns (canonical snake_case names); other columns
        are kept as they are. When it still has the reader's row-index column, drops and
        errors name the file line (``line_offset`` = lines before the first data row + 1).
    path
        The file (or reply) named in counts, logs and errors.
    drops
        `flare_core.sources._parse.Drops` that receives one count per keyword and reason:
        ``"non-finite USFLUX"``, ``"implausible USFLUX (outside [0, 1e+25] Mx)"``.
    strict
        Raise `ParseError` on the first such record instead.

    Returns
    -------
    polars.DataFrame
        ``df`` without those records. Nulls and NaN are not judged here.
    """
    from ._parse import drop_bad  # late: _parse.clean_sharp calls this function

    df = check_times(df, "t_rec", path=path, drops=drops, strict=strict,
                     line_offset=line_offset)
    for k, (lo, hi) in KEYWORD_RANGES.items():
        if k not in df.columns or df.schema[k] != pl.Float64 or df.height == 0:
            continue
        v = pl.col(k)
        df = drop_bad(df, v.is_infinite(), reason=f"non-finite {k.upper()}", raw_col=k,
                      path=path, drops=drops, strict=strict, line_offset=line_offset)
        out = v.is_finite() & ((v < lo) | (v > hi))
        df = drop_bad(df, out, reason=f"implausible {k.upper()} (outside [{lo:g}, {hi:g}] "
                      f"{KEYWORD_UNITS[k]})", raw_col=k, path=path, drops=drops,
                      strict=strict, line_offset=line_offset)
    return df
