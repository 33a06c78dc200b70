"""SWPC flare list, ``swpc_flarelist_*.csv[.gz]``: ``date`` (YYYYMMDD) and ``HHMM`` times
``start_time, max_time, end_time`` relative to it, ``goes_class``, ``noaa_ar``. A time
earlier than the previous one of the same event has crossed midnight and moves to the
next day."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._flares import finish_flares, read_leading_index_table
from .base import Format, ParseContext, columns, run_reader

__all__ = ["FORMAT", "read_swpc_flares"]


def _hhmm(c: str) -> pl.Expr:
    """``HHMM`` (zero-padded to 4 digits) -> a duration since midnight; invalid -> null."""
    s = pl.col(c).str.strip_chars().str.zfill(4)
    ok = s.str.contains(r"^\d{4}$")
    h, m = s.str.slice(0, 2).cast(pl.Int64, strict=False), s.str.slice(2, 2).cast(
        pl.Int64, strict=False)
    valid = ok & (h < 24) & (m < 60)
    return pl.when(valid).then(pl.duration(hours=h, minutes=m)).otherwise(None)


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """The canonical flare frame (see `read_swpc_flares`)."""
    df = read_leading_index_table(ctx)
    ctx.require(df, ["date", "start_time", "max_time", "end_time", "goes_class", "noaa_ar"])
    date = pl.col("date").str.strip_chars().str.strptime(pl.Date, "%Y%m%d", strict=False)
    df = df.with_columns(date.alias("_date"), _hhmm("start_time").alias("_s"),
                         _hhmm("max_time").alias("_p"), _hhmm("end_time").alias("_e"))
    for raw, c in [("date", "_date"), ("start_time", "_s"), ("max_time", "_p")]:
        df = ctx.drop_bad(df, pl.col(c).is_null(), reason=f"malformed {raw}", raw_col=raw)
    s = pl.col("end_time").str.strip_chars()
    df = ctx.drop_bad(df, pl.col("_e").is_null() & s.is_not_null() & (s != ""),
                      reason="malformed end_time", raw_col="end_time")
    day = pl.duration(days=1)
    start = pl.col("_date").cast(pl.Datetime("us")) + pl.col("_s")
    peak_tod = pl.col("_date").cast(pl.Datetime("us")) + pl.col("_p")
    df = df.with_columns(start.alias("start_time"))
    df = df.with_columns(
        pl.when(peak_tod < pl.col("start_time")).then(peak_tod + day).otherwise(peak_tod)
        .alias("peak_time"))
    end_tod = pl.col("peak_time").dt.truncate("1d") + pl.col("_e")
    df = df.with_columns(
        pl.when(end_tod < pl.col("peak_time")).then(end_tod + day).otherwise(end_tod)
        .alias("end_time"))
    df = ctx.parse_classes(df, "goes_class")
    df = ctx.parse_noaa_ar(df, "noaa_ar")
    return finish_flares(df, "swpc", ctx)


FORMAT = Format(name="swpc", kind="flares", signature=columns("max_time", "goes_class"),
                read=read)


def read_swpc_flares(path: str | Path, *, strict: bool = False) -> pl.DataFrame:
    """Read the SWPC flare list (``date`` YYYYMMDD, ``start_time/max_time/end_time`` HHMM).

    Peak and end times earlier in the day than the preceding time of the same event have
    crossed midnight and are moved to the next day. Blank ``noaa_ar`` -> null.
    Returns the canonical flare frame, ``source`` = ``"swpc"``.
    """
    return run_reader(read, Path(path), strict=strict)
