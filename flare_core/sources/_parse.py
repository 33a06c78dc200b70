"""Shared parsing helpers of the source readers (private).

Vectorised polars versions of the scalar helpers in `flare_core.goes`, string-time parsing
(`strptime_any`) and the bookkeeping of dropped rows. Time-scale conversion lives in
`flare_core.timeutil` (``utc`` and ``tai_to_utc_expr`` are re-exported here). Every
reader either raises a `ParseError` naming the file and line, or drops the bad rows and
reports the count.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl

from ..errors import ParseError
from ..goes import canonical_class, class_to_flux
from ..schema import SHARP_KEYWORDS
from ..timeutil import (
    LEAP_SECOND_CLAMP_US,
    tai_to_utc_expr,  # noqa: F401 - re-export for callers of P.tai_to_utc_expr
)
from ..timeutil import utc_expr as utc  # noqa: F401 - re-export: hek.py calls P.utc

logger = logging.getLogger("flare_core.sources")

ROW = "_row"  # 0-based data-row index column added by readers (dropped before returning)
_BAD_UTF8 = "\ufffd"  # a non-UTF-8 byte after polars' utf8-lossy decoding


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
    nulled: set[str] = field(default_factory=set)  # the notes that replaced a value by null

    def note(self, reason: str, n: int, *, nulled: bool = False) -> None:
        """Count a repair that keeps the row (NaN -> null, re-sorting, midnight crossing).

        ``nulled`` marks repairs that lost a value (NaN or a missing marker -> null): they
        are logged at WARNING and listed by `summary` like drops.
        """
        if n > 0:
            self.notes[reason] = self.notes.get(reason, 0) + int(n)
            if nulled:
                self.nulled.add(reason)

    def add(self, reason: str, n: int, example: str = "") -> None:
        if n <= 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + int(n)
        if example and reason not in self.examples:
            self.examples[reason] = example

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line for people: every drop, then every nulled value; ``"none"`` if neither.

        ``"2 implausible USFLUX (record dropped), 1 NaN keyword value -> null (value
        nulled)"``. Repairs that lose nothing (re-sorting) are left out; see ``notes``.
        """
        parts = [f"{n} {r} (record dropped)" for r, n in self.counts.items()]
        parts += [f"{n} {r} (value nulled)" for r, n in self.notes.items() if r in self.nulled]
        return ", ".join(parts) or "none"

    def log(self, path: str | Path) -> None:
        """Log one WARNING line per drop reason (count and first example) and per nulled
        value; other repairs at INFO."""
        for reason, n in self.counts.items():
            ex = self.examples.get(reason, "")
            logger.warning("%s: dropped %d x %s%s", path, n, reason,
                           f" (first: {ex})" if ex else "")
        for reason, n in self.notes.items():
            if reason in self.nulled:
                logger.warning("%s: %d x %s", path, n, reason)
            else:
                logger.info("%s: %d x %s", path, n, reason)


_LEAP_RE = r"23:59:60(?:\.0*)?"  # a UTC leap second, written as the 61st second


def strptime_any(col: str, formats: list[str]) -> pl.Expr:
    """Parse a UTC string column trying each ``strftime`` format in turn; unparseable -> null.

    A leap second ``23:59:60`` becomes ``23:59:59.999999`` of the same day (polars alone
    would roll it to 00:00 of the next day); second 60 at any other time -> null.
    """
    s = pl.col(col).str.strip_chars()
    leap = s.str.contains(_LEAP_RE)
    sixty = s.str.contains(r"\d:\d\d:60")
    fixed = s.str.replace(_LEAP_RE, "23:59:59")
    parsed = pl.coalesce(
        [fixed.str.strptime(pl.Datetime("us"), f, strict=False, exact=True) for f in formats]
    )
    return (pl.when(leap).then(parsed + pl.duration(microseconds=LEAP_SECOND_CLAMP_US))
            .when(sixty).then(pl.lit(None, dtype=pl.Datetime("us")))
            .otherwise(parsed))


def first_bytes(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a file, gunzipped when it is gzip."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            return fh.read(n)
    except OSError as e:
        raise ParseError(f"{path}: cannot read: {e}") from e


def first_lines(path: Path, n: int) -> list[str]:
    """The first ``n`` text lines (gzip or plain), undecodable bytes replaced."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        out: list[str] = []
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                out.append(line.rstrip("\r\n"))
                if len(out) >= n:
                    break
    except OSError as e:
        raise ParseError(f"{path}: cannot read: {e}") from e
    return out


def read_text_table(path: Path, *, separator: str = ",", has_header: bool = True,
                    new_columns: list[str] | None = None, skip_rows: int = 0,
                    drops: Drops | None = None, strict: bool = False) -> pl.DataFrame:
    """Read a delimited text file (gzip or plain) with every column as a string.

    A line with bytes that are not UTF-8 is dropped and counted (``"non-UTF-8 bytes"``)
    when ``drops`` is given and not ``strict``; otherwise `ParseError` names its line.
    The rest of the file is read either way.
    """
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
            encoding="utf8-lossy",
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as e:
        raise ParseError(f"{path}: cannot read as a {separator!r}-separated table: {e}") from e
    df = df.with_row_index(ROW)
    if df.height and df.width > 1:
        bad = pl.any_horizontal([pl.col(c).str.contains(_BAD_UTF8, literal=True).fill_null(False)
                                 for c in df.columns if c != ROW])
        offset = 1 + int(has_header) + skip_rows
        df = drop_bad(df, bad, reason="non-UTF-8 bytes", raw_col=None, path=path,
                      drops=drops if drops is not None else Drops(),
                      strict=strict or drops is None, line_offset=offset)
    return df


def require_columns(df: pl.DataFrame, cols: list[str], path: str | Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ParseError(f"{path}: missing column(s) {missing}; found {df.columns}")


def drop_bad(df: pl.DataFrame, bad: pl.Expr, *, reason: str, raw_col: str | None,
             path: str | Path,
             drops: Drops, strict: bool, line_offset: int = 2) -> pl.DataFrame:
    """Drop rows where ``bad`` holds; raise `ParseError` instead when ``strict``.

    ``line_offset`` converts the 0-based data-row index to a 1-based file line (2 when one
    header line precedes the data).
    """
    flagged = df.filter(bad)
    if flagged.height == 0:
        return df
    first = flagged.row(0, named=True)
    row = first.get(ROW)
    where = f"{path}" if row is None else f"{path}, line {row + line_offset}"
    value = first.get(raw_col) if raw_col else None
    example = (f"{path}" if row is None else f"{path}:{row + line_offset}") + (
        f" value {value!r}" if raw_col else "")
    if strict:
        raise ParseError(f"{where}: {reason}" + (f": {value!r}" if raw_col else ""))
    drops.add(reason, flagged.height, example)
    return df.filter(~bad)


def parse_classes(df: pl.DataFrame, raw_col: str, *, path: Path, drops: Drops,
                  strict: bool, line_offset: int = 2) -> pl.DataFrame:
    """Add ``goes_class`` (`flare_core.goes.canonical_class`: ``"m 1.50"`` -> ``"M1.5"``)
    and ``peak_flux_wm2`` (W m^-2).

    Unknown class strings are dropped (counted) or, when ``strict``, raise `ParseError`.
    The flux comes from `flare_core.goes.class_to_flux` applied to each distinct class.
    """
    raw = pl.col(raw_col).fill_null("")
    canon: dict[str, str] = {}
    for c in df.get_column(raw_col).fill_null("").unique().to_list():
        try:
            canon[c] = canonical_class(c)
        except ParseError:
            pass  # e.g. '', 'A0.0', 'Z1.0': dropped or raised below with file and line
    df = drop_bad(df, ~raw.is_in(list(canon)), reason="unknown GOES class",
                  raw_col=raw_col, path=path, drops=drops, strict=strict, line_offset=line_offset)
    flux = {c: class_to_flux(c) for c in set(canon.values())}
    df = df.with_columns(raw.replace_strict(canon, return_dtype=pl.Utf8).alias("goes_class"))
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
                key: tuple[str, ...] = ("harpnum", "t_rec"), strict: bool = False,
                line_offset: int = 2) -> pl.DataFrame:
    """Records with a non-finite or implausible keyword dropped
    (`flare_core.sources.plausibility.check_plausible`, counted, or `ParseError` when
    ``strict``); NaN keyword values -> null (counted as nulled values); duplicate
    (harpnum, t_rec) dropped (counted); rows sorted by (harpnum, t_rec) (out-of-order rows
    counted).

    ``key`` names the record identity for the duplicate check and the sort; readers whose
    ``harpnum`` may be null (NOAA-keyed files without a HARP map) pass a key that includes
    the NOAA region, so records of different regions at one time are not merged.
    """
    from .plausibility import check_plausible

    df = check_plausible(df, path=path, drops=drops, strict=strict, line_offset=line_offset)
    kw = [c for c in SHARP_KEYWORDS if c in df.columns and df.schema[c] == pl.Float64]
    if kw and df.height:
        n_nan = df.select(pl.sum_horizontal([pl.col(c).is_nan().sum() for c in kw])).item()
        if n_nan:
            drops.note("NaN keyword value -> null", n_nan, nulled=True)
            df = df.with_columns([pl.col(c).fill_nan(None) for c in kw])
    if df.height:
        diffs = df.select(
            ((pl.col("harpnum").diff() == 0) & (pl.col("t_rec").diff() < timedelta(0))).sum()
        ).item()
        drops.note("out-of-order T_REC (re-sorted)", int(diffs or 0))
    n0 = df.height
    # stable sort, then drop each row equal to its predecessor on the key: keeps the first
    # occurrence like unique(keep="first"), at the cost of the sort alone
    df = df.sort(list(key), nulls_last=True, maintain_order=True)
    if df.height > 1:
        same = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in key])
        df = df.filter(~same.fill_null(False))
    drops.add(f"duplicate ({', '.join(k.lstrip('_') for k in key)})", n0 - df.height, str(path))
    return df


def dedupe_flares(df: pl.DataFrame, *, path: str | Path, drops: Drops) -> pl.DataFrame:
    """Drop flares peaking after the time of reading (`plausibility.check_times`, counted)
    and repeated flare identities (peak_time, goes_class, noaa_ar), counted."""
    from .plausibility import check_times

    df = check_times(df, "peak_time", path=path, drops=drops, strict=False, earliest=None)
    n0 = df.height
    df = df.unique(subset=["peak_time", "goes_class", "noaa_ar"], keep="first",
                   maintain_order=True)
    drops.add("duplicate flare (peak_time, goes_class, noaa_ar)", n0 - df.height, str(path))
    return df.sort("peak_time")
