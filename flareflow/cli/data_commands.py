"""``flareflow ingest ...``, ``flareflow store ...`` and ``flareflow featurize``: fill and
inspect the local store, and stream its running statistics to Parquet.

Every command takes ``--store PATH`` (default: ``FLAREFLOW_STORE`` or the per-user default
of `flare_core.config.Settings`). Bad input ends the command with exit code 2 and one
``error:`` line naming the file or record (`flareflow.cli.errors`); drops and nulled values
are printed per file (`flare_core.sources._parse.Drops.summary`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from .app import app, ingest_app, store_app  # noqa: F401
from .errors import EXIT_USAGE, fail, handled

if TYPE_CHECKING:  # heavy imports stay inside the commands at run time
    from collections.abc import Callable

    import polars as pl

    from flare_core.config import Settings

__all__ = ["ingest_file", "ingest_sharp", "ingest_flares", "store_info", "featurize"]

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Store root (default: $FLAREFLOW_STORE or the user data dir)."),
]


def _store(path: Path | None):
    from flare_core.config import Settings
    from flare_core.store import Store

    return Store(path if path is not None else Settings().store)


def _print_report(rep) -> None:
    typer.echo(
        f"  {rep.table}: {rep.rows_in} rows in, +{rep.rows_added} new, {rep.rows_updated} updated,"
        f" {getattr(rep, 'rows_revised', 0)} revised (old values kept),"
        f" {rep.duplicates_in} duplicate, {rep.partitions_written} partition(s) written,"
        f" {rep.partitions_unchanged} unchanged (generation {rep.generation})"
    )


def check_not_empty(path: Path) -> None:
    """Exit 2 with one line naming ``path`` if it is an empty file or a text table with a
    header and no record (plain, ``.gz`` or ``.bz2``); folders and binary files pass."""
    import bz2
    import gzip

    if not path.is_file():
        return
    if path.stat().st_size == 0:
        fail(f"{path}: empty file (0 bytes): no records to read", EXIT_USAGE)
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    try:
        with opener(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return  # not what its name says: the reader names the problem
    if b"\0" in head[:4096] or head[:4] == b"PAR1":
        return  # binary (Parquet): the reader counts its rows
    lines = [ln for ln in head.splitlines() if ln.strip() and not ln.lstrip().startswith(b"#")]
    if not lines:
        fail(f"{path}: empty file (no lines): no records to read", EXIT_USAGE)
    if len(lines) == 1 and len(head) < (1 << 16):
        fail(f"{path}: header only ({lines[0][:60].decode(errors='replace')!r}): no records "
             "to read", EXIT_USAGE)


@ingest_app.command("file")
@handled
def ingest_file(
    paths: Annotated[list[Path], typer.Argument(help="Files (or SWAN-SF / Liu2019 folders).")],
    fmt: Annotated[str | None, typer.Option("--format", help="Force a format (see below).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on the first malformed row.")] = False,
    series: Annotated[str | None, typer.Option(
        "--series", help="JSOC series of JSOC keyword exports (hmi.sharp_720s_nrt, "
                         "hmi.sharp_cea_720s, ...); default from the file name.")] = None,
    harp_map_file: Annotated[Path | None, typer.Option(
        "--harp-map", exists=True, dir_okay=False,
        help="HARP<->NOAA map for NOAA-keyed SHARP formats (Hollanda, FlareML); default a "
             "map given among PATH..., else the one in the store.")] = None,
    store: StoreOpt = None,
) -> None:
    """Read bundled/archived files (format auto-detected) into the store.

    HARP maps are stored first, then all SHARP frames in one write, then all flare lists
    in one write (flares get ``harpnum`` from the stored HARP map).
    """
    import polars as pl

    from flare_core.errors import FlareflowError
    from flare_core.sources import detect_format, load_file, read_harp_noaa_map

    for p in paths:
        check_not_empty(p)
    st = _store(store)
    results = {"harp_map": [], "sharp": [], "flares": []}
    try:
        # HARP maps first: NOAA-keyed SHARP formats (Hollanda, FlareML) take harpnum from them
        loaded = {p: load_file(p, fmt, strict=strict) for p in paths
                  if (fmt or detect_format(p)) == "harp_map"}
        for res in loaded.values():
            results["harp_map"].append(res.frame)
        if harp_map_file is not None:
            harp_map = read_harp_noaa_map(harp_map_file)
        elif results["harp_map"]:
            harp_map = pl.concat(results["harp_map"])
        else:
            harp_map = st.read_harp_map(series)
        for p in paths:
            if p not in loaded:
                loaded[p] = load_file(p, fmt, strict=strict, harp_map=harp_map, series=series)
    except FlareflowError as e:
        fail(str(e), EXIT_USAGE)
    for p, res in loaded.items():
        where = f" [{res.series}]" if getattr(res, "series", None) else ""
        typer.echo(f"{p}: {res.fmt}{where} -> {res.frame.height} {res.kind} rows "
                   f"(dropped or nulled: {res.drops.summary()})")
        if res.frame.height == 0:
            fail(f"{p}: no records read ({res.fmt}; dropped or nulled: "
                 f"{res.drops.summary()})", EXIT_USAGE)
        if res.kind not in results:
            fail(f"{p}: {res.fmt} files hold {res.kind} (ready-made window features "
                 "and labels), which the store does not keep; read them with "
                 "flare_core.sources.read_file", EXIT_USAGE)
        if res.kind != "harp_map":
            results[res.kind].append(res.frame)
    try:
        if results["harp_map"]:
            _print_report(st.write_harp_map(pl.concat(results["harp_map"])))
        if results["sharp"]:
            _print_report(st.write_sharp(pl.concat(results["sharp"])))
        if results["flares"]:
            _print_report(st.write_flares(pl.concat(results["flares"])))
    except FlareflowError as e:
        fail(str(e), EXIT_USAGE)
    typer.echo(f"store: {st.root}")


def _parse_time(value: str, name: str) -> datetime:
    from flare_core.errors import ParseError
    from flare_core.timeutil import to_utc

    try:
        return to_utc(value)
    except ParseError as e:
        fail(f"--{name}: {e}", EXIT_USAGE)


def _fetch_into_store(
    start: str,
    end: str,
    store: Path | None,
    table: Literal["sharp", "flares"],
    fetch: Callable[[datetime, datetime, Settings], pl.DataFrame],
) -> None:
    """Fetch the UTC window ``[start, end]`` with ``fetch`` and write it to ``table``.

    ``fetch`` gets the parsed times and the deployment settings and echoes its own count;
    library errors (bad config, unreachable archive) end the command with exit code 2.
    """
    from flare_core.config import Settings
    from flare_core.errors import FlareflowError

    t0, t1 = _parse_time(start, "start"), _parse_time(end, "end")
    settings = Settings()
    st = _store(store)
    write = st.write_sharp if table == "sharp" else st.write_flares
    try:
        _print_report(write(fetch(t0, t1, settings)))
    except FlareflowError as e:
        fail(str(e), EXIT_USAGE)


@ingest_app.command("sharp")
@handled
def ingest_sharp(
    start: Annotated[str, typer.Option(help="UTC start, ISO 8601 (inclusive).")],
    end: Annotated[str, typer.Option(help="UTC end, ISO 8601 (inclusive).")],
    harp: Annotated[list[int] | None, typer.Option(help="HARP number (repeatable).")] = None,
    nrt: Annotated[bool, typer.Option(help="Use the near-real-time series.")] = False,
    retries: Annotated[int, typer.Option(help="Transient-error retries per query.")] = 3,
    store: StoreOpt = None,
) -> None:
    """Fetch SHARP keywords from JSOC (``hmi.sharp_cea_720s[_nrt]``) into the store."""
    from flare_core.sources.jsoc import JsocConfig, fetch_sharp

    def fetch(t0: datetime, t1: datetime, settings: Settings) -> pl.DataFrame:
        cfg = JsocConfig(nrt=nrt, url=settings.jsoc_url, email=settings.jsoc_email,
                         retries=retries)
        df = fetch_sharp(t0, t1, harpnums=harp, config=cfg)
        typer.echo(f"JSOC {cfg.series}: {df.height} records")
        return df

    _fetch_into_store(start, end, store, "sharp", fetch)


@ingest_app.command("flares")
@handled
def ingest_flares(
    start: Annotated[str, typer.Option(help="UTC start, ISO 8601 (inclusive).")],
    end: Annotated[str, typer.Option(help="UTC end, ISO 8601 (inclusive).")],
    store: StoreOpt = None,
) -> None:
    """Fetch GOES flare events from HEK into the store."""
    from flare_core.sources.hek import HekConfig, fetch_flares

    def fetch(t0: datetime, t1: datetime, settings: Settings) -> pl.DataFrame:
        df = fetch_flares(t0, t1, config=HekConfig(url=settings.hek_url))
        typer.echo(f"HEK: {df.height} GOES flares")
        return df

    _fetch_into_store(start, end, store, "flares", fetch)


@store_app.command("info")
@handled
def store_info(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise the store: generation, rows, partitions, time ranges, size."""
    from flare_core.errors import FlareflowError

    st = _store(store)
    try:
        info = st.info()
    except FlareflowError as e:
        fail(str(e), EXIT_USAGE)
    if as_json:
        typer.echo(json.dumps(info, indent=1, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"store {info['root']}  generation {info['generation']}  "
                  f"updated {info.get('updated_utc') or '-'}")
    table = Table("table", "rows", "files", "MB", "details")
    for name, t in info["tables"].items():
        details = {k: v for k, v in t.items() if k not in ("rows", "files", "bytes")}
        table.add_row(name, str(t["rows"]), str(t["files"]), f"{t['bytes'] / 1e6:.2f}",
                      ", ".join(f"{k}={v}" for k, v in details.items()))
    console.print(table)


@app.command("featurize")
@handled
def featurize(
    out: Annotated[Path, typer.Argument(help="Output directory for the part-*.parquet files.")],
    store: StoreOpt = None,
    series: Annotated[str | None, typer.Option(
        help="SHARP series to featurise (default: the store's only one).")] = None,
    window_h: Annotated[float, typer.Option(help="Trailing window (hours).")] = 4.0,
    long_window_h: Annotated[float, typer.Option(help="Long-trend window (hours).")] = 24.0,
    max_records: Annotated[int, typer.Option(
        help="Records per chunk (whole UTC days); peak memory grows with it.")] = 250_000,
    float32: Annotated[bool, typer.Option(
        "--float32", help="Store the features as Float32 (rounded once; half the bytes).")
    ] = False,
    compression: Annotated[Literal["none", "lz4", "snappy", "zstd"], typer.Option(
        help="Parquet codec (the features compress little).")] = "none",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace part files already in OUT.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Running statistics of every SHARP record of the store, streamed chunk by chunk to
    Parquet in bounded memory (`flare_core.feature_stream.featurize_store`).

    Read the result with ``polars.scan_parquet("OUT/part-*.parquet")``.
    """
    import time

    from flare_core.feature_stream import featurize_store
    from flare_core.features import LONG_STATS, WINDOW_STATS, RunningStats

    config = RunningStats(window_h=window_h, long_window_h=long_window_h)
    t0 = time.perf_counter()
    rep = featurize_store(_store(store), out, config, series=series, max_records=max_records,
                          float32=float32, compression=compression, overwrite=overwrite)
    per_keyword = len(WINDOW_STATS) + len(LONG_STATS)
    summary = {"out_dir": str(rep.out_dir), "rows": rep.rows, "files": len(rep.files),
               "keywords": len(rep.keywords), "features": per_keyword * len(rep.keywords),
               "records_read": rep.records_read,
               "bytes": sum(f.stat().st_size for f in rep.files),
               "seconds": round(time.perf_counter() - t0, 2)}
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    typer.echo(f"featurized {summary['rows']} records x {summary['keywords']} keywords -> "
               f"{summary['features']} features in {summary['files']} file(s), "
               f"{summary['bytes'] / 1e6:.1f} MB, under {rep.out_dir} in "
               f"{summary['seconds']:.1f} s ({rep.records_read} records computed, lookback "
               "included)")
