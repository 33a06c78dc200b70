"""A headerless ``;``-separated HEK GOES list (the ``00_All_GOES_SUNPY.csv`` layout):
``event_date; start; peak; end; goes_class; "(lon, lat)"; noaa_ar (0 = none); class
letter; class ordinal; lon; lat``, times ISO UTC."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from ...errors import ParseError
from ._common import ISO
from ._flares import finish_flares, parse_times
from .base import Format, Header, ParseContext, run_reader

__all__ = ["FORMAT", "read_hek_noheader"]

_COLS = ["event_date", "start", "peak", "end", "goes_class", "lonlat", "noaa_ar",
         "class_letter", "class_ordinal", "lon", "lat"]
_DATE_FIRST = re.compile(r"^\d{4}-\d{2}-\d{2};")


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """The canonical flare frame (see `read_hek_noheader`)."""
    ctx = ctx.at(ctx.path, line_offset=1)  # no header line: data row 0 is line 1
    df = ctx.read_table(separator=";", has_header=False, new_columns=_COLS,
                        count_bad_bytes=False)
    if df.width != len(_COLS) + 1:
        raise ParseError(f"{ctx.path}: expected {len(_COLS)} ';'-separated fields, "
                         f"got {df.width - 1}")
    df = parse_times(df, {"start": "start_time", "peak": "peak_time", "end": "end_time"},
                     ISO, ctx, required=("start_time", "peak_time"))
    df = ctx.parse_classes(df, "goes_class")
    df = ctx.parse_noaa_ar(df, "noaa_ar")
    return finish_flares(df, "hek_noheader", ctx)


def _signature(header: Header) -> bool:
    line = header.line
    return line.count(";") == len(_COLS) - 1 and _DATE_FIRST.match(line) is not None


FORMAT = Format(name="hek_noheader", kind="flares", signature=_signature, read=read)


def read_hek_noheader(path: str | Path, *, strict: bool = False) -> pl.DataFrame:
    """Read a headerless ``;``-separated HEK GOES list (``00_All_GOES_SUNPY.csv`` layout).

    Fields: event_date; start; peak; end; goes_class; "(lon, lat)"; noaa_ar (0 = none);
    class letter; class ordinal; lon; lat. Returns the canonical flare frame,
    ``source`` = ``"hek_noheader"``.
    """
    return run_reader(read, Path(path), strict=strict)
