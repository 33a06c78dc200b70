"""SWAN-SF multivariate time-series windows ("petdataset"): one tab-separated file per
window, 60 rows at 12 min, ``Timestamp`` nominally TAI, upper-case SHARP keywords.

The HARP number comes from the file name (``lab[M]1.5@7571_id[3686]_st[...]_et[...].csv``);
a directory of such files is one data set. Flare columns (``*FLARE*``, ``XR_MAX``) are
labels and are dropped.

>>> read_swan_sf_mvts("data/swan_sf/mvts")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from ...errors import ParseError
from ...schema import SHARP_KEYWORDS, conform_sharp
from ...timeutil import tai_to_utc_expr
from .. import _parse as P
from ._common import ISO, RESEARCH_SERIES, is_missing, research_series
from .base import Format, Header, ParseContext, run_reader

__all__ = ["FORMAT", "read_swan_sf_mvts"]

#: The HARP number in a window's file name.
SWAN_ID_RE = re.compile(r"_id\[(\d+)\]")
_META = {"CRVAL1": "crval1", "CRLN_OBS": "crln_obs"}


def _paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, str | Path):
        p = Path(paths)
        return sorted(p.glob("*.csv")) if p.is_dir() else [p]
    return [Path(p) for p in paths]


def _read_one(path: Path, ctx: ParseContext) -> pl.DataFrame:
    m = SWAN_ID_RE.search(path.name)
    if m is None:
        raise ParseError(f"{path}: SWAN-SF file name lacks the HARP number '_id[<harpnum>]'")
    df = ctx.read_table(separator="\t")
    ctx.require(df, ["Timestamp", "QUALITY", "NOAA_AR"])
    kw = {c: c.lower() for c in df.columns if c.lower() in SHARP_KEYWORDS}
    num_cols = {**kw, **{c: v for c, v in _META.items() if c in df.columns}}
    df = df.with_columns(
        pl.lit(int(m.group(1)), dtype=pl.Int64).alias("harpnum"),
        tai_to_utc_expr(P.strptime_any("Timestamp", ISO)).alias("t_rec"),
        P.normalise_noaa_list(pl.col("NOAA_AR")).alias("noaa_ars"),
        *[pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(v)
          for c, v in num_cols.items()],
        pl.col("QUALITY").str.strip_chars().cast(pl.Float64, strict=False).alias("_q"),
    )
    df = ctx.drop_bad(df, pl.col("t_rec").is_null(), reason="malformed Timestamp",
                      raw_col="Timestamp")
    for c, v in num_cols.items():
        df = ctx.drop_bad(df, pl.col(v).is_null() & ~is_missing(pl.col(c).str.strip_chars()),
                          reason=f"non-numeric {c}", raw_col=c)
    df = df.with_columns(
        pl.col("_q").fill_nan(None).cast(pl.Int64).alias("quality"),
        pl.lit("swan_sf").alias("source"), research_series(),
    )
    return ctx.check_plausible(df)  # here, where the file lines are known


def _read_files(files: list[Path], ctx: ParseContext) -> pl.DataFrame:
    """Every window file read in a context of its own name, then cleaned as one set."""
    frames = [conform_sharp(_read_one(f, ctx.at(f))) for f in files]
    return ctx.clean_sharp(pl.concat(frames))


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """A window file or a directory of them (see `read_swan_sf_mvts`); counts of the set
    name the directory."""
    files = _paths(path)
    if not files:
        raise ParseError(f"no SWAN-SF files in {path}")
    return _read_files(files, ctx.at(files[0].parent))


def _signature(header: Header) -> bool:
    if header.is_dir:
        return any(SWAN_ID_RE.search(n) for n in header.names)
    return header.has_columns({"Timestamp", "QUALITY"})


FORMAT = Format(name="swan_sf_mvts", kind="sharp", signature=_signature, read=read,
                series=RESEARCH_SERIES)


def read_swan_sf_mvts(paths: str | Path | Iterable[str | Path], *,
                      strict: bool = False) -> pl.DataFrame:
    """Read SWAN-SF multivariate time-series windows into one canonical SHARP frame.

    Parameters
    ----------
    paths
        One file, a directory of ``*.csv`` windows, or an iterable of files. Each file is
        tab-separated with a ``Timestamp`` (nominally TAI) column and upper-case keywords.
    strict
        Raise `ParseError` on the first malformed row instead of dropping it.

    Returns
    -------
    polars.DataFrame
        `SHARP_SCHEMA` with the SWAN-SF keywords, ``quality``, ``crval1``, ``crln_obs`` and
        ``noaa_ars`` (``"11958;11959"`` -> ``"11958,11959"``). Overlapping windows repeat
        records: duplicates of (harpnum, t_rec) are dropped and counted. The label columns
        (``*FLARE*``, ``XR_MAX``, ``XR_QUAL``) are not kept.
    """
    files = _paths(paths)
    if not files:
        raise ParseError(f"no SWAN-SF files in {paths}")
    return run_reader(_read_files, files, strict=strict, where=str(files[0].parent))
