"""The local store: Parquet tables under one root, with an atomic manifest.

This module is the only code that knows the on-disk layout::

    <root>/MANIFEST.json                     the committed state (generation + file lists)
    <root>/sharp/day=YYYY-MM-DD/*.parquet    SHARP keyword frame, one partition per UTC day
    <root>/flares/*.parquet                  flare-event frame (one file)
    <root>/harp_map/*.parquet                HARP <-> NOAA map (one file)
    <root>/.lock                             write lock (filelock)

Guarantees
----------
* **Atomic commits.** A write first writes every new Parquet file under a fresh, unique
  name (never overwriting a file the manifest lists), then commits by replacing
  ``MANIFEST.json`` with ``os.replace`` (a temp file fsync'ed first). Readers only open the
  files the manifest lists. A crash or error at any point before the replace leaves the
  previous store intact and readable; the orphaned files are deleted by the next write.
* **Idempotent ingestion.** SHARP rows are unique on (harpnum, t_rec) and flares on
  (peak_time, goes_class, noaa_ar). Writing the same data twice changes nothing (no
  partition is rewritten, the generation does not move). On a key collision the new row
  wins, except that a near-real-time row (``source`` ending in ``_nrt``) never replaces a
  definitive one.
* **Incremental.** Appending new hours rewrites only the day partitions that receive rows.
* One writer at a time (a lock file); readers never block.
* **NOAA numbers from the map.** `Store.read_sharp` fills a record's null (or empty)
  ``noaa_ars`` with the NOAA regions the stored HARP <-> NOAA map lists for its HARP
  (ascending, comma separated). This is done when reading, not writing, so the SHARP files
  keep what the source delivered and the answer follows the current map whichever was
  ingested first (the map is replaced as a whole by `Store.write_harp_map`; rewriting every
  SHARP partition then would be the only write-time alternative). Records that carry their
  own ``NOAA_ARS`` (JSOC) keep them. The map lists every region a HARP ever overlapped, so a
  filled value can name a region numbered after ``t_rec``: ``noaa_ars`` is a display
  label, never a feature (`flare_core.models._inputs.NON_FEATURE_COLUMNS`).

Reading is polars (`Store.read_sharp`, `Store.read_flares`) or DuckDB (`Store.duckdb`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from .errors import StoreError
from .schema import FLARE_SCHEMA, SHARP_SCHEMA, conform_flares, conform_sharp
from .timeutil import to_utc

__all__ = ["Store", "WriteReport", "SHARP_KEY", "FLARE_KEY"]

logger = logging.getLogger(__name__)

SHARP_KEY = ("harpnum", "t_rec")
FLARE_KEY = ("peak_time", "goes_class", "noaa_ar")
_MANIFEST = "MANIFEST.json"
_FORMAT = 1


@dataclass
class WriteReport:
    """What one write did.

    ``rows_in``: rows offered; ``rows_added``: keys new to the store; ``rows_updated``:
    existing keys whose values changed; ``duplicates_in``: rows dropped because the input
    repeated a key; ``partitions_written`` / ``partitions_unchanged``: day partitions
    rewritten or left alone; ``generation``: the manifest generation after the write.
    """

    table: str
    rows_in: int = 0
    rows_added: int = 0
    rows_updated: int = 0
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

    Examples
    --------
    >>> store = Store(tmp_path)                                         # doctest: +SKIP
    >>> store.write_sharp(read_sun2022("data/sharp/sun2022_sharp_m24h_fold0.csv.gz"))
    >>> store.read_sharp(start="2014-01-01", end="2014-02-01", harpnums=[3686])
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

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
        if m.get("format") != _FORMAT:
            raise StoreError(f"{path}: unsupported store format {m.get('format')!r}")
        return m

    def _commit(self, manifest: dict) -> None:
        manifest = {**manifest, "generation": int(manifest["generation"]) + 1,
                    "updated_utc": datetime.now(UTC).isoformat()}
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".manifest-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(manifest, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._manifest_path())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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

    def _gc(self, manifest: dict, tables: tuple[str, ...] = ("sharp", "flares", "harp_map"),
            ) -> int:
        """Delete Parquet and temp files that no committed table lists (crash leftovers)."""
        n = 0
        for table in tables:
            d = self.root / table
            if not d.exists():
                continue
            keep = {p.relative_to(self.root).as_posix() for p in self._files(table, manifest)}
            for dirpath, _dirnames, filenames in os.walk(d, topdown=False):
                for name in filenames:
                    rel = Path(dirpath, name).relative_to(self.root).as_posix()
                    if rel not in keep:
                        os.unlink(os.path.join(dirpath, name))
                        n += 1
                if dirpath != str(d) and not os.listdir(dirpath):
                    os.rmdir(dirpath)
        for p in self.root.glob(".manifest-*.tmp"):
            p.unlink(missing_ok=True)
        if n:
            logger.info("store %s: removed %d unreferenced files", self.root, n)
        return n

    # ------------------------------------------------------------------ SHARP

    def write_sharp(self, df: pl.DataFrame) -> WriteReport:
        """Merge a SHARP keyword frame into the store (atomic, idempotent).

        Parameters
        ----------
        df
            Canonical SHARP frame (`flare_core.schema.SHARP_SCHEMA`; cast strictly). Rows
            with a null ``harpnum`` or ``t_rec`` raise `StoreError`.

        Returns
        -------
        WriteReport
        """
        new = _prepare_sharp(df)
        rep = WriteReport("sharp", rows_in=df.height)
        n0 = new.height
        new = _dedupe(new, SHARP_KEY)
        rep.duplicates_in = n0 - new.height
        with self._lock():
            manifest = self.manifest()
            table = manifest["tables"].get("sharp", {"partitions": {}, "rows": 0})
            parts: dict[str, list[str]] = dict(table["partitions"])
            days = new.get_column("_day").unique().sort().to_list()
            touched = [d for d in days if d in parts]
            old = self._read_files([self.root / f for d in touched for f in parts[d]])
            if old is not None:
                old = old.with_columns(pl.col("t_rec").dt.strftime("%Y-%m-%d").alias("_day"))
                merged, added, updated, changed_days = _merge(old, new, SHARP_KEY, "_day")
            else:
                merged, added, updated, changed_days = new, new.height, 0, set(days)
            rep.rows_added, rep.rows_updated = added, updated
            to_write = merged.filter(pl.col("_day").is_in(sorted(changed_days)))
            rep.partitions_unchanged = len(days) - len(changed_days)
            rep.partitions_written = len(changed_days)
            if to_write.height == 0:
                rep.generation = manifest["generation"]
                return rep
            written = self._write_partitioned(to_write, manifest["generation"] + 1)
            for day, files in written.items():
                parts[day] = files
            rows = table.get("rows", 0) + added
            manifest["tables"]["sharp"] = {"partitions": parts, "rows": rows}
            self._commit(manifest)
            rep.generation = manifest["generation"] + 1
            self._gc(self.manifest(), ("sharp",))
        logger.info("store %s: sharp +%d rows (%d updated) in %d partitions", self.root,
                    rep.rows_added, rep.rows_updated, rep.partitions_written)
        return rep

    def _write_partitioned(self, df: pl.DataFrame, generation: int) -> dict[str, list[str]]:
        """Write one Parquet file per UTC day under a fresh unique name (invisible to readers
        until the manifest lists it); returns day -> [path relative to root]."""
        from concurrent.futures import ThreadPoolExecutor

        token = f"g{generation:06d}-{uuid.uuid4().hex[:12]}"
        parts = df.sort(["_day", "harpnum", "t_rec"]).partition_by(
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

    def _read_files(self, files: list[Path]) -> pl.DataFrame | None:
        """Read the listed Parquet files (threads: per-file overhead dominates small days)."""
        from concurrent.futures import ThreadPoolExecutor

        if not files:
            return None
        missing = [f for f in files if not f.exists()]
        if missing:
            raise StoreError(f"{self.root}: manifest lists missing file(s) {missing[:3]}")
        if len(files) == 1:
            return pl.read_parquet(files[0], hive_partitioning=False)
        with ThreadPoolExecutor(max_workers=8) as ex:
            frames = list(ex.map(lambda f: pl.read_parquet(f, hive_partitioning=False), files))
        return pl.concat(frames, how="vertical_relaxed")

    def read_sharp(self, start: datetime | str | None = None, end: datetime | str | None = None,
                   harpnums: list[int] | None = None) -> pl.DataFrame:
        """SHARP records with ``start <= t_rec <= end`` (UTC; either bound optional).

        Returns the canonical SHARP frame sorted by (harpnum, t_rec); zero rows (with the
        schema) when nothing matches or the store is empty. A null or empty ``noaa_ars`` is
        filled from the stored HARP <-> NOAA map (see the module docstring).
        """
        manifest = self.manifest()
        parts = manifest["tables"].get("sharp", {}).get("partitions", {})
        t0 = to_utc(start) if start is not None else None
        t1 = to_utc(end) if end is not None else None
        days = [d for d in parts
                if (t0 is None or d >= t0.strftime("%Y-%m-%d"))
                and (t1 is None or d <= t1.strftime("%Y-%m-%d"))]
        df = self._read_files([self.root / f for d in sorted(days) for f in parts[d]])
        if df is None:
            return conform_sharp(pl.DataFrame(schema=SHARP_SCHEMA))
        lf = df.lazy()
        if t0 is not None:
            lf = lf.filter(pl.col("t_rec") >= t0)
        if t1 is not None:
            lf = lf.filter(pl.col("t_rec") <= t1)
        if harpnums is not None:
            lf = lf.filter(pl.col("harpnum").is_in([int(h) for h in harpnums]))
        out = conform_sharp(lf.collect()).sort(list(SHARP_KEY))
        return self._fill_noaa_ars(out, manifest)

    def _fill_noaa_ars(self, sharp: pl.DataFrame, manifest: dict) -> pl.DataFrame:
        """``noaa_ars`` of records that lack it, from the HARP <-> NOAA map (if stored)."""
        map_files = self._files("harp_map", manifest)
        missing = pl.col("noaa_ars").is_null() | (pl.col("noaa_ars").str.strip_chars() == "")
        if not map_files or sharp.height == 0 or not sharp.select(missing.any()).item():
            return sharp
        ars = (pl.read_parquet(map_files).drop_nulls().unique().sort("harpnum", "noaa_ar")
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

    # ------------------------------------------------------------------ flares / map

    def _write_single(self, table_name: str, df: pl.DataFrame, manifest: dict) -> None:
        d = self.root / table_name
        d.mkdir(parents=True, exist_ok=True)
        name = f"part-g{manifest['generation'] + 1:06d}-{uuid.uuid4().hex[:12]}.parquet"
        tmp = d / f".{name}.tmp"
        try:
            df.write_parquet(tmp)
            os.replace(tmp, d / name)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{self.root}: {table_name} write failed: {e}") from e
        manifest["tables"][table_name] = {"files": [f"{table_name}/{name}"], "rows": df.height}

    def write_flares(self, df: pl.DataFrame) -> WriteReport:
        """Merge a flare-event frame into the store (atomic, idempotent).

        Identity is (peak_time, goes_class, noaa_ar). If the store holds a HARP map, rows
        without ``harpnum`` get one from ``noaa_ar`` (`attach_harpnum`, resolved with the
        stored SHARP record spans).
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
            new = self._attach(new, manifest)
            old = self._read_files(self._files("flares", manifest))
            if old is not None:
                merged, added, updated, changed = _merge(old, new, FLARE_KEY, None)
            else:
                merged, added, updated, changed = new, new.height, 0, {None}
            rep.rows_added, rep.rows_updated = added, updated
            if not changed:
                rep.partitions_unchanged, rep.generation = 1, manifest["generation"]
                return rep
            self._write_single("flares", conform_flares(merged).sort("peak_time"), manifest)
            self._commit(manifest)
            rep.partitions_written, rep.generation = 1, manifest["generation"] + 1
            self._gc(self.manifest(), ("flares",))
        return rep

    def _attach(self, flares: pl.DataFrame, manifest: dict) -> pl.DataFrame:
        from .sources.harp_noaa import attach_harpnum

        map_files = self._files("harp_map", manifest)
        if not map_files or flares.height == 0:
            return flares
        harp_map = pl.read_parquet(map_files)
        spans = None
        sharp_files = self._files("sharp", manifest)
        if sharp_files:
            spans = (self._read_files(sharp_files).group_by("harpnum")
                     .agg(pl.col("t_rec").min().alias("t0"), pl.col("t_rec").max().alias("t1")))
            spans = pl.concat([spans.select("harpnum", pl.col("t0").alias("t_rec")),
                               spans.select("harpnum", pl.col("t1").alias("t_rec"))])
        return attach_harpnum(flares, harp_map, records=spans)

    def read_flares(self, start: datetime | str | None = None,
                    end: datetime | str | None = None) -> pl.DataFrame:
        """Flares with ``start <= peak_time <= end`` (UTC), sorted by ``peak_time``."""
        df = self._read_files(self._files("flares"))
        if df is None:
            return pl.DataFrame(schema=FLARE_SCHEMA)
        lf = df.lazy()
        if start is not None:
            lf = lf.filter(pl.col("peak_time") >= to_utc(start))
        if end is not None:
            lf = lf.filter(pl.col("peak_time") <= to_utc(end))
        return conform_flares(lf.collect()).sort("peak_time")

    def write_harp_map(self, harp_map: pl.DataFrame) -> WriteReport:
        """Store the HARP <-> NOAA map (replacing the previous one) and fill ``harpnum`` of
        the stored flares from it."""
        hm = harp_map.select(pl.col("harpnum").cast(pl.Int64), pl.col("noaa_ar").cast(pl.Int64))
        hm = hm.unique().sort(["harpnum", "noaa_ar"])
        rep = WriteReport("harp_map", rows_in=harp_map.height)
        with self._lock():
            manifest = self.manifest()
            old_files = self._files("harp_map", manifest)
            if old_files and pl.read_parquet(old_files).equals(hm):
                rep.partitions_unchanged, rep.generation = 1, manifest["generation"]
                return rep
            self._write_single("harp_map", hm, manifest)
            rep.rows_added = hm.height
            flare_files = self._files("flares", manifest)
            if flare_files:
                flares = pl.read_parquet(flare_files).with_columns(
                    pl.lit(None, dtype=pl.Int64).alias("harpnum"))
                flares = self._attach(flares, manifest)
                self._write_single("flares", conform_flares(flares), manifest)
            self._commit(manifest)
            rep.partitions_written, rep.generation = 1, manifest["generation"] + 1
            self._gc(self.manifest(), ("flares", "harp_map"))
        return rep

    def read_harp_map(self) -> pl.DataFrame:
        """The stored HARP <-> NOAA map (``harpnum``, ``noaa_ar``); empty if none."""
        files = self._files("harp_map")
        if not files:
            return pl.DataFrame(schema={"harpnum": pl.Int64, "noaa_ar": pl.Int64})
        return pl.read_parquet(files)

    # ------------------------------------------------------------------ inspection

    def duckdb(self):
        """A DuckDB connection with views ``sharp``, ``flares`` and ``harp_map`` over the
        committed files (empty tables are absent)."""
        import duckdb

        con = duckdb.connect()
        m = self.manifest()
        for table in ("sharp", "flares", "harp_map"):
            files = [str(p) for p in self._files(table, m)]
            if files:
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files!r})")
        return con

    def info(self) -> dict:
        """Summary of the committed store: generation, per-table rows, partitions, time
        ranges (UTC ISO strings), distinct HARPs, and bytes on disk."""
        m = self.manifest()
        out: dict = {"root": str(self.root), "generation": m["generation"],
                     "updated_utc": m.get("updated_utc"), "tables": {}}
        if not m["tables"]:
            return out
        con = self.duckdb()
        for table in ("sharp", "flares", "harp_map"):
            files = self._files(table, m)
            if not files:
                continue
            t: dict = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
            if table == "sharp":
                n, h, t0, t1 = con.execute(
                    "SELECT count(*), count(DISTINCT harpnum), min(t_rec), max(t_rec) FROM sharp"
                ).fetchone()
                t.update(rows=n, harps=h, partitions=len(m["tables"]["sharp"]["partitions"]),
                         t_rec_min=_iso(t0), t_rec_max=_iso(t1))
            elif table == "flares":
                n, t0, t1, nh = con.execute(
                    "SELECT count(*), min(peak_time), max(peak_time), count(harpnum) FROM flares"
                ).fetchone()
                t.update(rows=n, peak_min=_iso(t0), peak_max=_iso(t1), with_harpnum=nh)
            else:
                t["rows"] = con.execute("SELECT count(*) FROM harp_map").fetchone()[0]
            out["tables"][table] = t
        con.close()
        return out


# ---------------------------------------------------------------------- helpers


def _iso(t) -> str | None:
    if t is None:
        return None
    return to_utc(t).isoformat() if isinstance(t, datetime) else str(t)


def _prepare_sharp(df: pl.DataFrame) -> pl.DataFrame:
    try:
        out = conform_sharp(df)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as e:
        raise StoreError(f"SHARP frame does not fit the canonical schema: {e}") from e
    n_bad = out.select(pl.col("harpnum").is_null() | pl.col("t_rec").is_null()).sum().item()
    if n_bad:
        raise StoreError(f"SHARP frame has {n_bad} rows with null harpnum or t_rec")
    return out.with_columns(pl.col("t_rec").dt.strftime("%Y-%m-%d").alias("_day"))


def _priority(df: pl.DataFrame) -> pl.Expr:
    return pl.when(pl.col("source").str.ends_with("_nrt")).then(0).otherwise(1)


def _dedupe(df: pl.DataFrame, key: tuple[str, ...]) -> pl.DataFrame:
    """Keep one row per key: definitive over NRT, later rows over earlier ones."""
    return (df.with_row_index("_ord").with_columns(_priority(df).alias("_prio"))
            .sort([*key, "_prio", "_ord"], nulls_last=True)
            .unique(subset=list(key), keep="last", maintain_order=True)
            .drop("_ord", "_prio"))


def _merge(old: pl.DataFrame, new: pl.DataFrame, key: tuple[str, ...],
           part_col: str | None) -> tuple[pl.DataFrame, int, int, set]:
    """Merge ``new`` into ``old`` on ``key``; returns (merged rows of the touched partitions,
    #added keys, #changed existing keys, set of partitions whose content changed)."""
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
    if part_col is None:
        changed = {None} if added_rows.height or updated_rows.height else set()
    else:
        changed = set(added_rows.get_column(part_col).unique().to_list()) | set(
            updated_rows.get_column(part_col).unique().to_list())
    return merged, added_rows.height, updated_rows.height, changed
