"""The steps shared by the NOAA-keyed SHARP formats (private): files that name a record by
its NOAA region, not its HARP, so ``harpnum`` comes from the HARP <-> NOAA map
(formats declared with ``noaa_keyed=True``: Hollanda, FlareML)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import polars as pl

from ._common import parse_numeric, research_series
from .base import ParseContext

logger = logging.getLogger(__name__)

#: Record identity when ``harpnum`` may be null: the HARP, else the NOAA region.
NOAA_KEY = ("_harpnum_or_noaa", "t_rec")


def attach_harp_by_noaa(df: pl.DataFrame, harp_map: pl.DataFrame | None,
                        ctx: ParseContext) -> pl.DataFrame:
    """Fill ``harpnum`` from ``noaa_ar`` through the HARP <-> NOAA map.

    A NOAA region listed under several HARPs gets the HARP that lists the **fewest** NOAA
    regions (its own patch rather than a patch that is mainly another region's), then the
    smallest HARP number; those rows are counted. Without a map, or for a region absent
    from it, ``harpnum`` is null (logged and counted).
    """
    path = ctx.path
    if harp_map is None:
        logger.warning("%s: no HARP<->NOAA map given: harpnum stays null for %d records "
                       "(pass harp_map=read_harp_noaa_map(...))", path, df.height)
        ctx.note("no HARP map: harpnum null", df.height)
        df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias("harpnum"))
    else:
        m = harp_map.select(pl.col("noaa_ar").cast(pl.Int64), pl.col("harpnum").cast(pl.Int64))
        m = m.with_columns(pl.len().over("harpnum").alias("_n_ars"))
        cand = (m.sort(["noaa_ar", "_n_ars", "harpnum"])
                .group_by("noaa_ar", maintain_order=True)
                .agg(pl.col("harpnum").first(), pl.col("harpnum").n_unique().alias("_n_harps")))
        df = df.join(cand, on="noaa_ar", how="left")
        amb = df.filter(pl.col("_n_harps") > 1)
        if amb.height:
            logger.info("%s: %d records (%d NOAA ARs) map to several HARPs; kept the HARP "
                        "with the fewest NOAA ARs", path, amb.height, amb["noaa_ar"].n_unique())
        ctx.note("NOAA AR on several HARPs (HARP with fewest NOAA ARs kept)", amb.height)
        n_unmapped = df.select(pl.col("harpnum").is_null().sum()).item()
        if n_unmapped:
            logger.warning("%s: %d records have a NOAA AR absent from the HARP map: harpnum "
                           "null", path, n_unmapped)
        ctx.note("NOAA AR not in HARP map: harpnum null", n_unmapped)
        df = df.drop("_n_harps")
    return df.with_columns(
        pl.when(pl.col("harpnum").is_not_null())
        .then(pl.lit("harp:") + pl.col("harpnum").cast(pl.Utf8))
        .otherwise(pl.lit("noaa:") + pl.col("noaa_ar").cast(pl.Utf8)).alias(NOAA_KEY[0]),
        pl.col("noaa_ar").cast(pl.Utf8).alias("noaa_ars"),
    )


def require_noaa(df: pl.DataFrame, raw_col: str, ctx: ParseContext) -> pl.DataFrame:
    """``noaa_ar`` from ``raw_col``; a row without one is malformed (it cannot be placed)."""
    df = ctx.parse_noaa_ar(df, raw_col)
    return ctx.drop_bad(df, pl.col("noaa_ar").is_null(), reason=f"missing {raw_col}",
                        raw_col=raw_col)


def finish_noaa_keyed(df: pl.DataFrame, keywords: Sequence[str], source: str, *,
                      harp_map: pl.DataFrame | None, ctx: ParseContext) -> pl.DataFrame:
    """Last steps of a NOAA-keyed SHARP reader.

    Parses ``keywords`` into their snake_case columns, adds ``harpnum`` from ``harp_map``,
    sets ``source`` and cleans the frame on the NOAA key (drops counted in ``ctx``).
    """
    df = parse_numeric(df, {c: c.lower() for c in keywords}, ctx)
    df = attach_harp_by_noaa(df, harp_map, ctx)
    return ctx.clean_sharp(df.with_columns(pl.lit(source).alias("source"), research_series()),
                           key=NOAA_KEY)
