"""Liu et al. (2019) flare lists, ``{B,C,M,X}-class.csv`` (a directory of them, or one):
``Flares`` (class), ``Start Time``, ``End Time``, ``NOAA``. They carry **no peak time**:
``peak_time`` is set to ``end_time``, an upper bound, so a flare never enters a history
window before it really peaked."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from ...errors import ParseError
from ...schema import conform_flares
from ...timeutil import utc_expr
from ._common import ISO
from ._flares import parse_times
from .base import Format, Header, ParseContext, run_reader

__all__ = ["FORMAT", "read_liu2019_flares"]

_PATTERN = "*-class.csv"


def _paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, str | Path) and Path(paths).is_dir():
        return sorted(Path(paths).glob(_PATTERN))
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _read_one(ctx: ParseContext) -> pl.DataFrame:
    df = ctx.read_table(count_bad_bytes=False)
    ctx.require(df, ["Flares", "Start Time", "End Time", "NOAA"])
    df = parse_times(df, {"Start Time": "start_time", "End Time": "end_time"}, ISO, ctx,
                     required=("start_time", "end_time"))
    df = df.with_columns(pl.col("end_time").alias("peak_time"))
    df = ctx.parse_classes(df, "Flares")
    df = ctx.parse_noaa_ar(df, "NOAA")
    return conform_flares(df.with_columns(pl.lit(None, dtype=pl.Int64).alias("harpnum"),
                                          pl.lit("liu2019").alias("source"),
                                          *[utc_expr(pl.col(c)) for c in
                                            ("start_time", "peak_time", "end_time")]))


def _read_files(files: list[Path], ctx: ParseContext) -> pl.DataFrame:
    """Each class file parsed in a context of its own name; repeats counted on the set."""
    df = pl.concat([_read_one(ctx.at(f)) for f in files])
    return conform_flares(ctx.dedupe_flares(df))


def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
    """A class file or a directory of them (see `read_liu2019_flares`); counts of the set
    name the directory."""
    files = _paths(path)
    if not files:
        raise ParseError(f"no Liu 2019 class files in {path}")
    return _read_files(files, ctx.at(files[0].parent))


def _signature(header: Header) -> bool:
    if header.is_dir:
        return any(n.endswith(_PATTERN[1:]) for n in header.names)
    return header.has_columns({"Flares", "Start Time", "NOAA"})


FORMAT = Format(name="liu2019", kind="flares", signature=_signature, read=read)


def read_liu2019_flares(paths: str | Path | Iterable[str | Path], *,
                        strict: bool = False) -> pl.DataFrame:
    """Read the Liu et al. (2019) ``{B,C,M,X}-class.csv`` lists (a directory or files).

    The lists carry no peak time: ``peak_time`` is set to ``end_time``, an upper bound,
    so a flare never enters a history window before its real peak (labels may shift by
    the rise-to-end time, typically < 1 h). ``source`` = ``"liu2019"``.
    """
    files = _paths(paths)
    if not files:
        raise ParseError(f"no Liu 2019 class files in {paths}")
    return run_reader(_read_files, files, strict=strict, where=str(files[0].parent))
