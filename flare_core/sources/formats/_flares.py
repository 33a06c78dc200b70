"""The steps shared by the flare-list formats (private): time parsing, the midnight repair
and the last steps to the canonical flare frame (`flare_core.schema.FLARE_SCHEMA`)."""

from __future__ import annotations

import polars as pl

from ...errors import ParseError
from ...schema import conform_flares
from ...timeutil import utc_expr
from .. import _parse as P
from .base import ParseContext

#: Longest step a midnight repair may create (start -> peak, peak -> end), hours.
MAX_CROSSING_STEP_H = 12.0


def parse_times(df: pl.DataFrame, cols: dict[str, str], formats: list[str], ctx: ParseContext,
                *, required: tuple[str, ...]) -> pl.DataFrame:
    """Parse raw columns ``cols`` (raw -> canonical name, naive UTC); a null ``required``
    time or a non-empty unparseable value makes the row malformed."""
    df = df.with_columns([P.strptime_any(raw, formats).alias(out) for raw, out in cols.items()])
    for raw, out in cols.items():
        s = pl.col(raw).str.strip_chars()
        bad = pl.col(out).is_null() & (s.is_not_null() & (s != "") | pl.lit(out in required))
        df = ctx.drop_bad(df, bad, reason=f"malformed {raw}", raw_col=raw)
    return df


def repair_midnight(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """A peak before the start (or an end before the peak) crossed midnight only if the
    list wrote every time of the event on its start date: it moves one day later (counted
    as a repair) when that leaves a step of at most `MAX_CROSSING_STEP_H` hours (start at
    23:56, peak "00:06" -> 00:06 next day). Otherwise the times contradict each other
    (end 10:27 before peak 10:36 of the same day: +1 day would invent a 24-h flare):
    a contradictory peak drops the row, a contradictory end becomes null (the peak, which
    labels and histories use, is still trusted); both counted, never raised.

    The real lists need the repair: of the NCEI GOES rows with a time before its
    predecessor, 82 of 88 start at 23 h (Hayes 128/140, NCEI solar events 453/519); the
    rest are mid-day contradictions.
    """
    day = pl.duration(days=1)
    max_step = pl.duration(seconds=int(MAX_CROSSING_STEP_H * 3600))
    moved = 0
    for t, before in (("peak_time", "start_time"), ("end_time", "peak_time")):
        early = pl.col(t) < pl.col(before)
        fixable = early & (pl.col(t) + day - pl.col(before) <= max_step)
        reason = f"{t} before {before} (not a midnight crossing)"
        if t == "peak_time":
            df = ctx.drop_bad(df, early & ~fixable, reason=reason, strict=False)
        else:
            ctx.note(f"{reason} -> null", df.select((early & ~fixable).sum()).item() or 0,
                     nulled=True)
        moved += df.select(fixable.sum()).item() or 0
        df = df.with_columns(pl.when(fixable).then(pl.col(t) + day)
                             .when(early).then(None).otherwise(pl.col(t)).alias(t))
    ctx.note("peak/end past midnight moved +1 day", moved)
    return df


def finish_flares(df: pl.DataFrame, source: str, ctx: ParseContext) -> pl.DataFrame:
    """Midnight repair, UTC, ``harpnum`` null (`flare_core.sources.harp_noaa.attach_harpnum`
    fills it), ``source``; future peaks and repeated flares dropped (counted)."""
    df = repair_midnight(df, ctx)
    df = df.with_columns(
        *[utc_expr(pl.col(c)) for c in ("start_time", "peak_time", "end_time")],
        pl.lit(None, dtype=pl.Int64).alias("harpnum"),
        pl.lit(source).alias("source"),
    )
    return conform_flares(ctx.dedupe_flares(conform_flares(df)))


def read_leading_index_table(ctx: ParseContext, separator: str = ",") -> pl.DataFrame:
    """Read a pandas-written CSV whose header lacks the name of the leading index column."""
    head = P.first_lines(ctx.path, 2)
    if len(head) < 2:
        raise ParseError(f"{ctx.path}: no data rows")
    names = head[0].split(separator)
    if len(head[1].split(separator)) == len(names) + 1:
        return ctx.read_table(has_header=False, skip_rows=1, new_columns=["_index", *names],
                              separator=separator, count_bad_bytes=False)
    return ctx.read_table(separator=separator, count_bad_bytes=False)
