"""Ingestion throughput: the bundled real files, then a SYNTHETIC 1 M x 24 SHARP frame.

Prints rows/s, wall time and peak memory (tracemalloc for Python allocations, ru_maxrss
for the process) for: reading every bundled real file; writing them to a fresh store;
writing a labelled SYNTHETIC frame of 1,000,000 records x 24 keywords (random values, NOT
real data: only the layout is realistic); re-writing it (idempotent no-op); and, as a naive
baseline in the same process, a plain ``pyarrow.parquet.write_table`` of the same frame to
one file (pandas ``to_csv`` was dropped: under tracemalloc it took > 8 min for 1 M rows).
``py-peak`` counts Python allocations only (polars/arrow buffers are native), so read
``maxrss`` for the real footprint. Figures only -- no asserts.

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--rows 1000000]``
"""

from __future__ import annotations

import argparse
import glob
import resource
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from flare_core.schema import SHARP_KEYWORDS, conform_sharp
from flare_core.sources import load_file
from flare_core.store import Store

REPO = Path(__file__).resolve().parents[1]


def synthetic_sharp(n_rows: int, *, n_harps: int = 1000, seed: int = 0) -> pl.DataFrame:
    """SYNTHETIC SHARP frame: ``n_harps`` regions at 12-min cadence, 24 random keywords."""
    rng = np.random.default_rng(seed)
    per = int(np.ceil(n_rows / n_harps))
    harp = np.repeat(np.arange(1, n_harps + 1), per)[:n_rows]
    step = np.tile(np.arange(per), n_harps)[:n_rows]
    t0 = datetime(2015, 1, 1, tzinfo=UTC)
    kws = [k for k in SHARP_KEYWORDS if k != "area"][:24]
    df = pl.DataFrame({
        "harpnum": harp,
        "t_rec": pl.Series(step * 720_000_000, dtype=pl.Int64).cast(pl.Duration("us")),
        **{k: rng.lognormal(size=n_rows) for k in kws},
    }).with_columns((pl.lit(t0) + pl.col("t_rec")).alias("t_rec"),
                    pl.lit("synthetic").alias("source"), pl.lit(0).alias("quality"))
    return conform_sharp(df)


def measure(label: str, n_rows: int, fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label:<48} {n_rows:>10,d} rows {dt:8.2f} s {n_rows / dt:>12,.0f} rows/s"
          f"  py-peak {peak / 2**20:7.1f} MiB  maxrss {rss:7.0f} MiB")
    return out, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    files = sorted(glob.glob(str(REPO / "data/sharp/sun2022_*.csv.gz")))
    files += sorted(glob.glob(str(REPO / "data/flares/*.csv.gz")))
    files += [str(REPO / "data/flares/liu2019"), str(REPO / "data/swan_sf/mvts"),
              str(REPO / "data/harp_noaa/all_harps_with_noaa_ars.txt")]
    with tempfile.TemporaryDirectory() as tmp:
        st = Store(Path(tmp) / "real")
        results, _ = measure("read all bundled real files", 0, lambda: [load_file(f) for f in files])
        n_real = sum(r.frame.height for r in results)
        print(f"  ({len(files)} inputs, {n_real:,d} rows, "
              f"{sum(r.drops.total for r in results):,d} dropped rows counted)")

        def write_real():
            for kind in ("harp_map", "sharp", "flares"):
                frames = [r.frame for r in results if r.kind == kind]
                if frames:
                    {"harp_map": st.write_harp_map, "sharp": st.write_sharp,
                     "flares": st.write_flares}[kind](pl.concat(frames))
        measure("write real files to a fresh store", n_real, write_real)

        print("SYNTHETIC data below (random keyword values, realistic layout only):")
        syn, _ = measure(f"build SYNTHETIC {args.rows:,d} x 24 frame", args.rows,
                         lambda: synthetic_sharp(args.rows))
        st2 = Store(Path(tmp) / "syn")
        _, t_store = measure("Store.write_sharp SYNTHETIC (new store)", args.rows,
                             lambda: st2.write_sharp(syn))
        measure("Store.write_sharp SYNTHETIC again (idempotent)", args.rows,
                lambda: st2.write_sharp(syn))
        measure("Store.read_sharp SYNTHETIC", args.rows, lambda: st2.read_sharp())
        import pyarrow.parquet as pq

        _, t_pq = measure("baseline: pyarrow write_table, one file", args.rows,
                          lambda: pq.write_table(syn.to_arrow(), Path(tmp) / "naive.parquet"))
        print(f"store write / plain parquet write time ratio: {t_store / t_pq:5.2f}"
              f"  (store adds day partitions, dedupe, manifest commit)")
        print(f"target: 1 M records < 20 s -> {'met' if t_store < 20 else 'NOT met'}"
              f" ({t_store:.1f} s)")
        print(f"RESULT records={args.rows} store_write_s={t_store:.2f} "
              f"plain_parquet_s={t_pq:.2f} ratio_vs_plain={t_store / t_pq:.2f}")


if __name__ == "__main__":
    main()
