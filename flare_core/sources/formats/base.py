"""The contract every file format declares, the header it is detected from, and the
context a reader parses in.

A format is mostly declarations, in the spirit of sunpy's Fido clients (each says
whether it can handle a query, `sunpy/net/base_client.py` ``_can_handle_query``):

* ``name`` and ``kind`` (``"sharp"``, ``"flares"``, ``"harp_map"``, ``"window_stats"``);
* ``signature``: a rule over the file's `Header` (its first line, the keyword names of a
  JSON reply, or the file names of a directory) that says whether the format reads it;
* ``read(path, ctx)``: the reader, parsing in a `ParseContext` that carries the file named
  in counts and errors, the drop counts (`Drops`) and the ``strict`` flag;
* what it needs beyond the file: ``noaa_keyed`` (no HARP numbers: ``read`` takes the
  ``harp_map=`` that fills them), ``infer_series`` (JSOC exports: ``read`` takes
  ``series=``, from the argument or the file name) or a fixed ``series`` (research data
  sets: always ``hmi.sharp_cea_720s``).

`Format.load` applies those declarations, so the facade (`flare_core.sources.files`)
never names a format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import polars as pl

from ...errors import ParseError
from .. import _parse as P
from ..plausibility import check_plausible

__all__ = ["Drops", "Format", "Header", "HasColumns", "Kind", "ParseContext", "ReadResult",
           "columns"]

Drops = P.Drops
#: What a format's frame holds: SHARP records (`flare_core.schema.SHARP_SCHEMA`), flare
#: events (`FLARE_SCHEMA`), HARP <-> NOAA map rows, or per-window feature rows.
Kind = Literal["sharp", "flares", "harp_map", "window_stats"]
_SPLIT = re.compile(r"[,\t;]")


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Header:
    """What detection sees of a file: read once, handed to every format's signature.

    Attributes
    ----------
    path
        The file or directory.
    is_dir
        A directory (SWAN-SF windows, Liu 2019 class files): ``names`` lists its ``*.csv``.
    names
        Sorted names of the directory's ``*.csv`` entries (empty for a file).
    is_json
        A ``.json`` file or one starting with ``{`` (a saved JSOC reply); ``line`` and
        ``columns`` are then empty.
    line
        The first text line (gzip or plain, undecodable bytes replaced; ``""`` if empty).
    columns
        ``line`` split on ``,``, tab and ``;``, each name stripped.
    """

    path: Path
    is_dir: bool = False
    names: tuple[str, ...] = ()
    is_json: bool = False
    line: str = ""
    columns: frozenset[str] = frozenset()
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def read(cls, path: str | Path) -> Header:
        """The header of ``path``; `ParseError` naming it when it is missing or unreadable."""
        path = Path(path)
        if path.is_dir():
            return cls(path, is_dir=True, names=tuple(sorted(p.name for p in path.glob("*.csv"))))
        if not path.exists():
            raise ParseError(f"{path}: no such file")
        if path.suffix.lower() == ".json" or P.first_bytes(path, 1) == b"{":
            return cls(path, is_json=True)
        lines = P.first_lines(path, 1)
        line = lines[0] if lines else ""
        return cls(path, line=line, columns=frozenset(c.strip() for c in _SPLIT.split(line)))

    def has_columns(self, names: Iterable[str]) -> bool:
        """Every name in ``names`` is a column of the first line."""
        return set(names) <= self.columns

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per header (signatures that parse more than the first line,
        e.g. a JSON reply's keyword names, share it)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def describe(self) -> str:
        """A few words for error messages: the header line, or what the directory holds."""
        if self.is_dir:
            return f"a directory holding {len(self.names)} *.csv files"
        if self.is_json:
            return "a JSON file"
        return f"header {self.line[:80]!r}"


@dataclass(frozen=True)
class HasColumns:
    """Signature: the first line holds every one of ``names`` (a delimited text header)."""

    names: frozenset[str]

    def __call__(self, header: Header) -> bool:
        return not header.is_dir and header.has_columns(self.names)

    def __repr__(self) -> str:
        return f"columns({', '.join(sorted(self.names))})"


def columns(*names: str) -> HasColumns:
    """The most common signature: ``columns("arpnum", "t_end")``."""
    return HasColumns(frozenset(names))


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParseContext:
    """Where a reader is and how it treats bad rows: the file named in counts, logs and
    errors, the `Drops` receiving the counts, and ``strict`` (raise `ParseError` on the
    first bad row instead of dropping it).

    ``line_offset`` turns a 0-based data-row index into a 1-based file line (2: one header
    line; 1: no header). The methods are the `flare_core.sources._parse` helpers bound to
    this context. `at` gives a context for another file sharing the same counts.
    """

    path: Path
    drops: Drops = field(default_factory=Drops)
    strict: bool = False
    line_offset: int = 2

    def at(self, path: str | Path, *, line_offset: int | None = None) -> ParseContext:
        """The same counts and ``strict`` for another file (one of a directory's)."""
        return replace(self, path=Path(path),
                       line_offset=self.line_offset if line_offset is None else line_offset)

    def read_table(self, *, separator: str = ",", has_header: bool = True,
                   new_columns: list[str] | None = None, skip_rows: int = 0,
                   count_bad_bytes: bool = True) -> pl.DataFrame:
        """`_parse.read_text_table` of ``path``, every column a string. A line with non-UTF-8
        bytes is dropped and counted (``strict``: raises); ``count_bad_bytes=False`` always
        raises on one (the readers that have done so since they were written)."""
        if not count_bad_bytes:
            return P.read_text_table(self.path, separator=separator, has_header=has_header,
                                     new_columns=new_columns, skip_rows=skip_rows)
        return P.read_text_table(self.path, separator=separator, has_header=has_header,
                                 new_columns=new_columns, skip_rows=skip_rows,
                                 drops=self.drops, strict=self.strict)

    def require(self, df: pl.DataFrame, cols: list[str]) -> None:
        """`ParseError` naming the file and the missing columns."""
        P.require_columns(df, cols, self.path)

    def drop_bad(self, df: pl.DataFrame, bad: pl.Expr, *, reason: str,
                 raw_col: str | None = None, strict: bool | None = None) -> pl.DataFrame:
        """Drop (and count) rows where ``bad`` holds, or raise `ParseError` naming file, line
        and the ``raw_col`` value when strict (``strict`` overrides the context's)."""
        return P.drop_bad(df, bad, reason=reason, raw_col=raw_col, path=self.path,
                          drops=self.drops, strict=self.strict if strict is None else strict,
                          line_offset=self.line_offset)

    def note(self, reason: str, n: int, *, nulled: bool = False) -> None:
        """Count a repair that keeps the row (`Drops.note`)."""
        self.drops.note(reason, n, nulled=nulled)

    def parse_classes(self, df: pl.DataFrame, raw_col: str) -> pl.DataFrame:
        """``goes_class`` and ``peak_flux_wm2`` from ``raw_col`` (`_parse.parse_classes`)."""
        return P.parse_classes(df, raw_col, path=self.path, drops=self.drops,
                               strict=self.strict, line_offset=self.line_offset)

    def parse_noaa_ar(self, df: pl.DataFrame, raw_col: str) -> pl.DataFrame:
        """Int64 ``noaa_ar`` from ``raw_col``; 0/blank -> null (`_parse.parse_noaa_ar`)."""
        return P.parse_noaa_ar(df, raw_col, path=self.path, drops=self.drops,
                               strict=self.strict, line_offset=self.line_offset)

    def check_plausible(self, df: pl.DataFrame) -> pl.DataFrame:
        """Drop non-finite/implausible keywords and impossible ``t_rec`` (`plausibility`)."""
        return check_plausible(df, path=self.path, drops=self.drops, strict=self.strict,
                               line_offset=self.line_offset)

    def clean_sharp(self, df: pl.DataFrame, *,
                    key: tuple[str, ...] = ("harpnum", "t_rec")) -> pl.DataFrame:
        """Plausibility, NaN -> null, duplicates on ``key`` and sorting (`_parse.clean_sharp`)."""
        return P.clean_sharp(df, path=self.path, drops=self.drops, key=key,
                             strict=self.strict, line_offset=self.line_offset)

    def dedupe_flares(self, df: pl.DataFrame) -> pl.DataFrame:
        """Future peaks and repeated flare identities dropped (`_parse.dedupe_flares`)."""
        return P.dedupe_flares(df, path=self.path, drops=self.drops)


def run_reader(read: Callable[..., pl.DataFrame], target: Any, *, strict: bool,
               where: str | Path | None = None, **options: Any) -> pl.DataFrame:
    """``read(target, ctx, **options)`` in a fresh context named ``where`` (default
    ``target``), then log its counts: the body of every public ``read_*`` function."""
    ctx = ParseContext(Path(where if where is not None else target), strict=strict)
    df = read(target, ctx, **options)
    ctx.drops.log(where if where is not None else str(target))
    return df


# --------------------------------------------------------------------------- formats


@dataclass
class ReadResult:
    """What `load_file` read: the format, the frame kind, the frame, the drop counts and,
    for SHARP records and region listings, the JSOC series."""

    path: Path
    fmt: str
    kind: str  # "sharp" | "flares" | "harp_map" | "window_stats"
    frame: pl.DataFrame
    drops: Drops = field(default_factory=Drops)
    series: str | None = None  # JSOC series of SHARP frames / region listings


@dataclass(frozen=True)
class Format:
    """One file format: its declarations and its reader (see the module docstring).

    Attributes
    ----------
    name
        The format's name (``load_file(path, fmt=name)``, CLI ``--format``).
    kind
        The frame `read` returns (`Kind`).
    signature
        ``signature(header) -> bool``: whether this format reads a file with that `Header`.
        Signatures of different formats never both hold for one file (detection refuses
        an ambiguous file rather than guess).
    read
        ``read(path, ctx, **options) -> polars.DataFrame``; ``options`` are exactly those
        the declarations below name.
    noaa_keyed
        The files carry NOAA region numbers, not HARP numbers: ``read`` takes
        ``harp_map=`` (`flare_core.sources.harp_noaa.read_harp_noaa_map` output or None).
    infer_series
        For JSOC exports: ``infer_series(path, series) -> str`` resolves the ``series=``
        argument (default from the file name); ``read`` takes ``series=``.
    series
        The series of every record when fixed (research data sets), else None.
    """

    name: str
    kind: Kind
    signature: Callable[[Header], bool]
    read: Callable[..., pl.DataFrame]
    noaa_keyed: bool = False
    infer_series: Callable[[Path, str | None], str] | None = None
    series: str | None = None

    def load(self, path: str | Path, *, strict: bool = False,
             harp_map: pl.DataFrame | None = None, series: str | None = None) -> ReadResult:
        """Read ``path`` with this format (arguments as `flare_core.sources.load_file`)."""
        path = Path(path)
        options: dict[str, Any] = {}
        if self.infer_series is not None:
            out_series: str | None = self.infer_series(path, series)
            options["series"] = out_series
        else:
            out_series = self.series
            if series is not None and series != out_series:
                raise ParseError(f"{path}: series= applies to JSOC exports; {self.name} files "
                                 f"are {out_series or 'not SHARP records'}, not {series!r}")
        if self.noaa_keyed:
            options["harp_map"] = harp_map
        ctx = ParseContext(path, strict=strict)
        frame = self.read(path, ctx, **options)
        ctx.drops.log(path)
        return ReadResult(path=path, fmt=self.name, kind=self.kind, frame=frame,
                          drops=ctx.drops, series=out_series)
