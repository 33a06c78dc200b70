"""Hollanda daily SHARP records, ``hollanda_sharp_daily_flare_*.csv[.gz]``: ``;``-separated,
one record per NOAA region and day, keyed by NOAA AR (``harpnum`` via the HARP map).

``FlareNumber`` is the source study's label: never kept; `read_hollanda_labels` returns it
for cross-checks. No license is stated: the file is not bundled (``../shared/data``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...schema import SHARP_KEYWORDS, conform_sharp
from ...timeutil import tai_to_utc_expr
from .. import _parse as P
from ._common import ISO, RESEARCH_SERIES
from ._noaa_keyed import finish_noaa_keyed, require_noaa
from .base import Format, ParseContext, columns, run_reader

__all__ = ["FORMAT", "read_hollanda_labels", "read_hollanda_sharp"]

#: The 25 SHARP keywords of the Hollanda file (every canonical keyword except ``area``).
_KEYWORDS = [k.upper() for k in SHARP_KEYWORDS if k != "area"]


def _frame(ctx: ParseContext, harp_map: pl.DataFrame | None) -> pl.DataFrame:
    """Parsed Hollanda records, still carrying the raw ``FlareNumber`` label column."""
    df = ctx.read_table(separator=";")
    ctx.require(df, ["FlareNumber", "T_REC", "NOAA_AR", "QUALITY", *_KEYWORDS])
    df = df.with_columns(tai_to_utc_expr(P.strptime_any("T_REC", ISO)).alias("t_rec"))
    df = ctx.drop_bad(df, pl.col("t_rec").is_null(), reason="malformed T_REC", raw_col="T_REC")
    df = require_noaa(df, "NOAA_AR", ctx)
    q = pl.col("QUALITY").str.strip_chars().cast(pl.Float64, strict=False)
    df = ctx.drop_bad(df, q.is_null() | (q != q.floor()) | (q < 0), reason="malformed QUALITY",
                      raw_col="QUALITY")
    df = df.with_columns(pl.col("QUALITY").str.strip_chars().cast(pl.Float64).cast(pl.Int64)
                         .alias("quality"))
    return finish_noaa_keyed(df, _KEYWORDS, "hollanda", harp_map=harp_map, ctx=ctx)


def read(path: Path, ctx: ParseContext, *, harp_map: pl.DataFrame | None = None
         ) -> pl.DataFrame:
    """The canonical SHARP frame (see `read_hollanda_sharp`)."""
    return conform_sharp(_frame(ctx, harp_map))


FORMAT = Format(name="hollanda", kind="sharp", signature=columns("FlareNumber", "T_REC", "NOAA_AR"),
                read=read, noaa_keyed=True, series=RESEARCH_SERIES)


def read_hollanda_sharp(path: str | Path, *, harp_map: pl.DataFrame | None = None,
                        strict: bool = False) -> pl.DataFrame:
    """Read the Hollanda daily SHARP file (one record per NOAA AR and day).

    Parameters
    ----------
    path
        ``hollanda_sharp_daily_flare_*.csv[.gz]``: ``;``-separated, columns ``FlareNumber,
        T_REC, NOAA_AR, QUALITY, Longitude, Latitude`` and 25 SHARP keywords (all but
        ``AREA``). No license is stated: the file is not bundled.
    harp_map
        Output of `flare_core.sources.harp_noaa.read_harp_noaa_map`. The file has no HARP
        number; it comes from ``NOAA_AR`` through the map. A NOAA AR listed under several
        HARPs gets the HARP listing the fewest NOAA ARs, then the smallest number (counted,
        logged). Without a map ``harpnum`` is null (logged).
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        `SHARP_SCHEMA`; ``t_rec`` = ``T_REC`` read as TAI and converted to UTC (the file's
        naive times are nominally TAI like the other derived SHARP files), ``noaa_ars`` =
        ``NOAA_AR``, ``quality`` = ``QUALITY``, 25 keywords (``area`` null); missing values
        are nulls (counted). ``source`` = ``"hollanda"``.

    Notes
    -----
    ``Longitude`` and ``Latitude`` are **not** copied to ``lon_fwt``/``lat_fwt``: in this
    file they are unsigned whole degrees (all >= 0; e.g. NOAA 11158, a southern region at
    S20, has ``Latitude`` 19-21, and the longitudes of a region fall to 0 at central
    meridian and rise again), i.e. ``|lon|`` and ``|lat|``, so the hemisphere and the
    east/west side are lost and the signed canonical columns would be wrong for half the
    regions. They stay null.

    ``FlareNumber`` is the source study's label (a flare in the following 1-2 days, see
    ../shared/data/README.md): it is never kept; `read_hollanda_labels` returns it for
    cross-checks only. Records of one HARP at one time (two NOAA ARs on one HARP) are
    duplicates: the first is kept, the rest counted.
    """
    return run_reader(read, Path(path), strict=strict, harp_map=harp_map)


def read_hollanda_labels(path: str | Path, *, harp_map: pl.DataFrame | None = None
                         ) -> pl.DataFrame:
    """The Hollanda file's own label, for cross-checks only (never a model input).

    Returns columns ``harpnum``, ``noaa_ar``, ``t_rec`` (UTC, as in `read_hollanda_sharp`)
    and ``label_flare_source`` (Boolean: ``FlareNumber`` == 1, a flare in the following
    days according to the source study). Raises `ParseError` on a malformed label.
    """
    ctx = ParseContext(Path(path), strict=True)
    df = _frame(ctx, harp_map)
    lab = pl.col("FlareNumber").str.strip_chars()
    df = ctx.drop_bad(df, ~lab.is_in(["0", "1"]).fill_null(False),
                      reason="malformed FlareNumber", raw_col="FlareNumber")
    return df.select("harpnum", "noaa_ar", "t_rec", (lab == "1").alias("label_flare_source"))
