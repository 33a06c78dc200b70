"""Sun et al. (2022) SHARP folds, ``sun2022_sharp_m24h_fold{k}.csv[.gz]``.

Columns ``prefix, arpnum, t_start, t_end, label, flares, FLARE_INDEX (dropped), AREA,
USFLUX, MEANGBZ, R_VALUE``. ``t_end`` is the record time, nominally TAI, converted to UTC. The
label columns describe the 24 h *after* ``t_end`` and are dropped, never inputs;
`read_sun2022_labels` returns the source label separately, for cross-checks only.

>>> read_sun2022("data/sharp/sun2022_sharp_m24h_fold0.csv.gz")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...errors import ParseError
from ...schema import conform_sharp
from ...timeutil import tai_to_utc_expr
from .. import _parse as P
from ._common import ISO, RESEARCH_SERIES, research_series
from .base import Format, ParseContext, columns, run_reader

__all__ = ["FORMAT", "read_sun2022", "read_sun2022_labels"]

_KEYWORDS = ["AREA", "USFLUX", "MEANGBZ", "R_VALUE"]


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """The canonical SHARP frame of one fold (see `read_sun2022`)."""
    df = ctx.read_table()
    ctx.require(df, ["arpnum", "t_end", *_KEYWORDS])
    df = df.with_columns(
        pl.col("arpnum").str.strip_chars().cast(pl.Int64, strict=False).alias("harpnum"),
        tai_to_utc_expr(P.strptime_any("t_end", ISO)).alias("t_rec"),
        *[pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(c.lower())
          for c in _KEYWORDS],
    )
    df = ctx.drop_bad(df, pl.col("harpnum").is_null() | (pl.col("harpnum") <= 0),
                      reason="malformed arpnum", raw_col="arpnum")
    df = ctx.drop_bad(df, pl.col("t_rec").is_null(), reason="malformed t_end", raw_col="t_end")
    for c in _KEYWORDS:
        raw = pl.col(c).str.strip_chars()
        df = ctx.drop_bad(df, pl.col(c.lower()).is_null() & raw.is_not_null() & (raw != ""),
                          reason=f"non-numeric {c}", raw_col=c)
    df = df.with_columns(pl.lit("sun2022").alias("source"), research_series())
    return conform_sharp(ctx.clean_sharp(df))


FORMAT = Format(name="sun2022", kind="sharp", signature=columns("arpnum", "t_end"), read=read,
                series=RESEARCH_SERIES)


def read_sun2022(path: str | Path, *, strict: bool = False) -> pl.DataFrame:
    """Read one Sun et al. (2022) SHARP fold file into the canonical SHARP frame.

    Parameters
    ----------
    path
        ``sun2022_sharp_m24h_fold{k}.csv[.gz]`` with columns ``prefix, arpnum, t_start,
        t_end, label, flares, FLARE_INDEX (dropped), AREA, USFLUX, MEANGBZ, R_VALUE``.
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        `SHARP_SCHEMA`; ``harpnum`` = ``arpnum``, ``t_rec`` = ``t_end`` (TAI -> UTC),
        ``area``, ``usflux``, ``meangbz``, ``r_value`` filled, other keywords null,
        ``source`` = ``"sun2022"``. Sorted by (harpnum, t_rec). The label columns
        (``label``, ``flares``, ``FLARE_INDEX``: the 24 h after ``t_end``) are dropped.
    """
    return run_reader(read, Path(path), strict=strict)


def read_sun2022_labels(path: str | Path) -> pl.DataFrame:
    """The source study's own label of a sun2022 fold, for cross-checks only.

    Returns columns ``harpnum``, ``t_rec`` (UTC) and ``label_m24_source`` (Boolean: an
    M1.0+ flare in (t_rec, t_rec + 24 h] according to Sun et al.). Never a model input.
    """
    path = Path(path)
    df = P.read_text_table(path)
    P.require_columns(df, ["arpnum", "t_end", "label"], path)
    out = df.select(
        pl.col("arpnum").str.strip_chars().cast(pl.Int64, strict=False).alias("harpnum"),
        tai_to_utc_expr(P.strptime_any("t_end", ISO)).alias("t_rec"),
        pl.col("label").str.strip_chars().str.to_lowercase()
        .replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
        .alias("label_m24_source"),
    )
    bad = out.filter(pl.any_horizontal(pl.all().is_null()))
    if bad.height:
        raise ParseError(f"{path}: {bad.height} rows with malformed arpnum/t_end/label")
    return out.unique(subset=["harpnum", "t_rec"], keep="first").sort(["harpnum", "t_rec"])
