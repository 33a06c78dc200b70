"""Hayes et al. solar-cycle-24 final flare list, ``hayes_final_flare_list_sc24_*.csv[.gz]``:
ISO ``event_starttime/event_peaktime/event_endtime`` (UTC), ``goes_class``, ``noaa_ar``
(blank = none), written by pandas with an unnamed leading index column."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._common import ISO
from ._flares import finish_flares, parse_times, read_leading_index_table
from .base import Format, ParseContext, columns, run_reader

__all__ = ["FORMAT", "read_hayes_flares"]


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """The canonical flare frame (see `read_hayes_flares`)."""
    df = read_leading_index_table(ctx)
    ctx.require(df, ["event_starttime", "event_peaktime", "event_endtime", "goes_class",
                     "noaa_ar"])
    df = parse_times(df, {"event_starttime": "start_time", "event_peaktime": "peak_time",
                          "event_endtime": "end_time"}, ISO, ctx,
                     required=("start_time", "peak_time"))
    df = ctx.parse_classes(df, "goes_class")
    df = ctx.parse_noaa_ar(df, "noaa_ar")
    return finish_flares(df, "hayes", ctx)


FORMAT = Format(name="hayes", kind="flares", signature=columns("event_peaktime", "goes_class"),
                read=read)


def read_hayes_flares(path: str | Path, *, strict: bool = False) -> pl.DataFrame:
    """Read the Hayes SC24 final flare list (ISO ``event_*time`` columns, UTC).

    Returns the canonical flare frame, ``source`` = ``"hayes"``; ``peak_flux_wm2`` is
    recomputed from ``goes_class``.
    """
    return run_reader(read, Path(path), strict=strict)
