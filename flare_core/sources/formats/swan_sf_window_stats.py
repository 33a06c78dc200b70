"""SWAN-SF ready-made per-window statistics, ``swan_sf_window_stats_*.csv[.gz]``: one
tab-separated row per window (``id`` = HARP, ``lab``, ``START_TIME``, ``END_TIME``,
``<KEYWORD>_{min,max,median,mean,stddev,var}``). Not a SHARP frame: kind
``"window_stats"``, features named ``{keyword}__{stat}`` like `flare_core.features`."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...errors import ParseError
from ...schema import SHARP_KEYWORDS
from ...timeutil import tai_to_utc_expr
from .. import _parse as P
from ._common import ISO, parse_numeric
from .base import Format, ParseContext, columns, run_reader

__all__ = ["FORMAT", "read_swan_sf_window_stats"]

_STAT_NAMES = {"min": "min", "max": "max", "median": "median", "mean": "mean",
               "stddev": "std", "var": "var"}
_SCHEMA_HEAD = {"harpnum": pl.Int64, "window_start": pl.Datetime("us", "UTC"),
                "window_end": pl.Datetime("us", "UTC"), "label_flare_class": pl.Utf8}


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """The window-statistics frame (see `read_swan_sf_window_stats`)."""
    df = ctx.read_table(separator="\t", count_bad_bytes=False)
    ctx.require(df, ["id", "lab", "START_TIME", "END_TIME"])
    feats: dict[str, str] = {}
    for c in df.columns:
        kw, _, stat = c.rpartition("_")
        if kw.lower() in SHARP_KEYWORDS and stat in _STAT_NAMES:
            feats[c] = f"{kw.lower()}__{_STAT_NAMES[stat]}"
    if not feats:
        raise ParseError(f"{ctx.path}: no '<KEYWORD>_<stat>' columns; found {df.columns}")
    harp = pl.col("id").str.strip_chars().cast(pl.Int64, strict=False)
    df = ctx.drop_bad(df, harp.is_null() | (harp <= 0), reason="malformed id", raw_col="id")
    df = df.with_columns(
        pl.col("id").str.strip_chars().cast(pl.Int64).alias("harpnum"),
        tai_to_utc_expr(P.strptime_any("START_TIME", ISO)).alias("window_start"),
        tai_to_utc_expr(P.strptime_any("END_TIME", ISO)).alias("window_end"),
        pl.col("lab").str.strip_chars().str.to_uppercase().alias("label_flare_class"),
    )
    for raw, c in [("START_TIME", "window_start"), ("END_TIME", "window_end")]:
        df = ctx.drop_bad(df, pl.col(c).is_null(), reason=f"malformed {raw}", raw_col=raw)
    df = ctx.drop_bad(df, pl.col("window_end") < pl.col("window_start"),
                      reason="END_TIME before START_TIME", raw_col="END_TIME")
    df = ctx.drop_bad(df, ~pl.col("label_flare_class").is_in(["N", "A", "B", "C", "M", "X"])
                      .fill_null(False), reason="unknown lab", raw_col="lab")
    df = parse_numeric(df, feats, ctx)
    n_nan = df.select(pl.sum_horizontal([pl.col(v).is_nan().sum() for v in feats.values()]))
    ctx.note("NaN value -> null", int(n_nan.item() or 0))
    df = df.with_columns([pl.col(v).fill_nan(None) for v in feats.values()])
    n0 = df.height
    df = df.unique(subset=["harpnum", "window_start"], keep="first", maintain_order=True)
    ctx.drops.add("duplicate (harpnum, window_start)", n0 - df.height, str(ctx.path))
    out = df.select([pl.col(c).cast(t) for c, t in _SCHEMA_HEAD.items()]
                    + [pl.col(v) for v in feats.values()])
    return out.sort(["harpnum", "window_start"])


FORMAT = Format(name="swan_sf_window_stats", kind="window_stats",
                signature=columns("id", "lab", "START_TIME", "END_TIME"), read=read)


def read_swan_sf_window_stats(path: str | Path, *, strict: bool = False) -> pl.DataFrame:
    """Read SWAN-SF ready-made per-window statistics (tab-separated, one row per window).

    Parameters
    ----------
    path
        ``swan_sf_window_stats_*.csv[.gz]`` with ``id`` (HARP), ``lab``, ``START_TIME``,
        ``END_TIME`` and ``<KEYWORD>_{min,max,median,mean,stddev,var}`` columns.
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        Not a SHARP frame: ``harpnum`` (Int64), ``window_start``/``window_end``
        (``Datetime("us", "UTC")``, the SWAN-SF times read as TAI and converted like
        `read_swan_sf_mvts`), ``label_flare_class`` (``lab``: ``"N"`` = no flare, else the
        GOES class letter of the flare that *followed* the window -- a label, never a
        feature), then Float64 features named like `flare_core.features`:
        ``{keyword}__{stat}`` with stat ``min``, ``max``, ``median``, ``mean``, ``std``
        (the file's ``stddev``; its ddof is not stated by the source) and ``var`` (an extra
        stat `flare_core.features` does not compute). `flare_core.features.feature_columns`
        therefore selects exactly the features, never the label. Sorted by
        (harpnum, window_start); duplicates of (harpnum, window_start) dropped, counted.
    """
    return run_reader(read, Path(path), strict=strict)
