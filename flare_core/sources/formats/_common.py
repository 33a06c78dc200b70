"""Pieces shared by several format modules (private): time formats, missing-value
spellings, the research series and the numeric-column parser."""

from __future__ import annotations

import polars as pl

from ...schema import SERIES_DEFINITIVE_CEA
from .base import ParseContext

#: ISO-like layouts of the research files' naive times.
ISO = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"]
#: Spellings of a missing value (SWAN-SF, Hollanda, FlareML, window statistics).
MISSING = ("", "nan", "na", "none", "null")
#: Every research data set (sun2022, SWAN-SF, Hollanda, FlareML) is built from the
#: definitive CEA series, so its HARP numbers are those of ``hmi.sharp_cea_720s``.
RESEARCH_SERIES = SERIES_DEFINITIVE_CEA


def research_series() -> pl.Expr:
    """The ``series`` column of a research SHARP frame."""
    return pl.lit(RESEARCH_SERIES).alias("series")


def is_missing(raw: pl.Expr) -> pl.Expr:
    """A raw (stripped) string that means "no value" (`MISSING`)."""
    return raw.is_null() | raw.str.to_lowercase().is_in(list(MISSING))


def parse_numeric(df: pl.DataFrame, cols: dict[str, str], ctx: ParseContext) -> pl.DataFrame:
    """Raw string columns -> Float64 ``cols[raw]``; blank -> null (counted as a repair),
    non-numeric -> malformed row (dropped and counted, or `ParseError` when strict)."""
    df = df.with_columns([pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(v)
                          for c, v in cols.items()])
    for c, v in cols.items():
        missing = is_missing(pl.col(c).str.strip_chars())
        df = ctx.drop_bad(df, pl.col(v).is_null() & ~missing, reason=f"non-numeric {c}",
                          raw_col=c)
    n_missing = df.select(pl.sum_horizontal([pl.col(v).is_null().sum() for v in cols.values()]))
    ctx.note("missing value -> null", int(n_missing.item() or 0))
    return df
