"""The NCEI solar-events list of SolarFlareNet, ``ncei_solar_events_*.csv[.gz]``:
``Flare Class``, ``Start/Peak/End Time`` written ``1996-07-31T01:32Z`` (UTC) and
``Active Region Number`` (0 = unassigned)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._common import ISO
from ._flares import finish_flares, parse_times
from .base import Format, ParseContext, columns, run_reader

__all__ = ["FORMAT", "read_ncei_solar_events"]

_TIME_FORMATS = ["%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M:%SZ", *ISO]


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """The canonical flare frame (see `read_ncei_solar_events`)."""
    df = ctx.read_table()
    ctx.require(df, ["Flare Class", "Start Time", "Peak Time", "End Time",
                     "Active Region Number"])
    df = parse_times(df, {"Start Time": "start_time", "Peak Time": "peak_time",
                          "End Time": "end_time"}, _TIME_FORMATS, ctx,
                     required=("start_time", "peak_time"))
    df = ctx.parse_classes(df, "Flare Class")
    df = ctx.parse_noaa_ar(df, "Active Region Number")
    return finish_flares(df, "ncei_solar_events", ctx)


FORMAT = Format(name="ncei_solar_events", kind="flares",
                signature=columns("Peak Time", "Active Region Number"), read=read)


def read_ncei_solar_events(path: str | Path, *, strict: bool = False) -> pl.DataFrame:
    """Read the NCEI solar-events list of SolarFlareNet (``1996-07-31T01:32Z`` times, UTC).

    Returns the canonical flare frame, ``source`` = ``"ncei_solar_events"``; AR 0 -> null.
    """
    return run_reader(read, Path(path), strict=strict)
