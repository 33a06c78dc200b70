"""Shared parsing helpers of the source readers (private).

Vectorised polars versions of the scalar helpers in `flare_core.timeutil` and
`flare_core.goes`, plus the bookkeeping of dropped rows. Every reader either raises a
`ParseError` naming the file and line, or drops the bad rows and reports the count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl

from ..errors import ParseError
from ..goes import class_to_flux
from ..schema import SHARP_KEYWORDS
from ..timeutil import TAI_MINUS_UTC_S

logger = logging.getLogger("flare_core.sources")

ROW = "_row"  # 0-based data-row index column added by readers (dropped before returning)


@dataclass
class Drops:
    """Counts of rows a reader dropped (or values it nulled), by reason, with one example each.

    ``counts`` maps a reason (``"malformed peak_time"``, ``"duplicate (harpnum, t_rec)"``,
    ``"NaN keyword -> null"``) to a count; ``examples`` holds the first ``file:line`` and
    value seen for each reason.
    """

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # fixes that keep the row

    def note(self, reason: str, n: int) -> None:
        """Count a repair that keeps the row (NaN -> null, re-sorting, midnight crossing)."""
        if n > 0:
            self.notes[reason] = self.notes.get(reason, 0) + int(n)

    def add(self, reason: str, n: int, example: str = "") -> None:
        if n <= 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + int(n)
        if example and reason not in self.examples:
            self.examples[reason] = example

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def log(self, path: str | Path) -> None:
        """Log one WARNING line per reason (count and first example)."""
        for reason, n in self.counts.items():
            ex = self.examples.get(reason, "")
            logger.warning("%s: dropped %d x %s%s", path, n, reason,
                           f" (first: {ex})" if ex else "")
        for reason, n in self.notes.items():
            logger.info("%s: %d x %s", path, n, reason)


def tai_to_utc_expr(tai: pl.Expr) -> pl.Expr:
    """Naive TAI ``Datetime`` expression -> ``Datetime("us", "UTC")``, vectorised.

    Same rule as `flare_core.timeutil.tai_to_utc` (IERS table `TAI_MINUS_UTC_S`); times
    before the first table entry give null (the caller reports them).
    """
    first_start = TAI_MINUS_UTC_S[0][0].replace(tzinfo=None)
    offset = pl.when(tai < pl.lit(first_start)).then(pl.lit(None, dtype=pl.Int64))
    for start, value in reversed(TAI_MINUS_UTC_S[1:]):
        threshold = start.replace(tzinfo=None) + timedelta(seconds=value)
        offset = offset.when(tai >= pl.lit(threshold)).then(pl.lit(value, dtype=pl.Int64))
    offset = offset.otherwise(pl.lit(TAI_MINUS_UTC_S[0][1], dtype=pl.Int64))
    return (tai.cast(pl.Datetime("us")) - pl.duration(seconds=offset)).dt.replace_time_zone("UTC")


def strptime_any(col: str, formats: list[str]) -> pl.Expr:
    """Parse a string column trying each ``strftime`` format in turn; unparseable -> null."""
    s = pl.col(col).str.strip_chars()
    return pl.coalesce(
        [s.str.strptime(pl.Datetime("us"), f, strict=False, exact=True) for f in formats]
    )


def utc(expr: pl.Expr) -> pl.Expr:
    """Mark a naive datetime expression as UTC (GOES event lists are in UTC)."""
    return expr.dt.replace_time_zone("UTC")


def read_text_table(path: Path, *, separator: str = ",", has_header: bool = True,
                    new_columns: list[str] | None = None, skip_rows: int = 0) -> pl.DataFrame:
    """Read a delimited text file (gzip or plain) with every column as a string."""
    try:
        df = pl.read_csv(
            path.read_bytes(),  # bytes: file names like 'lab[M]1.5@..' are not globs
            separator=separator,
            has_header=has_header,
            infer_schema=False,
            new_columns=new_columns,
            skip_rows=skip_rows,
            truncate_ragged_lines=False,
            quote_char='"',
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as e:
        raise ParseError(f"{path}: cannot read as a {separator!r}-separated table: {e}") from e
    return df.with_row_index(ROW)


def require_columns(df: pl.DataFrame, cols: list[str], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ParseError(f"{path}: missing column(s) {missing}; found {df.columns}")


def drop_bad(df: pl.DataFrame, bad: pl.Expr, *, reason: str, raw_col: str | None, path: Path,
             drops: Drops, strict: bool, line_offset: int = 2) -> pl.DataFrame:
    """Drop rows where ``bad`` holds; raise `ParseError` instead when ``strict``.

    ``line_offset`` converts the 0-based data-row index to a 1-based file line (2 when one
    header line precedes the data).
    """
    flagged = df.filter(bad)
    if flagged.height == 0:
        return df
    first = flagged.row(0, named=True)
    line = first[ROW] + line_offset
    value = first.get(raw_col) if raw_col else None
    example = f"{path}:{line}" + (f" value {value!r}" if raw_col else "")
    if strict:
        raise ParseError(f"{path}, line {line}: {reason}" + (f": {value!r}" if raw_col else ""))
    drops.add(reason, flagged.height, example)
    return df.filter(~bad)


def parse_classes(df: pl.DataFrame, raw_col: str, *, path: Path, drops: Drops,
                  strict: bool, line_offset: int = 2) -> pl.DataFrame:
    """Add ``goes_class`` (normalised, e.g. ``"M1.5"``) and ``peak_flux_wm2`` (W m^-2).

    Unknown class strings are dropped (counted) or, when ``strict``, raise `ParseError`.
    The flux comes from `flare_core.goes.class_to_flux` applied to each distinct class.
    """
    df = df.with_columns(
        pl.col(raw_col).str.strip_chars().str.to_uppercase().fill_null("").alias("goes_class")
    )
    flux: dict[str, float] = {}
    for c in df.get_column("goes_class").unique().to_list():
        try:
            flux[c] = class_to_flux(c)
        except ParseError:
            pass  # e.g. '', 'A0.0', 'Z1.0': dropped or raised below with file and line
    df = drop_bad(df, ~pl.col("goes_class").is_in(list(flux)), reason="unknown GOES class",
                  raw_col=raw_col, path=path, drops=drops, strict=strict, line_offset=line_offset)
    return df.with_columns(
        pl.col("goes_class").replace_strict(flux, return_dtype=pl.Float64).alias("peak_flux_wm2")
    )


def parse_noaa_ar(df: pl.DataFrame, raw_col: str, *, path: Path, drops: Drops, strict: bool,
                  line_offset: int = 2) -> pl.DataFrame:
    """Add ``noaa_ar`` Int64: blank or 0 -> null; ``"11907.0"`` -> 11907; text -> dropped row."""
    s = pl.col(raw_col).str.strip_chars()
    num = s.cast(pl.Float64, strict=False)
    blank = s.is_null() | (s == "")
    bad = ~blank & (num.is_null() | (num != num.floor()) | (num < 0))
    df = drop_bad(df, bad, reason="malformed NOAA AR number", raw_col=raw_col, path=path,
                  drops=drops, strict=strict, line_offset=line_offset)
    num = pl.col(raw_col).str.strip_chars().cast(pl.Float64, strict=False)
    return df.with_columns(
        pl.when(num > 0).then(num.cast(pl.Int64)).otherwise(None).alias("noaa_ar")
    )


def normalise_noaa_list(expr: pl.Expr) -> pl.Expr:
    """``"11958;11959"``, ``" 11953.0"``, ``"11967"``, ``""`` -> ``"11958,11959"`` / null."""
    parts = (
        expr.str.replace_all(r"[;\s]+", ",").str.strip_chars(",").str.split(",")
        .list.eval(pl.element().cast(pl.Float64, strict=False).cast(pl.Int64, strict=False))
        .list.eval(pl.element().filter(pl.element() > 0))
        .list.eval(pl.element().cast(pl.Utf8))
        .list.join(",")
    )
    return pl.when(parts == "").then(None).otherwise(parts)


def clean_sharp(df: pl.DataFrame, *, path: str | Path, drops: Drops,
                key: tuple[str, ...] = ("harpnum", "t_rec")) -> pl.DataFrame:
    """NaN keyword values -> null (counted); duplicate (harpnum, t_rec) dropped (counted);
    rows sorted by (harpnum, t_rec) (out-of-order rows counted).

    ``key`` names the record identity for the duplicate check and the sort; readers whose
    ``harpnum`` may be null (NOAA-keyed files without a HARP map) pass a key that includes
    the NOAA region, so records of different regions at one time are not merged.
    """
    kw = [c for c in SHARP_KEYWORDS if c in df.columns and df.schema[c] == pl.Float64]
    if kw and df.height:
        n_nan = df.select(pl.sum_horizontal([pl.col(c).is_nan().sum() for c in kw])).item()
        if n_nan:
            drops.note("NaN keyword value -> null", n_nan)
            df = df.with_columns([pl.col(c).fill_nan(None) for c in kw])
    if df.height:
        diffs = df.select(
            ((pl.col("harpnum").diff() == 0) & (pl.col("t_rec").diff() < timedelta(0))).sum()
        ).item()
        drops.note("out-of-order T_REC (re-sorted)", int(diffs or 0))
    n0 = df.height
    df = df.unique(subset=list(key), keep="first", maintain_order=True)
    drops.add(f"duplicate ({', '.join(k.lstrip('_') for k in key)})", n0 - df.height, str(path))
    return df.sort(list(key), nulls_last=True)


def dedupe_flares(df: pl.DataFrame, *, path: str | Path, drops: Drops) -> pl.DataFrame:
    """Drop repeated flare identities (peak_time, goes_class, noaa_ar), counted."""
    n0 = df.height
    df = df.unique(subset=["peak_time", "goes_class", "noaa_ar"], keep="first",
                   maintain_order=True)
    drops.add("duplicate flare (peak_time, goes_class, noaa_ar)", n0 - df.height, str(path))
    return df.sort("peak_time")
