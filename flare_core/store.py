"""The local store: Parquet tables under one root, with an atomic manifest.

This module is the only code that knows the on-disk layout::

    <root>/MANIFEST.json                     the committed state (generation + file lists)
    <root>/sharp/day=YYYY-MM-DD/*.parquet    SHARP keyword frame, one partition per UTC day
    <root>/sharp_revisions/*.parquet         superseded SHARP values (one file)
    <root>/flares/*.parquet                  flare-event frame (one file)
    <root>/harp_map/*.parquet                HARP <-> NOAA maps, one per series (one file)
    <root>/.lock                             write lock (filelock)

Guarantees
----------
* **Series.** A SHARP record is identified by (series, harpnum, t_rec): HARP numbers are
  per series (the NRT series number regions independently of the definitive ones), so an
  NRT and a definitive row with the same HARP number are different regions and never
  replace one another. `Store.read_sharp` returns one series at a time.
* **Atomic commits.** A write first writes every new Parquet file under a fresh, unique
  name (never overwriting a file the manifest lists), then commits by replacing
  ``MANIFEST.json`` (`flare_core.io.atomic_write`: a temp file fsync'ed, then
  ``os.replace``). Readers only open the files the manifest lists. A crash or error at any
  point before the replace leaves the previous store intact and readable; the orphaned
  files are deleted by the next write.
* **Readers never fail while a writer commits.** Files a commit supersedes are kept on disk
  for ``gc_grace_s`` seconds (listed under ``retired`` in the manifest) before a later write
  deletes them, so a reader still holding the previous manifest can finish; a read that
  nevertheless finds a listed file gone reads the fresh manifest and retries once. A
  manifest that lists a missing file raises `StoreError` naming it.
* **Idempotent ingestion, revisions kept.** Writing the same data twice changes nothing
  (no partition is rewritten, the generation does not move). A record delivered again with
  different values is a *revision*: the main table keeps the newest values (largest
  ``available_at``, unknown = oldest; at equal times the later write, within a frame the
  later row), and the superseded value is kept, with its own ``available_at``, in
  ``sharp_revisions`` (`WriteReport.rows_revised`), so `Store.read_sharp` with ``as_of``
  returns the value that was current at that time.
* **As served.** ``available_at`` is when JSOC first served a value (null = unknown, kept
  as null). A record counts as served at ``served_at`` (`flare_core.schema.served_at_expr`:
  the cumulative max over t_rec of available_at within (series, harpnum), an unknown value
  taken as ``t_rec + default_latency``).
* **Incremental.** Appending new hours rewrites only the day partitions that receive rows.
* One writer at a time (a lock file); readers never block.
* **NOAA numbers from the map of the record's series.** `Store.read_sharp` fills a record's
  null (or empty) ``noaa_ars`` with the NOAA regions the stored HARP <-> NOAA map *of the
  record's HARP numbering* lists for its HARP (ascending, comma separated). This is done
  when reading, not writing, so the SHARP files keep what the source delivered and the
  answer follows the current map whichever was ingested first. Records that carry their own
  ``NOAA_ARS`` (JSOC) keep them. The map lists every region a HARP ever overlapped, so a
  filled value can name a region numbered after ``t_rec``: ``noaa_ars`` is a display
  label, never a feature (`flare_core.models._inputs.NON_FEATURE_COLUMNS`). Likewise
  `Store.read_flares` attaches ``harpnum`` to flares from the map of the series read.
* **Older stores.** Stores written before the series existed (manifest format 1) are read
  as they are: a row without ``series`` belongs to `SERIES_NRT_CEA` when its ``source``
  ends in ``_nrt`` and to `SERIES_DEFINITIVE_CEA` otherwise, a map without ``series`` to
  `SERIES_DEFINITIVE_CEA`. The next write commits format 2.

Reading is polars (`Store.read_sharp`, `Store.read_flares`) or DuckDB (`Store.duckdb`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import polars as pl

from .config import check_positive
from .errors import StoreError
from .io import atomic_write, temp_files_of
from .schema import (
    DEFAULT_NRT_LATENCY,
    FLARE_SCHEMA,
    SERIES_DEFINITIVE_CEA,
    SERIES_NRT_CEA,
    SHARP_SCHEMA,
    conform_flares,
    conform_sharp,
    harp_numbering,
    is_nrt_series,
    with_served_at,
)
from .timeutil import to_utc

__all__ = ["Store", "WriteReport", "SHARP_KEY", "FLARE_KEY", "DEFAULT_GC_GRACE_S"]

logger = logging.getLogger(__name__)

SHARP_KEY = ("series", "harpnum", "t_rec")
FLARE_KEY = ("peak_time", "goes_class", "noaa_ar")
_MANIFEST = "MANIFEST.json"
_FORMAT = 2
_READABLE_FORMATS = (1, 2)
_TABLES = ("sharp", "sharp_revisions", "flares", "harp_map")
_MAP_SCHEMA = {"harpnum": pl.Int64, "noaa_ar": pl.Int64, "series": pl.Utf8}
#: Seconds a file superseded by a commit stays on disk for readers of the older manifest.
DEFAULT_GC_GRACE_S = 300.0

_T = TypeVar("_T")


class _VanishedFile(StoreError):
    """A file the manifest lists is not on disk (the read may retry with a fresh manifest)."""


@dataclass
class WriteReport:
    """What one write did.

    ``rows_in``: rows offered; ``rows_added``: keys new to the store; ``rows_updated``:
    existing keys whose current values changed; ``rows_revised``: superseded values newly
    kept in ``sharp_revisions`` (normally one per updated key; also an older version
    delivered late); ``duplicates_in``: rows dropped because the input repeated a key;
    ``partitions_written`` / ``partitions_unchanged``: day partitions rewritten or left
    alone; ``generation``: the manifest generation after the write.
    """

    table: str
    rows_in: int = 0
    rows_added: int = 0
    rows_updated: int = 0
    rows_revised: int = 0
    duplicates_in: int = 0
    partitions_written: int = 0
    partitions_unchanged: int = 0
    generation: int = 0
    notes: dict[str, int] = field(default_factory=dict)


class Store:
    """Parquet store under ``root`` (see the module docstring for layout and guarantees).

    Parameters
    ----------
    root
        Store directory; created on the first write. Usually
        ``flare_core.config.Settings().store`` (env ``FLAREFLOW_STORE``, CLI ``--store``).
    default_latency
        Delay after ``t_rec`` assumed for a record whose ``available_at`` is unknown, in
        as-served reads (``read_sharp(as_of=...)``); default
        `flare_core.schema.DEFAULT_NRT_LATENCY` (the measured median, 100 min 19 s).
    gc_grace_s
        Seconds a superseded file stays readable after the commit that dropped it.

    Examples
    --------
    >>> store = Store(tmp_path)                                         # doctest: +SKIP
    >>> store.write_sharp(read_sun2022("data/sharp/sun2022_sharp_m24h_fold0.csv.gz"))
    >>> store.read_sharp(start="2014-01-01", end="2014-02-01", harpnums=[3686])
    """

    def __init__(self, root: str | Path, *, default_latency: timedelta = DEFAULT_NRT_LATENCY,
                 gc_grace_s: float = DEFAULT_GC_GRACE_S) -> None:
        self.root = Path(root)
        self.default_latency = default_latency
        self.gc_grace_s = float(gc_grace_s)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ------------------------------------------------------------------ manifest

    def _manifest_path(self) -> Path:
        return self.root / _MANIFEST

    def manifest(self) -> dict:
        """The committed manifest (an empty one if the store has never been written)."""
        path = self._manifest_path()
        if not path.exists():
            return {"format": _FORMAT, "generation": 0, "tables": {}}
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise StoreError(f"{path}: unreadable store manifest: {e}") from e
        if m.get("format") not in _READABLE_FORMATS:
            raise StoreError(f"{path}: unsupported store format {m.get('format')!r}")
        return m

    def _commit(self, manifest: dict, previous: dict) -> None:
        """Replace the manifest; files ``previous`` listed and ``manifest`` does not are
        retired (kept ``gc_grace_s`` for readers of ``previous``)."""
        now = time.time()
        listed = _listed(manifest)
        retired = {f: t for f, t in previous.get("retired", {}).items()
                   if now - t < self.gc_grace_s and f not in listed}
        retired.update({f: now for f in _listed(previous) - listed})
        manifest = {**manifest, "format": _FORMAT, "retired": retired,
                    "generation": int(manifest["generation"]) + 1,
                    "updated_utc": datetime.now(UTC).isoformat()}
        atomic_write(self._manifest_path(), json.dumps(manifest, indent=1, sort_keys=True))
        logger.info("store %s: committed generation %d", self.root, manifest["generation"])

    def _lock(self):
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".lock"), timeout=600)

    def _files(self, table: str, manifest: dict | None = None) -> list[Path]:
        t = (manifest or self.manifest())["tables"].get(table)
        if not t:
            return []
        if "partitions" in t:
            return [self.root / f for files in t["partitions"].values() for f in files]
        return [self.root / f for f in t["files"]]

    def _gc(self, manifest: dict) -> int:
        """Delete Parquet and temp files that the committed manifest neither lists nor
        retires (crash leftovers and retired files past their grace period)."""
        n = 0
        keep = _listed(manifest) | set(manifest.get("retired", {}))
        for table in _TABLES:
            d = self.root / table
            if not d.exists():
                continue
            for dirpath, _dirnames, filenames in os.walk(d, topdown=False):
                for name in filenames:
                    rel = Path(dirpath, name).relative_to(self.root).as_posix()
                    if rel not in keep:
                        Path(dirpath, name).unlink(missing_ok=True)
                        n += 1
                if dirpath != str(d) and not os.listdir(dirpath):
                    os.rmdir(dirpath)
        # left by interrupted manifest writes (".manifest-*.tmp": before flare_core.io)
        for p in [*temp_files_of(self._manifest_path()), *self.root.glob(".manifest-*.tmp")]:
            p.unlink(missing_ok=True)
        if n:
            logger.info("store %s: removed %d unreferenced files", self.root, n)
        return n

    def _read_consistent(self, read: Callable[[dict], _T]) -> _T:
        """``read(manifest)``; if a listed file vanished meanwhile (a writer's clean-up),
        once more with the fresh manifest. A file missing from the committed manifest
        itself raises `StoreError` naming it."""
        manifest = self.manifest()
        try:
            return read(manifest)
        except _VanishedFile as first:
            fresh = self.manifest()
            if fresh.get("generation") == manifest.get("generation"):
                raise StoreError(str(first)) from first
            logger.debug("store %s: generation %s superseded during a read; retrying",
                         self.root, manifest.get("generation"))
            try:
                return read(fresh)
            except _VanishedFile as e:
                raise StoreError(str(e)) from e

    def _read_files(self, files: list[Path], columns: list[str] | None = None,
                    ) -> pl.DataFrame | None:
        """Read the listed Parquet files (threads: per-file overhead dominates small days).

        ``columns`` (SHARP columns) are read in one scan of all the files, a column missing
        from a file null there; should that scan fail, the files are read one by one, so
        that the error names the file at fault. Raises `_VanishedFile` (a `StoreError`)
        naming a listed file that is not there."""
        from concurrent.futures import ThreadPoolExecutor

        if not files:
            return None
        if columns is not None and len(files) > 1 and all(c in SHARP_SCHEMA for c in columns):
            try:
                return _scan_sharp(files, columns).collect()
            except (OSError, pl.exceptions.PolarsError) as e:
                logger.debug("store %s: one scan of %d files failed (%s); reading them one by "
                             "one", self.root, len(files), e)

        def read_one(f: Path) -> pl.DataFrame:
            try:
                df = pl.read_parquet(f, hive_partitioning=False)
            except (OSError, pl.exceptions.PolarsError) as e:
                if not f.exists():
                    raise _VanishedFile(f"{self.root}: manifest lists missing file {f}") from e
                raise self._unreadable(f, e) from e
            return df.select([c for c in columns if c in df.columns]) if columns else df

        missing = [f for f in files if not f.exists()]
        if missing:
            raise _VanishedFile(f"{self.root}: manifest lists missing file(s) "
                                f"{[str(f) for f in missing[:3]]}")
        if len(files) == 1:
            return read_one(files[0])
        with ThreadPoolExecutor(max_workers=8) as ex:
            frames = list(ex.map(read_one, files))
        return pl.concat(frames, how="diagonal_relaxed")

    # ------------------------------------------------------------------ SHARP

    def write_sharp(self, df: pl.DataFrame, *, series: str | None = None) -> WriteReport:
        """Merge a SHARP keyword frame into the store (atomic, idempotent, revisions kept).

        Parameters
        ----------
        df
            Canonical SHARP frame (`flare_core.schema.SHARP_SCHEMA`; cast strictly). Rows
            with a null ``harpnum`` or ``t_rec`` raise `StoreError`.
        series
            Series of the rows whose ``series`` is null. Without it a null series is
            inferred from ``source``: ending in ``_nrt`` (the JSOC NRT client) ->
            `SERIES_NRT_CEA`, anything else -> `SERIES_DEFINITIVE_CEA` (what the bundled
            file formats hold). A row whose own ``series`` differs from ``series`` raises.

        Returns
        -------
        WriteReport
            A record already stored with other values counts in ``rows_updated`` (the
            newest value is kept, module docstring) and its superseded value in
            ``rows_revised``.
        """
        new = _prepare_sharp(df, series)
        rep = WriteReport("sharp", rows_in=df.height)
        rep.duplicates_in = new.height - new.select(pl.struct(SHARP_KEY).n_unique()).item()
        with self._lock():
            manifest = self.manifest()
            table = manifest["tables"].get("sharp", {"partitions": {}, "rows": 0})
            counts = self._series_counts(manifest)
            parts: dict[str, list[str]] = dict(table["partitions"])
            days = new.get_column("_day").unique().sort().to_list()
            touched = [d for d in days if d in parts]
            old = self._read_files([self.root / f for d in touched for f in parts[d]])
            old = None if old is None else _prepare_sharp(old, None)
            merged = _merge_sharp(old, new)
            rep.rows_added, rep.rows_updated = merged.added.height, merged.n_updated
            revisions = self._new_revisions(merged.superseded, manifest)
            rep.rows_revised = 0 if revisions is None else revisions[1]
            rep.partitions_written = len(merged.changed_days)
            rep.partitions_unchanged = len(days) - len(merged.changed_days)
            if not merged.changed_days and not rep.rows_revised:
                rep.generation = manifest["generation"]
                return rep
            previous = json.loads(json.dumps(manifest))
            to_write = merged.current.filter(pl.col("_day").is_in(sorted(merged.changed_days)))
            written = self._write_partitioned(to_write, manifest["generation"] + 1)
            for day, files in written.items():
                parts[day] = files
            for s, n in merged.added.group_by("series").len().iter_rows():
                counts[s] = counts.get(s, 0) + n
            manifest["tables"]["sharp"] = {"partitions": parts, "rows": sum(counts.values()),
                                           "series": counts}
            if revisions is not None:
                self._write_single("sharp_revisions", revisions[0], manifest)
            self._commit(manifest, previous)
            rep.generation = manifest["generation"] + 1
            self._gc(self.manifest())
        logger.info("store %s: sharp +%d rows (%d updated, %d revisions kept) in %d "
                    "partitions", self.root, rep.rows_added, rep.rows_updated,
                    rep.rows_revised, rep.partitions_written)
        return rep

    def _new_revisions(self, superseded: pl.DataFrame, manifest: dict,
                       ) -> tuple[pl.DataFrame, int] | None:
        """(the revisions table with ``superseded`` added, #rows new to it), None if none."""
        if superseded.height == 0:
            return None
        sup = conform_sharp(superseded)
        old = self._read_files(self._files("sharp_revisions", manifest))
        if old is not None:
            old = conform_sharp(old)
            sup = sup.join(old, on=list(sup.columns), how="anti", nulls_equal=True)
        sup = sup.unique(maintain_order=True)
        if sup.height == 0:
            return None
        table = sup if old is None else pl.concat([old, sup])
        return table.sort([*SHARP_KEY, "available_at"], nulls_last=False), sup.height

    def _series_counts(self, manifest: dict) -> dict[str, int]:
        """SHARP rows per series (a format-1 store is scanned once)."""
        table = manifest["tables"].get("sharp")
        if not table:
            return {}
        if "series" in table:
            return dict(table["series"])
        df = self._read_files(self._files("sharp", manifest), columns=["series", "source"])
        if df is None:
            return {}
        df = _with_default_series(df, None)
        return dict(df.group_by("series").len().sort("series").iter_rows())

    def series(self) -> list[str]:
        """The SHARP series the store holds, sorted."""
        return sorted(self._series_counts(self.manifest()))

    def _resolve_series(self, manifest: dict, series: str | None) -> str | None:
        if series is not None:
            return series
        found = sorted(self._series_counts(manifest))
        if len(found) > 1:
            raise StoreError(f"{self.root}: the store holds SHARP records of several series "
                             f"{found}; pass series= (one of them): HARP numbers are per "
                             "series")
        return found[0] if found else None

    def _write_partitioned(self, df: pl.DataFrame, generation: int) -> dict[str, list[str]]:
        """Write one Parquet file per UTC day under a fresh unique name (invisible to readers
        until the manifest lists it); returns day -> [path relative to root]."""
        from concurrent.futures import ThreadPoolExecutor

        token = f"g{generation:06d}-{uuid.uuid4().hex[:12]}"
        parts = df.sort(["_day", *SHARP_KEY]).partition_by(
            "_day", as_dict=True, include_key=False, maintain_order=True)

        def write(item: tuple[tuple[str], pl.DataFrame]) -> tuple[str, str]:
            (day,), part = item
            rel = f"sharp/day={day}/part-{token}.parquet"
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            part.write_parquet(self.root / rel)
            return day, rel

        try:
            with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as ex:
                done = list(ex.map(write, parts.items()))
        except (OSError, pl.exceptions.PolarsError) as e:
            raise StoreError(f"{self.root}: SHARP write failed, store left at its previous "
                             f"generation: {e}") from e
        return {day: [rel] for day, rel in done}

    def read_sharp(self, start: datetime | str | None = None, end: datetime | str | None = None,
                   harpnums: list[int] | None = None, *, series: str | None = None,
                   as_of: datetime | str | None = None,
                   default_latency: timedelta | None = None) -> pl.DataFrame:
        """SHARP records of one series with ``start <= t_rec <= end`` (UTC; either bound
        optional).

        Parameters
        ----------
        start, end
            Bounds of ``t_rec`` (inclusive).
        harpnums
            Only these HARPs (numbers of ``series``).
        series
            The series to read. Default: the one series the store holds; `StoreError` if
            it holds several (the message names them).
        as_of
            Return the store as it was served at this time: only records served by then
            (``served_at <= as_of``, `flare_core.schema.served_at_expr`, computed over the
            records read), each with the value current then (the newest version with
            ``available_at <= as_of``; superseded versions come from ``sharp_revisions``).
            Default: every record with its newest value.
        default_latency
            ``available_at`` assumed as ``t_rec + default_latency`` where unknown, for
            ``as_of``; default ``Store.default_latency``.

        Returns
        -------
        pl.DataFrame
            The canonical SHARP frame sorted by (harpnum, t_rec); zero rows (with the
            schema) when nothing matches or the store is empty. ``available_at`` is as
            stored (null = unknown). A null or empty ``noaa_ars`` is filled from the stored
            HARP <-> NOAA map of the series (module docstring).
        """
        t0 = to_utc(start) if start is not None else None
        t1 = to_utc(end) if end is not None else None
        t_as_of = to_utc(as_of) if as_of is not None else None
        latency = self.default_latency if default_latency is None else default_latency

        def read(manifest: dict) -> pl.DataFrame:
            chosen = self._resolve_series(manifest, series)
            parts = manifest["tables"].get("sharp", {}).get("partitions", {})
            days = [d for d in parts
                    if (t0 is None or d >= t0.strftime("%Y-%m-%d"))
                    and (t1 is None or d <= t1.strftime("%Y-%m-%d"))]
            df = self._read_files([self.root / f for d in sorted(days) for f in parts[d]])
            if df is None or chosen is None:
                return conform_sharp(pl.DataFrame(schema=SHARP_SCHEMA))
            keep = _row_filter(chosen, t0, t1, harpnums)
            out = _with_default_series(conform_sharp(df), None).filter(keep)
            if t_as_of is not None:
                revs = self._read_files(self._files("sharp_revisions", manifest))
                revs = (None if revs is None
                        else _with_default_series(conform_sharp(revs), None).filter(keep))
                out = _as_served(out, revs, t_as_of, latency)
            out = out.sort(list(SHARP_KEY))
            return self._fill_noaa_ars(out, manifest)

        return self._read_consistent(read)

    def _map_of(self, series: str, manifest: dict) -> pl.DataFrame | None:
        """The stored map of ``series``'s HARP numbering (``harpnum``, ``noaa_ar``), or None.

        A map stored for the series itself wins; else one stored for another series of the
        same numbering (the CCD and CEA variants share HARP numbers)."""
        stored = self._read_files(self._files("harp_map", manifest))
        if stored is None:
            return None
        stored = _conform_map(stored)
        names = stored["series"].unique().sort().to_list()
        same = [s for s in names if s == series] or [
            s for s in names if harp_numbering(s) == harp_numbering(series)]
        if not same:
            return None
        return stored.filter(pl.col("series") == same[0]).select("harpnum", "noaa_ar")

    def _fill_noaa_ars(self, sharp: pl.DataFrame, manifest: dict) -> pl.DataFrame:
        """``noaa_ars`` of records that lack it, from the map of their series (if stored)."""
        missing = pl.col("noaa_ars").is_null() | (pl.col("noaa_ars").str.strip_chars() == "")
        if sharp.height == 0 or not sharp.select(missing.any()).item():
            return sharp
        harp_map = self._map_of(sharp["series"][0], manifest)
        if harp_map is None:
            return sharp
        ars = (harp_map.drop_nulls().unique().sort("harpnum", "noaa_ar")
               .group_by("harpnum", maintain_order=True)
               .agg(pl.col("noaa_ar").cast(pl.Utf8).str.join(",").alias("_map_ars")))
        filled = (sharp.join(ars, on="harpnum", how="left", maintain_order="left")
                  .with_columns(pl.when(missing).then(pl.col("_map_ars"))
                                .otherwise(pl.col("noaa_ars")).alias("noaa_ars"))
                  .drop("_map_ars"))
        logger.debug("store %s: noaa_ars of %d records filled from the HARP map", self.root,
                     sharp.select(missing.sum()).item()
                     - filled.select(pl.col("noaa_ars").is_null().sum()).item())
        return filled

    def iter_sharp(self, columns: list[str], *, series: str | None = None,
                   days_per_batch: int = 32) -> Iterator[pl.DataFrame]:
        """Every current SHARP record of one series, projected, in batches of UTC days.

        A whole-store pass for `flare_core.feature_stream`: only ``harpnum``, ``t_rec`` and
        ``columns`` are decoded and every file is read once, several times faster than
        `Store.read_sharp` over the same range.

        Parameters
        ----------
        columns
            Columns of `flare_core.schema.SHARP_SCHEMA` to return besides the keys; one
            absent from a file is null there.
        series
            As `Store.read_sharp`.
        days_per_batch
            Stored UTC days per yielded frame.

        Yields
        ------
        pl.DataFrame
            ``harpnum``, ``t_rec`` and ``columns`` (canonical dtypes) of the records of
            ``days_per_batch`` consecutive stored days, ascending from batch to batch (every
            record of a day in one frame; rows unordered within a frame). One manifest is
            read at the start (a concurrent commit's files stay readable ``gc_grace_s``).
            Newest values only (no ``as_of``); ``noaa_ars`` is not filled from the map.
        """
        check_positive("days_per_batch", days_per_batch)
        unknown = [c for c in columns if c not in SHARP_SCHEMA]
        if unknown:
            raise StoreError(f"unknown SHARP column(s) {unknown}")
        manifest = self.manifest()
        chosen = self._resolve_series(manifest, series)
        parts = manifest["tables"].get("sharp", {}).get("partitions", {})
        if chosen is None or not parts:
            return
        want = list(dict.fromkeys(["harpnum", "t_rec", *columns]))
        scanned = list(dict.fromkeys([*want, "series", "source"]))
        days = sorted(parts)
        for a in range(0, len(days), days_per_batch):
            files = [self.root / f for d in days[a:a + days_per_batch] for f in parts[d]]
            missing = [str(f) for f in files if not f.exists()]
            if missing:
                raise StoreError(f"{self.root}: manifest lists missing file(s) {missing[:3]}")
            try:  # one multi-file scan; files of another layout take the general path
                frame = (_scan_sharp(files, scanned)
                         .filter(pl.coalesce(pl.col("series"), _series_by_source()) == chosen)
                         .select(want).collect())
            except pl.exceptions.PolarsError:
                frame = (_with_default_series(conform_sharp(self._read_files(files)), None)
                         .filter(pl.col("series") == chosen).select(want))
            yield frame

    # ------------------------------------------------------------------ flares / map

    def _write_single(self, table_name: str, df: pl.DataFrame, manifest: dict) -> None:
        d = self.root / table_name
        d.mkdir(parents=True, exist_ok=True)
        name = f"part-g{manifest['generation'] + 1:06d}-{uuid.uuid4().hex[:12]}.parquet"
        try:
            atomic_write(d / name, df.write_parquet)
        except OSError as e:
            raise StoreError(f"{self.root}: {table_name} write failed: {e}") from e
        entry = {"files": [f"{table_name}/{name}"], "rows": df.height}
        if "series" in df.columns:
            entry["series"] = dict(df.group_by("series").len().sort("series").iter_rows())
        manifest["tables"][table_name] = entry

    def write_flares(self, df: pl.DataFrame) -> WriteReport:
        """Merge a flare-event frame into the store (atomic, idempotent).

        Identity is (peak_time, goes_class, noaa_ar). Flares are stored as delivered;
        `read_flares` attaches ``harpnum`` from the HARP map of the series read.
        """
        new = conform_flares(df)
        if new.select(pl.col("peak_time").is_null().any() | pl.col("goes_class").is_null().any()
                      ).item():
            raise StoreError("flare frame has rows with null peak_time or goes_class")
        rep = WriteReport("flares", rows_in=df.height)
        n0 = new.height
        new = _dedupe(new, FLARE_KEY)
        rep.duplicates_in = n0 - new.height
        with self._lock():
            manifest = self.manifest()
            old = self._read_files(self._files("flares", manifest))
            if old is not None:
                merged, added, updated, changed = _merge(conform_flares(old), new, FLARE_KEY)
            else:
                merged, added, updated, changed = new, new.height, 0, True
            rep.rows_added, rep.rows_updated = added, updated
            if not changed:
                rep.partitions_unchanged, rep.generation = 1, manifest["generation"]
                return rep
            previous = json.loads(json.dumps(manifest))
            self._write_single("flares", conform_flares(merged).sort("peak_time"), manifest)
            self._commit(manifest, previous)
            rep.partitions_written, rep.generation = 1, manifest["generation"] + 1
            self._gc(self.manifest())
        return rep

    def read_flares(self, start: datetime | str | None = None,
                    end: datetime | str | None = None, *,
                    series: str | None = None) -> pl.DataFrame:
        """Flares with ``start <= peak_time <= end`` (UTC), sorted by ``peak_time``.

        ``harpnum`` is that of ``series`` (default: the one SHARP series the store holds,
        `StoreError` if several; a store without SHARP records uses its one stored map):
        flares without one get it from their ``noaa_ar`` through the stored map of that
        series (`flare_core.sources.harp_noaa.attach_harpnum`, a NOAA region on several
        HARPs resolved with the stored SHARP record spans of the series). A ``harpnum``
        delivered by the source is a definitive HARP number: kept for a definitive series,
        replaced for an NRT one. Without a map for the series, ``harpnum`` is as stored
        (null for an NRT series).
        """
        def read(manifest: dict) -> pl.DataFrame:
            df = self._read_files(self._files("flares", manifest))
            if df is None:
                return pl.DataFrame(schema=FLARE_SCHEMA)
            lf = conform_flares(df).lazy()
            if start is not None:
                lf = lf.filter(pl.col("peak_time") >= to_utc(start))
            if end is not None:
                lf = lf.filter(pl.col("peak_time") <= to_utc(end))
            return self._attach(lf.collect(), manifest, series).sort("peak_time")

        return self._read_consistent(read)

    def _flare_series(self, manifest: dict, series: str | None) -> str | None:
        if series is not None or manifest["tables"].get("sharp"):
            return self._resolve_series(manifest, series)
        maps = manifest["tables"].get("harp_map")
        names = sorted(maps.get("series", {SERIES_DEFINITIVE_CEA: 0})) if maps else []
        return names[0] if len(names) == 1 else None

    def _attach(self, flares: pl.DataFrame, manifest: dict, series: str | None,
                ) -> pl.DataFrame:
        from .sources.harp_noaa import attach_harpnum

        chosen = self._flare_series(manifest, series)
        if chosen is None or flares.height == 0:
            return flares
        if is_nrt_series(chosen):
            flares = flares.with_columns(pl.lit(None, dtype=pl.Int64).alias("harpnum"))
        harp_map = self._map_of(chosen, manifest)
        if harp_map is None or flares["harpnum"].null_count() == 0:
            return flares
        spans = self._read_files(self._files("sharp", manifest),
                                 columns=["series", "harpnum", "t_rec", "source"])
        if spans is not None:
            spans = (_with_default_series(spans, None).filter(pl.col("series") == chosen)
                     .group_by("harpnum")
                     .agg(pl.col("t_rec").min().alias("t0"), pl.col("t_rec").max().alias("t1")))
            spans = pl.concat([spans.select("harpnum", pl.col("t0").alias("t_rec")),
                               spans.select("harpnum", pl.col("t1").alias("t_rec"))])
        return attach_harpnum(flares, harp_map, records=spans)

    def write_harp_map(self, harp_map: pl.DataFrame, *, series: str | None = None,
                       ) -> WriteReport:
        """Store the HARP <-> NOAA map of a series, replacing that series' previous map
        (the maps of other series stay).

        ``series`` defaults to the frame's ``series`` column (`read_harp_noaa_map` sets it;
        a frame holding several series replaces each); a frame without either raises
        `StoreError`. `read_sharp` and `read_flares` use the map at read time.
        """
        if series is None and ("series" not in harp_map.columns
                               or harp_map["series"].null_count()):
            raise StoreError("write_harp_map: the map has no series; pass series= (HARP "
                             "numbers are per series)")
        hm = harp_map.select(pl.col("harpnum").cast(pl.Int64), pl.col("noaa_ar").cast(pl.Int64),
                             (pl.lit(series) if series is not None else pl.col("series"))
                             .cast(pl.Utf8).alias("series"))
        hm = hm.unique().sort(["series", "harpnum", "noaa_ar"])
        rep = WriteReport("harp_map", rows_in=harp_map.height)
        with self._lock():
            manifest = self.manifest()
            old = self._read_files(self._files("harp_map", manifest))
            written = hm["series"].unique().to_list()
            if old is not None:
                old = _conform_map(old)
                if old.filter(pl.col("series").is_in(written)).equals(hm):
                    rep.partitions_unchanged, rep.generation = 1, manifest["generation"]
                    return rep
                hm = pl.concat([old.filter(~pl.col("series").is_in(written)), hm]).sort(
                    ["series", "harpnum", "noaa_ar"])
            previous = json.loads(json.dumps(manifest))
            self._write_single("harp_map", hm, manifest)
            rep.rows_added = hm.filter(pl.col("series").is_in(written)).height
            self._commit(manifest, previous)
            rep.partitions_written, rep.generation = 1, manifest["generation"] + 1
            self._gc(self.manifest())
        return rep

    def read_harp_map(self, series: str | None = None) -> pl.DataFrame:
        """The stored HARP <-> NOAA map of ``series`` (``harpnum``, ``noaa_ar``, ``series``);
        empty if none. Default: the one map stored; `StoreError` if maps of several series
        are stored."""
        def read(manifest: dict) -> pl.DataFrame:
            files = self._files("harp_map", manifest)
            if not files:
                return pl.DataFrame(schema=_MAP_SCHEMA)
            hm = _conform_map(self._read_files(files))
            names = hm["series"].unique().sort().to_list()
            if series is None and len(names) > 1:
                raise StoreError(f"{self.root}: HARP maps of several series are stored "
                                 f"{names}; pass series=")
            return hm if series is None else hm.filter(pl.col("series") == series)

        return self._read_consistent(read)

    # ------------------------------------------------------------------ inspection

    def _unreadable(self, f: Path, cause: BaseException) -> StoreError:
        """The `StoreError` for a listed file that is there but not readable Parquet."""
        try:
            size = f"{f.stat().st_size} bytes"
        except OSError:
            size = "size unknown"
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        return StoreError(f"{self.root}: damaged store file {f} ({size}; truncated or not "
                          f"Parquet: {first[:160]})")

    def _check_files(self, manifest: dict, *, footers: bool) -> None:
        """Raise `StoreError` naming the first file ``manifest`` lists that is missing or,
        with ``footers``, whose Parquet footer cannot be read (a truncated file)."""
        for table in _TABLES:
            for f in self._files(table, manifest):
                if not f.is_file():
                    raise StoreError(f"{self.root}: manifest lists missing file {f} "
                                     f"(table {table})")
                if footers:
                    try:
                        pl.read_parquet_schema(f)
                    except (OSError, pl.exceptions.PolarsError) as e:
                        raise self._unreadable(f, e) from e

    def _duckdb_error(self, manifest: dict, e: Exception) -> StoreError:
        """A DuckDB failure over the store's files, as a `StoreError` naming the bad file."""
        try:
            self._check_files(manifest, footers=True)
        except StoreError as named:
            return named
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return StoreError(f"{self.root}: cannot query the store files: {first[:200]}")

    def duckdb(self):
        """A DuckDB connection with views ``sharp``, ``sharp_revisions``, ``flares`` and
        ``harp_map`` over the committed files (empty tables are absent; files of a format-1
        store lack ``series``).

        Raises `StoreError` naming a listed file that is missing or damaged."""
        import duckdb

        con = duckdb.connect()
        m = self.manifest()
        self._check_files(m, footers=False)
        try:
            for table in _TABLES:
                files = [str(p) for p in self._files(table, m)]
                if files:
                    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet("
                                f"{files!r}, union_by_name = true)")
        except duckdb.Error as e:
            con.close()
            raise self._duckdb_error(m, e) from e
        return con

    def info(self) -> dict:
        """Summary of the committed store: generation, per-table rows, partitions, time
        ranges (UTC ISO strings), distinct HARPs, rows per series (``series``), and bytes
        on disk.

        Raises `StoreError` naming a file the manifest lists that is missing or damaged
        (deleted, truncated), never a DuckDB error."""
        import duckdb

        m = self.manifest()
        out: dict = {"root": str(self.root), "generation": m["generation"],
                     "updated_utc": m.get("updated_utc"), "tables": {}}
        if not m["tables"]:
            return out
        con = self.duckdb()
        try:
            self._info_tables(m, con, out)
        except duckdb.Error as e:
            raise self._duckdb_error(m, e) from e
        finally:
            con.close()
        return out

    def _info_tables(self, m: dict, con, out: dict) -> None:
        for table in _TABLES:
            files = self._files(table, m)
            if not files:
                continue
            t: dict = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
            if table == "sharp":
                n, h, t0, t1 = con.execute(
                    "SELECT count(*), count(DISTINCT harpnum), min(t_rec), max(t_rec) FROM sharp"
                ).fetchone()
                t.update(rows=n, harps=h, partitions=len(m["tables"]["sharp"]["partitions"]),
                         t_rec_min=_iso(t0), t_rec_max=_iso(t1),
                         series=self._series_counts(m))
            elif table == "flares":
                n, t0, t1, nh = con.execute(
                    "SELECT count(*), min(peak_time), max(peak_time), count(harpnum) FROM flares"
                ).fetchone()
                if (len(self._series_counts(m)) <= 1
                        and self._flare_series(m, None) is not None):  # as read_flares gives
                    nh = self.read_flares()["harpnum"].is_not_null().sum()
                t.update(rows=n, peak_min=_iso(t0), peak_max=_iso(t1), with_harpnum=int(nh))
            else:
                t["rows"] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if table == "harp_map":
                    t["series"] = dict(_conform_map(self._read_files(files))
                                       .group_by("series").len().sort("series").iter_rows())
            out["tables"][table] = t


# ---------------------------------------------------------------------- helpers


def _iso(t) -> str | None:
    if t is None:
        return None
    return to_utc(t).isoformat() if isinstance(t, datetime) else str(t)


def _listed(manifest: dict) -> set[str]:
    """Every file (relative path) the manifest's tables list."""
    out: set[str] = set()
    for t in manifest.get("tables", {}).values():
        if "partitions" in t:
            out.update(f for files in t["partitions"].values() for f in files)
        else:
            out.update(t.get("files", []))
    return out


def _conform_map(df: pl.DataFrame) -> pl.DataFrame:
    """A stored map frame; a format-1 map (no ``series``) is the definitive one."""
    if "series" not in df.columns:
        df = df.with_columns(pl.lit(SERIES_DEFINITIVE_CEA).alias("series"))
    return df.select([pl.col(c).cast(t) for c, t in _MAP_SCHEMA.items()])


def _series_by_source() -> pl.Expr:
    return (pl.when(pl.col("source").str.ends_with("_nrt")).then(pl.lit(SERIES_NRT_CEA))
            .otherwise(pl.lit(SERIES_DEFINITIVE_CEA)))


def _scan_sharp(files: list[Path], columns: list[str]) -> pl.LazyFrame:
    """One lazy scan of SHARP part files, projected to ``columns`` (canonical dtypes; a
    column absent from a file is null there, a file's other columns are not decoded)."""
    return pl.scan_parquet(files, hive_partitioning=False, missing_columns="insert",
                           extra_columns="ignore",
                           schema={c: SHARP_SCHEMA[c] for c in columns})


def _with_default_series(df: pl.DataFrame, series: str | None) -> pl.DataFrame:
    """Null ``series`` filled: ``series`` if given, else by ``source`` (``_nrt`` -> NRT CEA,
    otherwise definitive CEA)."""
    fill = pl.lit(series) if series is not None else _series_by_source()
    if "series" not in df.columns:
        return df.with_columns(fill.alias("series"))
    return df.with_columns(pl.coalesce(pl.col("series"), fill).alias("series"))


def _prepare_sharp(df: pl.DataFrame, series: str | None) -> pl.DataFrame:
    try:
        out = conform_sharp(df)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as e:
        raise StoreError(f"SHARP frame does not fit the canonical schema: {e}") from e
    n_bad = out.select(pl.col("harpnum").is_null() | pl.col("t_rec").is_null()).sum().item()
    if n_bad:
        raise StoreError(f"SHARP frame has {n_bad} rows with null harpnum or t_rec")
    if series is not None:
        other = out.filter(pl.col("series").is_not_null() & (pl.col("series") != series))
        if other.height:
            raise StoreError(f"write_sharp(series={series!r}): {other.height} rows carry "
                             f"another series {other['series'].unique().to_list()[:3]}")
    out = _with_default_series(out, series)
    if out.select((pl.col("series").str.strip_chars() == "").any()).item():
        raise StoreError("SHARP frame has rows with an empty series")
    return out.with_columns(pl.col("t_rec").dt.strftime("%Y-%m-%d").alias("_day"))


def _row_filter(series: str, t0: datetime | None, t1: datetime | None,
                harpnums: list[int] | None) -> pl.Expr:
    keep = pl.col("series") == series
    if t0 is not None:
        keep &= pl.col("t_rec") >= t0
    if t1 is not None:
        keep &= pl.col("t_rec") <= t1
    if harpnums is not None:
        keep &= pl.col("harpnum").is_in([int(h) for h in harpnums])
    return keep


@dataclass
class _SharpMerge:
    current: pl.DataFrame  # one row per key of old + new: the newest version (with _day)
    added: pl.DataFrame  # current rows of keys new to the store
    n_updated: int  # existing keys whose current version changed
    superseded: pl.DataFrame  # versions replaced by a newer one, for sharp_revisions
    changed_days: set[str]


def _merge_sharp(old: pl.DataFrame | None, new: pl.DataFrame) -> _SharpMerge:
    """Merge the ``new`` rows into the ``old`` rows of the touched days, by `SHARP_KEY`.

    Versions of a key are ordered by (available_at, unknown first; old before new; input
    order); consecutive versions with equal values collapse into the first (a re-delivery
    of the same value changes nothing and keeps the earliest ``available_at``); the last
    version is current, the earlier distinct ones are superseded.
    """
    keys = list(SHARP_KEY)
    cols = [*SHARP_SCHEMA, "_day"]
    values = [c for c in cols if c not in (*keys, "available_at", "_day")]
    frames = [new.select(cols).with_columns(pl.lit(1, pl.Int8).alias("_src"))]
    if old is not None:
        frames.insert(0, old.select(cols).with_columns(pl.lit(0, pl.Int8).alias("_src")))
    both = (pl.concat(frames).with_row_index("_ord")
            .sort([*keys, "available_at", "_src", "_ord"], nulls_last=False))
    same_key = pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in keys]).fill_null(
        False)
    same_values = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in values])
    versions = both.filter(~(same_key & same_values))
    last = ~pl.all_horizontal([pl.col(k) == pl.col(k).shift(-1) for k in keys]).fill_null(False)
    versions = versions.with_columns(last.alias("_last"))
    current = versions.filter(pl.col("_last"))
    superseded = versions.filter(~pl.col("_last")).drop("_ord", "_src", "_last", "_day")
    changed = current.filter(pl.col("_src") == 1)
    if old is not None:
        added = changed.join(old.select(keys), on=keys, how="anti")
        n_updated = changed.height - added.height
    else:
        added, n_updated = changed, 0
    changed_days = set(changed.get_column("_day").unique().to_list())
    current = current.drop("_ord", "_src", "_last")
    return _SharpMerge(current, added.drop("_ord", "_src", "_last"), n_updated, superseded,
                       changed_days)


def _as_served(main: pl.DataFrame, revisions: pl.DataFrame | None, t: datetime,
               latency: timedelta) -> pl.DataFrame:
    """The records served by ``t``, each with the version current at ``t``."""
    keys = list(SHARP_KEY)
    frames = [main.with_columns(pl.lit(1, pl.Int8).alias("_main"))]
    if revisions is not None and revisions.height:
        frames.append(revisions.select(main.columns)
                      .with_columns(pl.lit(0, pl.Int8).alias("_main")))
    versions = pl.concat(frames).with_columns(
        pl.coalesce("available_at", pl.col("t_rec") + pl.lit(latency)).alias("_eff"))
    first = (versions.group_by(keys).agg(pl.col("_eff").min().alias("available_at")))
    served = with_served_at(first, latency).filter(pl.col("served_at") <= t).select(keys)
    return (versions.filter(pl.col("_eff") <= t).join(served, on=keys, how="semi")
            .sort([*keys, "_eff", "_main"])
            .unique(keys, keep="last", maintain_order=True)
            .drop("_eff", "_main"))


def _priority(df: pl.DataFrame) -> pl.Expr:
    return pl.when(pl.col("source").str.ends_with("_nrt")).then(0).otherwise(1)


def _dedupe(df: pl.DataFrame, key: tuple[str, ...]) -> pl.DataFrame:
    """Keep one flare row per key: definitive over NRT, later rows over earlier ones."""
    return (df.with_row_index("_ord").with_columns(_priority(df).alias("_prio"))
            .sort([*key, "_prio", "_ord"], nulls_last=True)
            .unique(subset=list(key), keep="last", maintain_order=True)
            .drop("_ord", "_prio"))


def _merge(old: pl.DataFrame, new: pl.DataFrame, key: tuple[str, ...],
           ) -> tuple[pl.DataFrame, int, int, bool]:
    """Merge flare rows ``new`` into ``old`` on ``key``; returns (merged rows, #added keys,
    #changed existing keys, whether anything changed)."""
    cols = new.columns
    old = old.select(cols)
    keys = list(key)
    added_rows = new.join(old.select(keys), on=keys, how="anti", nulls_equal=True)
    both = pl.concat([old.with_columns(pl.lit(0).alias("_src")),
                      new.with_columns(pl.lit(1).alias("_src"))])
    merged = (both.with_row_index("_ord").with_columns(_priority(both).alias("_prio"))
              .sort([*keys, "_prio", "_ord"], nulls_last=True)
              .unique(subset=keys, keep="last", maintain_order=True))
    # rows taken from `new` whose key existed in `old` with different values = updates
    winners_new = merged.filter(pl.col("_src") == 1).drop("_ord", "_prio", "_src")
    candidates = winners_new.join(added_rows.select(keys), on=keys, how="anti",
                                  nulls_equal=True)
    unchanged = candidates.join(old, on=cols, how="semi", nulls_equal=True)
    updated_rows = candidates.join(unchanged.select(keys), on=keys, how="anti",
                                   nulls_equal=True)
    merged = merged.drop("_ord", "_prio", "_src")
    return merged, added_rows.height, updated_rows.height, bool(
        added_rows.height or updated_rows.height)
