"""Running statistics of an archive of any size, streamed chunk by chunk to Parquet.

`flare_core.features.build_running_stats` holds the whole output in memory (360 Float64
features are ~2.9 GB per million records). The functions here cut the input into chunks,
compute each chunk's statistics and write them to one Parquet file per chunk, so peak
memory is set by the chunk size, not by the archive:

* `write_running_stats` takes any iterable of frames, each holding WHOLE regions (every
  record of a HARP in one frame; `region_chunks` cuts an in-memory frame that way), so each
  record's windows are inside its own chunk.
* `featurize_store` reads a `flare_core.store.Store` once, in day order and only the
  columns it needs (`Store.iter_sharp`, on a read-ahead thread), and cuts it into TIME
  chunks of at most ``max_records`` records (whole UTC days). Each chunk is computed together
  with the ``max(window_h, long_window_h)`` hours before it (its lookback, kept in memory
  from the records already read): those records enter the windows of the chunk's first rows
  but get no output row, so every output row equals the in-memory result exactly (windows
  are ``(t - window_h, t]``, closed right, open left).

Per chunk, the keywords are computed on a thread pool (the compiled kernel releases the
GIL) while the two previous chunks' Parquet files are encoded and written on two other
threads (one encodes while the other copies into the page cache) and the next batch is read
on a fourth, so both cores stay busy.

Output layout (``out_dir``)::

    part-00000.parquet, part-00001.parquet, ...   one file per chunk, in chunk order

Each file has the columns of `build_running_stats` (``harpnum``, ``t_rec``, then
``{keyword}__{stat}``), rows sorted by ``(harpnum, t_rec)`` within the file; the files of
`featurize_store` are in time order (chunk k covers ``[day_k, day_{k+1})``, UTC). Read the
whole result with ``pl.scan_parquet(out_dir / "part-*.parquet")``. A file appears only when
complete (written under a temporary name, then renamed).

``float32=True`` stores the features as Float32: they are computed in float64 and rounded
once, a relative error of at most 2**-24 (~6e-8, about 7 significant digits); counts up to
2**24 stay exact, and a value beyond the float32 range (|x| > 3.4e38) becomes null. Keep
Float64 (the default) when the features are compared against other float64 computations.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from .config import check_positive
from .errors import ConfigError, StoreError
from .features import OutputBuffers, RunningStats, running_stats_table
from .io import atomic_write
from .schema import SHARP_KEYWORDS

__all__ = ["StreamReport", "region_chunks", "write_running_stats", "featurize_store"]

logger = logging.getLogger(__name__)

_PART = "part-{:05d}.parquet"
Compression = Literal["none", "lz4", "snappy", "zstd"]


@dataclass(frozen=True)
class StreamReport:
    """What a streamed featurising pass wrote.

    Attributes
    ----------
    out_dir : Path
        The output directory.
    files : tuple of Path
        The Parquet files, in chunk order.
    rows : int
        Output rows (one per distinct ``(harpnum, t_rec)``).
    records_read : int
        Input records computed, lookback records included (a chunk's lookback records
        count again with it; the store itself is read once).
    keywords : tuple of str
        The keywords summarised (15 feature columns each).
    """

    out_dir: Path
    files: tuple[Path, ...]
    rows: int
    records_read: int
    keywords: tuple[str, ...]


def region_chunks(sharp: pl.DataFrame, *, max_records: int = 250_000,
                  ) -> Iterator[pl.DataFrame]:
    """Cut a SHARP frame into frames of whole regions, about ``max_records`` rows each.

    A region larger than ``max_records`` is one chunk of its own. Rows keep their order
    within a region; regions come in ascending ``harpnum``.
    """
    check_positive("max_records", max_records)
    if sharp.height == 0:
        return
    sizes = sharp.group_by("harpnum").len().sort("harpnum")
    harps = sizes["harpnum"].to_numpy()
    edges = np.cumsum(sizes["len"].to_numpy().astype(np.int64))
    cut = np.unique(np.searchsorted(edges, np.arange(max_records, edges[-1], max_records),
                                    side="left"))
    bounds = [0, *(cut + 1).tolist(), len(harps)]
    ordered = sharp.sort("harpnum", maintain_order=True)
    row_bounds = np.concatenate([[0], edges])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a:
            yield ordered.slice(int(row_bounds[a]), int(row_bounds[b] - row_bounds[a]))


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    old = sorted(out_dir.glob("part-*.parquet"))
    if old and not overwrite:
        raise ConfigError(f"{out_dir} already holds {len(old)} part file(s); pass "
                          "overwrite=True (flareflow featurize --overwrite) to replace them")
    for f in old:
        f.unlink()


def _write_part(table, path: Path, compression: str) -> None:
    import pyarrow.parquet as pq

    # statistics on the keys only: row-group pruning by harpnum / t_rec, cheap to write.
    # Atomic, not flushed to disk: parts are rebuilt from the store, and an fsync of GBs of
    # features would wait for the disk
    atomic_write(path, lambda tmp: pq.write_table(
        table, tmp, compression=compression, use_dictionary=False,
        write_statistics=["harpnum", "t_rec"]), fsync=False)


class _PartWriter:
    """Writes part files on background threads, overlapping the next chunk's computation.

    Encoding a part file (Parquet, GIL released) and copying it into the page cache (the
    ``write`` system calls) are both CPU work of one thread per file; with ``threads``
    files in flight, one file is encoded while another waits on its writes and both cores
    stay busy. At most ``threads`` tables wait, which bounds memory: the caller's
    `OutputBuffers` needs ``threads + 1`` generations (`generations`)."""

    def __init__(self, out_dir: Path, compression: str, threads: int = 2) -> None:
        self.out_dir = out_dir
        self.compression = compression
        self.files: list[Path] = []
        self.rows = 0
        self.generations = threads + 1
        self._threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="parquet")
        self._pending: deque[Future] = deque()

    def put(self, table) -> None:
        # with `threads` files in flight, wait for the oldest (for an empty table too): the
        # next chunk's arrays must be free again (`generations`)
        self._wait(self._threads - 1)
        if table.num_rows == 0:
            return
        path = self.out_dir / _PART.format(len(self.files))
        self.files.append(path)
        self.rows += table.num_rows
        self._pending.append(self._pool.submit(_write_part, table, path, self.compression))

    def _wait(self, keep: int) -> None:
        while len(self._pending) > keep:
            self._pending.popleft().result()  # re-raises a write error here

    def close(self) -> None:
        try:
            self._wait(0)
        finally:
            self._pool.shutdown(wait=True)


def write_running_stats(
    chunks: Iterable[pl.DataFrame],
    out_dir: str | Path,
    config: RunningStats = RunningStats(),
    *,
    float32: bool = False,
    compression: Compression = "none",
    overwrite: bool = False,
    engine: Literal["auto", "numba", "numpy"] = "auto",
) -> StreamReport:
    """Running statistics of a stream of whole-region frames, one Parquet file per frame.

    Parameters
    ----------
    chunks : iterable of pl.DataFrame
        SHARP keyword frames (as `build_running_stats` takes); every record of a region
        must be in ONE frame (`region_chunks` cuts a frame so). A ``harpnum`` met again in
        a later frame raises `ConfigError`: its windows would miss the earlier records.
    out_dir : str or Path
        Output directory (created); see the module docstring for the layout.
    config : RunningStats
        Windows and keywords. ``keywords=None`` takes the SHARP keywords present in the
        FIRST frame, and keeps them for every frame (a keyword entirely null in a frame
        gives null columns there), so all files have the same columns.
    float32 : bool
        Store features as Float32 (module docstring: what precision is lost).
    compression : {"none", "lz4", "snappy", "zstd"}
        Parquet codec. The features are noisy floats that compress little (lz4: about 20 %
        smaller files for about 35 % more encoding time, measured on the benchmark's
        synthetic archive), so the default writes them uncompressed.
    overwrite : bool
        Delete part files already in ``out_dir`` first; otherwise they raise `ConfigError`.
    engine : {"auto", "numba", "numpy"}
        As `build_running_stats`.

    Returns
    -------
    StreamReport
    """
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)
    writer = _PartWriter(out, compression)
    # chunk k is computed while the writer still holds the tables of the chunks before it
    buffers = OutputBuffers(generations=writer.generations)
    seen: set[int] = set()
    keywords: list[str] | None = list(config.keywords) if config.keywords else None
    n_read = 0
    try:
        for frame in chunks:
            if keywords is None:
                keywords = [k for k in SHARP_KEYWORDS if k in frame.columns]
            harps = set(frame["harpnum"].drop_nulls().unique().to_list())
            again = harps & seen
            if again:
                raise ConfigError(f"harpnum(s) {sorted(again)[:5]} appear in more than one "
                                  "chunk; each chunk must hold whole regions")
            seen |= harps
            n_read += frame.height
            writer.put(running_stats_table(frame, config, engine=engine, float32=float32,
                                           keywords=keywords, buffers=buffers))
    finally:
        writer.close()
    logger.info("running stats streamed: %d records -> %d rows in %d file(s) under %s",
                n_read, writer.rows, len(writer.files), out)
    return StreamReport(out, tuple(writer.files), writer.rows, n_read, tuple(keywords or ()))


_DAY_US = 86_400_000_000


def _prefetch(items: Iterator, depth: int = 1) -> Iterator:
    """``items`` produced on a background thread, up to ``depth`` ahead of the consumer (the
    store's Parquet reads release the GIL and overlap the kernel)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
    done = object()
    try:
        queue = [pool.submit(next, items, done) for _ in range(depth)]
        while True:
            item = queue.pop(0).result()
            if item is done:
                return
            queue.append(pool.submit(next, items, done))
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _present_keywords(store, series: str | None) -> list[str]:
    """The SHARP keywords with a value somewhere in the store (stops reading at the first
    batch where every keyword has one)."""
    missing = list(SHARP_KEYWORDS)
    for batch in store.iter_sharp(missing, series=series):
        counts = batch.select(pl.col(missing).count()).row(0)
        missing = [k for k, c in zip(missing, counts, strict=True) if c == 0]
        if not missing:
            break
    return [k for k in SHARP_KEYWORDS if k not in missing]


def _time_chunks(batches: Iterable[pl.DataFrame], max_records: int, lookback_us: int,
                 ) -> Iterator[tuple[datetime, pl.DataFrame]]:
    """Cut day-ordered batches into time chunks of whole UTC days, each with its lookback.

    Chunk k takes the records of days ``[day_k, day_{k+1})``: days are added while the chunk
    holds at most ``max_records`` (a denser day is a chunk of its own). It is yielded as
    ``(day_k, frame)``, the frame holding the chunk's records and the stored records of the
    ``lookback_us`` before ``day_k`` (kept from earlier batches: nothing is read twice).
    """
    held: list[pl.DataFrame] = []  # unsorted records with t_rec >= start - lookback
    start: int | None = None  # first day (days since 1970-01-01 UTC) of the open chunk
    acc = 0

    def cut(end_day: int | None) -> tuple[datetime, pl.DataFrame]:
        nonlocal held
        frame = pl.concat(held, rechunk=False) if len(held) > 1 else held[0]
        t_us = pl.col("t_rec").dt.epoch("us")
        lo = start * _DAY_US - lookback_us
        chunk = frame.filter(t_us >= lo) if end_day is None else frame.filter(
            (t_us >= lo) & (t_us < end_day * _DAY_US))
        if end_day is not None:
            held = [frame.filter(t_us >= end_day * _DAY_US - lookback_us)]
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=start), chunk

    for batch in batches:
        if batch.height == 0:
            continue
        day = batch["t_rec"].dt.epoch("us").to_numpy() // _DAY_US
        days, counts = np.unique(day, return_counts=True)
        if start is not None and days[0] < start:
            raise StoreError("store batches are not in day order")
        held.append(batch)
        for d, c in zip(days.tolist(), counts.tolist(), strict=True):
            if start is None:
                start = d
            elif acc and acc + c > max_records:
                yield cut(d)
                start, acc = d, 0
            acc += c
    if start is not None:
        yield cut(None)


def featurize_store(
    store,
    out_dir: str | Path,
    config: RunningStats = RunningStats(),
    *,
    series: str | None = None,
    max_records: int = 250_000,
    float32: bool = False,
    compression: Compression = "none",
    overwrite: bool = False,
    engine: Literal["auto", "numba", "numpy"] = "auto",
) -> StreamReport:
    """Running statistics of every SHARP record of a store, streamed to Parquet.

    Parameters
    ----------
    store : flare_core.store.Store
        The store; read once with `Store.iter_sharp` (one series, current values).
    out_dir : str or Path
        Output directory; layout in the module docstring.
    config : RunningStats
        Windows and keywords. ``keywords=None`` takes the SHARP keywords that are not
        entirely null in the store (found by reading until each has a value).
    series : str or None
        The series to featurise; default the store's only one (as `Store.read_sharp`).
    max_records : int
        Records per chunk (whole UTC days; a denser day is a chunk of its own). Peak memory
        grows with it: about ``max_records * 360 * 8`` bytes of features (half with
        ``float32``) for the chunk computed and as much for each of the two being written,
        plus the chunk's input.
    float32, compression, overwrite, engine
        As `write_running_stats`.

    Returns
    -------
    StreamReport
        ``records_read`` counts each lookback record once more (it enters two chunks).

    Raises
    ------
    ConfigError
        With ``keywords=None``, a store (or series) with no SHARP keyword value, so nothing
        to featurise; part files already in ``out_dir`` without ``overwrite``.

    Notes
    -----
    Chunk k holds the records with ``t_rec`` in ``[day_k, day_{k+1})`` and is computed with
    those from ``day_k - max(window_h, long_window_h)`` hours on: the lookback enters the
    windows of its first rows, so each output row equals `build_running_stats` on the whole
    store.
    """
    check_positive("max_records", max_records)
    out = Path(out_dir)
    keywords = list(config.keywords) if config.keywords else _present_keywords(store, series)
    if not keywords:
        where = f" of series {series!r}" if series else ""
        raise ConfigError(f"store {store.root}: no SHARP record{where} has a keyword value: "
                          "nothing to featurise")
    lookback = timedelta(hours=max(config.window_h, config.long_window_h))
    lookback_us = round(lookback.total_seconds() * 1e6)
    _prepare_out_dir(out, overwrite)
    writer = _PartWriter(out, compression)
    # chunk k is computed while the writer still holds the tables of the chunks before it
    buffers = OutputBuffers(generations=writer.generations)
    n_read = n_chunks = 0
    batches = _prefetch(store.iter_sharp(keywords, series=series))
    try:
        for t0, frame in _time_chunks(batches, max_records, lookback_us):
            n_read += frame.height
            n_chunks += 1
            writer.put(running_stats_table(frame, config, engine=engine, float32=float32,
                                           emit_from=t0, keywords=keywords, buffers=buffers))
            del frame
    finally:
        batches.close()
        writer.close()
    logger.info("store %s featurised: %d rows in %d file(s) under %s (%d chunks of <= %d "
                "records, lookback %.3g h)", store.root, writer.rows, len(writer.files), out,
                n_chunks, max_records, lookback.total_seconds() / 3600)
    return StreamReport(out, tuple(writer.files), writer.rows, n_read, tuple(keywords))
