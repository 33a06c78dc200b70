"""NOAA/NCEI GOES XRS event list, ``ftp_YYYYMMDD_YYYYMMDD.csv`` (bundled as
``data/flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz``).

Columns ``(index), start_time, peak_time, end_time, label, noaa_ar, obs, cls``; times UTC,
``YYYY-MM-DD HH:MM:SS`` or (start/end from 2023-12-29) ``YYYY/MM/DD HH:MM``; ``noaa_ar`` 0
means unassigned.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._flares import finish_flares, parse_times
from .base import Format, ParseContext, columns, run_reader

__all__ = ["FORMAT", "read_ncei_goes_flares"]

_TIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S"]


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """The canonical flare frame (see `read_ncei_goes_flares`)."""
    df = ctx.read_table()
    ctx.require(df, ["start_time", "peak_time", "end_time", "label", "noaa_ar"])
    df = df.rename({"start_time": "start_raw", "peak_time": "peak_raw", "end_time": "end_raw"})
    df = parse_times(df, {"start_raw": "start_time", "peak_raw": "peak_time",
                          "end_raw": "end_time"}, _TIME_FORMATS, ctx,
                     required=("start_time", "peak_time"))
    df = ctx.parse_classes(df, "label")
    df = ctx.parse_noaa_ar(df, "noaa_ar")
    return finish_flares(df, "ncei_goes", ctx)


FORMAT = Format(name="ncei_goes", kind="flares", signature=columns("peak_time", "label", "noaa_ar"),
                read=read)


def read_ncei_goes_flares(path: str | Path, *, strict: bool = False) -> pl.DataFrame:
    """Read the NOAA/NCEI GOES XRS event list (``ftp_YYYYMMDD_YYYYMMDD.csv``).

    Columns ``(index), start_time, peak_time, end_time, label, noaa_ar, obs, cls``; times
    UTC, ``YYYY-MM-DD HH:MM:SS`` or (start/end from 2023-12-29) ``YYYY/MM/DD HH:MM``.
    Returns the canonical flare frame (``noaa_ar`` 0 -> null, ``harpnum`` null: use
    `flare_core.sources.harp_noaa.attach_harpnum`), sorted by ``peak_time``,
    ``source`` = ``"ncei_goes"``.
    """
    return run_reader(read, Path(path), strict=strict)
