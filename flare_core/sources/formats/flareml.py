"""FlareML flaring-AR snapshots, ``flareml_flaring_ar_snapshots.csv``: ``Flare Class,
Flare Date, AR`` and 13 SHARP keywords, keyed by NOAA AR (``harpnum`` via the HARP map).

``Flare Class`` is a label: never kept; `read_flareml_labels` returns it for cross-checks.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...schema import conform_sharp
from ...timeutil import utc_expr
from .. import _parse as P
from ._common import RESEARCH_SERIES
from ._noaa_keyed import finish_noaa_keyed, require_noaa
from .base import Format, ParseContext, columns, run_reader

__all__ = ["FORMAT", "read_flareml_labels", "read_flareml_snapshots"]

#: The 13 SHARP keywords of the FlareML snapshots.
_KEYWORDS = ["TOTUSJH", "TOTBSQ", "TOTPOT", "TOTUSJZ", "ABSNJZH", "SAVNCPP", "USFLUX",
             "AREA_ACR", "TOTFZ", "MEANPOT", "R_VALUE", "EPSZ", "SHRGT45"]


def _frame(ctx: ParseContext, harp_map: pl.DataFrame | None) -> pl.DataFrame:
    """Parsed FlareML snapshots, still carrying the ``Flare Class`` label column."""
    df = ctx.read_table()
    ctx.require(df, ["Flare Class", "Flare Date", "AR", *_KEYWORDS])
    df = df.with_columns(utc_expr(P.strptime_any("Flare Date", ["%m/%d/%Y %H:%M",
                                                                "%m/%d/%Y %H:%M:%S"]))
                         .alias("t_rec"))
    df = ctx.drop_bad(df, pl.col("t_rec").is_null(), reason="malformed Flare Date",
                      raw_col="Flare Date")
    df = require_noaa(df, "AR", ctx)
    return finish_noaa_keyed(df, _KEYWORDS, "flareml", harp_map=harp_map, ctx=ctx)


def read(path: Path, ctx: ParseContext, *, harp_map: pl.DataFrame | None = None
         ) -> pl.DataFrame:
    """The canonical SHARP frame (see `read_flareml_snapshots`)."""
    return conform_sharp(_frame(ctx, harp_map))


FORMAT = Format(name="flareml", kind="sharp", signature=columns("Flare Class", "Flare Date", "AR"),
                read=read, noaa_keyed=True, series=RESEARCH_SERIES)


def read_flareml_snapshots(path: str | Path, *, harp_map: pl.DataFrame | None = None,
                           strict: bool = False) -> pl.DataFrame:
    """Read the FlareML flaring-AR snapshots into the canonical SHARP frame.

    Parameters
    ----------
    path
        ``flareml_flaring_ar_snapshots.csv``: ``Flare Class, Flare Date, AR`` and 13 SHARP
        keywords (``TOTUSJH ... SHRGT45``), ``Flare Date`` written ``M/D/YYYY H:MM``.
    harp_map
        HARP <-> NOAA map (`read_harp_noaa_map`); a NOAA AR on several HARPs is resolved as
        in `read_hollanda_sharp`, and without a map ``harpnum`` is null.
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        `SHARP_SCHEMA` with the 13 keywords (others null), ``noaa_ars`` = ``AR``,
        ``source`` = ``"flareml"``.

    Notes
    -----
    What ``t_rec`` means: the file gives only ``Flare Date``, and for 829 of its 845 rows
    the time is 00:10 of the day (the rest are other times). It is **not** the flare's
    time: matching each row to the NCEI GOES list (same NOAA AR and class, within 72 h)
    finds 744 flares, 730 of which peaked *after* that time (median 11.6 h later, 728
    within 24 h). So the keywords are a snapshot taken on the flare day before the flare,
    and ``t_rec`` is that snapshot time, read as UTC (it is not on the 12-min TAI T_REC
    grid, so no TAI conversion). A few snapshots may postdate their flare: use the frame
    as keywords of flaring regions, not for timing-sensitive labels.

    ``Flare Class`` (``"X22"`` = X2.2) describes the flare that followed: a label, never
    kept here; `read_flareml_labels` returns it separately.
    """
    return run_reader(read, Path(path), strict=strict, harp_map=harp_map)


def read_flareml_labels(path: str | Path, *, harp_map: pl.DataFrame | None = None
                        ) -> pl.DataFrame:
    """The FlareML snapshot labels, for cross-checks only (never a model input).

    Returns ``harpnum``, ``noaa_ar``, ``t_rec`` (as in `read_flareml_snapshots`),
    ``label_flare_class`` (``"X22"`` -> ``"X2.2"``) and ``label_peak_flux_wm2`` (W m^-2)
    of the flare that followed the snapshot. Raises `ParseError` on an unknown class.
    """
    ctx = ParseContext(Path(path), strict=True)
    df = _frame(ctx, harp_map)
    raw = pl.col("Flare Class").str.strip_chars().str.to_uppercase()
    df = df.with_columns(
        pl.when(raw.str.contains(r"^[ABCMX]\d\d+$"))
        .then(raw.str.slice(0, 2) + pl.lit(".") + raw.str.slice(2)).otherwise(raw)
        .alias("_cls"))
    df = ctx.parse_classes(df, "_cls")
    return df.select("harpnum", "noaa_ar", "t_rec", pl.col("goes_class").alias("label_flare_class"),
                     pl.col("peak_flux_wm2").alias("label_peak_flux_wm2"))
