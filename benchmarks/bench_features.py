"""Benchmark: streamed running statistics vs pandas ``groupby().rolling("4h")``.

The input is a SYNTHETIC SHARP-like archive (random walks at a 12-min cadence with gaps and
1 % missing values; no real data): ``--records`` rows (default 1 M) x 24 keywords, regions of
~1000 records starting at random times over 10 years. It is first generated region chunk
by region chunk into a temporary `flare_core.store.Store` (not timed), so that generating
it never dominates memory; then `flare_core.feature_stream.featurize_store` streams it to
partitioned Float32 Parquet (uncompressed, the default) in its own child process, whose wall time and peak RSS
(``ru_maxrss``, the whole process: interpreter, numba, input chunks, output buffers) are
the figures. Every implementation runs in its own child process so that its peak RSS is
its own.

The pandas baseline computes every statistic of `flare_core.features.WINDOW_STATS` and
`LONG_STATS`: the rolling built-ins (mean, std, min, max, median, skew, kurt, count) for all
keywords at once, ``rolling.apply(raw=True)`` for first/last valid value (pandas has no
built-in), and the least-squares slope from rolling moments (vectorised). Because the
``apply`` calls make it slow, it runs on the first ``--pandas-records`` rows (whole regions)
and its time is scaled linearly to the full size; the output says so. On that subset the
two results are cross-checked.

A second baseline is the I/O floor: the same number of bytes of the same Parquet written by
the stream's own writer with no computation (``write_only_s``): the streamed pass cannot be
faster than its output reaches the disk.

The last line is ``RESULT records=... seconds=... peak_rss_gib=... speedup_vs_pandas=...
write_only_s=... vs_write_only=...`` (the streamed pass against pandas scaled to the full
size, and against the I/O floor).

Usage: ``python benchmarks/bench_features.py [--records 1000000] [--pandas-records 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

KEYWORDS = [
    "usflux", "meangam", "meangbt", "meangbz", "meangbh", "meanjzd", "totusjz", "meanalp",
    "meanjzh", "totusjh", "absnjzh", "savncpp", "meanpot", "totpot", "meanshr", "shrgt45",
    "r_value", "totbsq", "totfx", "totfy", "totfz", "epsx", "epsy", "epsz",
]
WINDOW_H, LONG_H = 4.0, 24.0


def synthetic_frame(n_records: int, seed: int = 0, starts: np.ndarray | None = None):
    """Regions of ~1000 records at 12 min with random gaps; log-normal-ish random walks.

    ``starts``: the regions' first times (12-min steps after 2010-05-01); default random."""
    import polars as pl

    rng = np.random.default_rng(seed)
    per_region = 1000
    n_regions = -(-n_records // per_region)
    harp = np.repeat(np.arange(1, n_regions + 1), per_region)[:n_records]
    steps = rng.choice([1, 1, 1, 1, 1, 1, 1, 2, 5, 30], size=n_records)  # 12-min multiples
    if starts is None:
        starts = rng.integers(0, 10 * 365 * 24 * 5, n_regions)
    start = np.repeat(starts, per_region)[:n_records]
    t_min = 12 * (start + np.cumsum(steps) - np.repeat(
        np.cumsum(steps)[::per_region] - steps[::per_region], per_region)[:n_records])
    cols = {"harpnum": harp, "t_rec": (np.datetime64("2010-05-01", "m") + t_min).astype(
        "datetime64[us]")}
    for k, name in enumerate(KEYWORDS):
        walk = np.cumsum(rng.normal(0, 0.02, n_records))
        walk -= np.repeat(walk[::per_region], per_region)[:n_records]
        vals = 10.0 ** (k % 7) * np.exp(walk) * (1 + 0.01 * rng.standard_normal(n_records))
        vals[rng.random(n_records) < 0.01] = np.nan
        cols[name] = vals
    df = pl.DataFrame(cols).with_columns(pl.col("t_rec").dt.replace_time_zone("UTC"))
    return df.with_columns([pl.col(k).fill_nan(None) for k in KEYWORDS])


def synthetic_archive(n_records: int, per_region: int = 1000, seed: int = 0):
    """Yield the SYNTHETIC archive in whole-region chunks of ~1 M records, in time order
    (regions start at sorted random times over 10 years; HARP numbers follow that order)."""
    import polars as pl

    rng = np.random.default_rng(seed)
    n_regions = -(-n_records // per_region)
    starts = np.sort(rng.integers(0, 10 * 365 * 24 * 5, n_regions))  # 12-min steps
    per_chunk = max(1, 1_000_000 // per_region)
    for c, a in enumerate(range(0, n_regions, per_chunk)):
        b = min(a + per_chunk, n_regions)
        n = min(n_records, b * per_region) - a * per_region
        frame = synthetic_frame(n, seed=seed + 1 + c, starts=starts[a:b])
        yield frame.with_columns(pl.col("harpnum") + a)


def run_store(n: int, root: str) -> dict:
    import polars as pl

    from flare_core.schema import conform_sharp
    from flare_core.store import Store

    store = Store(root)
    t0 = time.perf_counter()
    for frame in synthetic_archive(n):
        store.write_sharp(conform_sharp(frame.with_columns(pl.lit("synthetic").alias("source"))))
    return {"seconds": time.perf_counter() - t0, "rows": n}


def run_stream(n: int, root: str, out: str) -> dict:
    from flare_core.feature_stream import featurize_store
    from flare_core.features import RunningStats
    from flare_core.store import Store

    cfg = RunningStats(window_h=WINDOW_H, long_window_h=LONG_H, keywords=tuple(KEYWORDS))
    t0 = time.perf_counter()
    rep = featurize_store(Store(root), out, cfg, float32=True)
    dt = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in rep.files)
    return {"seconds": dt, "rows": rep.rows, "features": 15 * len(rep.keywords),
            "files": len(rep.files), "gib_written": size / 2**30}


def run_write_only(features: str, out: str) -> dict:
    """The I/O floor: write as many bytes of the same Parquet as `run_stream` wrote, with
    no computation (the first part file, read once untimed, put again and again through
    the stream's own writer: same codec, same threads, same page cache, same disk)."""
    import pyarrow.parquet as pq

    from flare_core.feature_stream import _PartWriter

    parts = sorted(Path(features).glob("part-*.parquet"))
    total = sum(f.stat().st_size for f in parts)
    size = parts[0].stat().st_size
    table = pq.read_table(parts[0])
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    writer = _PartWriter(dest, "none")
    t0 = time.perf_counter()
    try:
        left = total
        while left > 0:  # the last one: what is left
            rows = min(table.num_rows, -(-table.num_rows * left // size))
            writer.put(table.slice(0, rows))
            left -= size * rows // table.num_rows
    finally:
        writer.close()
    dt = time.perf_counter() - t0
    written = sum(f.stat().st_size for f in writer.files)
    return {"seconds": dt, "files": len(writer.files), "gib_written": written / 2**30}


def run_ours(n: int, out: str | None) -> dict:
    from flare_core.features import RunningStats, build_running_stats

    df = synthetic_frame(n)
    cfg = RunningStats(window_h=WINDOW_H, long_window_h=LONG_H, keywords=tuple(KEYWORDS))
    t0 = time.perf_counter()
    res = build_running_stats(df, cfg)
    dt = time.perf_counter() - t0
    if out:
        res.write_parquet(out)
    return {"seconds": dt, "rows": res.height, "features": res.width - 2}


def _pandas_stats(n: int):
    import pandas as pd

    pdf = synthetic_frame(n).to_pandas()
    # hours since the region's first record: keeps the moment sums of the slope well scaled
    t_first = pdf.groupby("harpnum")["t_rec"].transform("min")
    pdf["t_h"] = (pdf["t_rec"] - t_first).dt.total_seconds() / 3600
    t0 = time.perf_counter()
    out = pdf[["harpnum", "t_rec"]].copy()

    def first_valid(a):
        ok = a[~np.isnan(a)]
        return ok[0] if ok.size else np.nan

    def last_valid(a):
        ok = a[~np.isnan(a)]
        return ok[-1] if ok.size else np.nan

    cols = {}
    for hours, long in ((WINDOW_H, False), (LONG_H, True)):
        # slope from rolling moments of (t, x) over the valid points of each keyword
        tv = pd.DataFrame({k: pdf["t_h"].where(pdf[k].notna()) for k in KEYWORDS})
        txv = pd.DataFrame({k: tv[k] * pdf[k] for k in KEYWORDS})
        t2v = tv * tv
        frames = {"x": pdf[KEYWORDS], "t": tv, "tx": txv, "t2": t2v}
        sums = {}
        for name, fr in frames.items():
            fr = fr.assign(harpnum=pdf["harpnum"].values, t_rec=pdf["t_rec"].values)
            roll = fr.groupby("harpnum").rolling(f"{hours:g}h", on="t_rec", closed="right")
            sums[name] = roll[KEYWORDS].sum().reset_index(drop=True)
        roll = pdf.groupby("harpnum").rolling(f"{hours:g}h", on="t_rec", closed="right")[KEYWORDS]
        cnt = roll.count().reset_index(drop=True)
        first = roll.apply(first_valid, raw=True).reset_index(drop=True)
        last = roll.apply(last_valid, raw=True).reset_index(drop=True)
        with np.errstate(all="ignore"):
            sxy = sums["tx"] - sums["t"] * sums["x"] / cnt
            sxx = sums["t2"] - sums["t"] ** 2 / cnt
            slope = (sxy / sxx).where(cnt >= 2)
        if long:
            for k in KEYWORDS:
                cols[f"{k}__long_slope_per_h"] = slope[k].values
                cols[f"{k}__long_diff"] = (last[k] - first[k]).values
            continue
        stats = {
            "mean": roll.mean(), "std": roll.std(), "min": roll.min(), "max": roll.max(),
            "median": roll.median(), "skew": roll.skew(), "kurt": roll.kurt(),
        }
        stats = {s: v.reset_index(drop=True) for s, v in stats.items()}
        stats.update(first=first, last=last, diff=last - first,
                     rel_change=(last - first) / first.abs(), slope_per_h=slope, count=cnt)
        for k in KEYWORDS:
            for s, v in stats.items():
                cols[f"{k}__{s}"] = v[k].values
    out = pd.concat([out.reset_index(drop=True), pd.DataFrame(cols)], axis=1)
    return out, time.perf_counter() - t0


def run_pandas(n: int, out: str | None) -> dict:
    res, dt = _pandas_stats(n)
    if out:
        res.to_parquet(out)
    return {"seconds": dt, "rows": len(res), "features": res.shape[1] - 2}


def _child(mode: str, n: int, out: str | None, root: str | None = None) -> tuple[dict, float]:
    cmd = [sys.executable, __file__, "--_worker", mode, "--records", str(n)]
    if out:
        cmd += ["--_out", out]
    if root:
        cmd += ["--_root", root]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{mode} worker failed ({status})")
    res = json.loads(stdout.strip().splitlines()[-1])
    res["cpu_s"] = usage.ru_utime + usage.ru_stime  # CPU time: less load-dependent than wall
    return res, usage.ru_maxrss / 2**20  # KiB -> GiB


def _cross_check(ours_path: str, pandas_path: str) -> str:
    import pandas as pd
    import polars as pl

    a = pl.read_parquet(ours_path)
    b = pd.read_parquet(pandas_path)
    a = a.head(len(b))
    worst, where = 0.0, ""
    for c in a.columns[2:]:
        x, y = a[c].to_numpy().astype(float), b[c].to_numpy().astype(float)
        both = np.isfinite(x) & np.isfinite(y)
        scale = np.nanmax(np.abs(y[both]), initial=1e-300)
        err = np.max(np.abs(x[both] - y[both]) / np.maximum(np.abs(y[both]), 1e-6 * scale),
                     initial=0.0)
        if err > worst:
            worst, where = err, c
    return f"max relative difference over {a.shape[1] - 2} features: {worst:.2e} ({where})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--pandas-records", type=int, default=100_000)
    ap.add_argument("--tmp", help="directory for the temporary store and output "
                    "(default: the system temp directory)")
    ap.add_argument("--_worker", choices=["ours", "pandas", "store", "stream", "write"])
    ap.add_argument("--_out")
    ap.add_argument("--_root")
    args = ap.parse_args()
    if args._worker == "store":
        print(json.dumps(run_store(args.records, args._root)))
        return
    if args._worker == "stream":
        print(json.dumps(run_stream(args.records, args._root, args._out)))
        return
    if args._worker == "write":
        print(json.dumps(run_write_only(args._root, args._out)))
        return
    if args._worker:
        fn = run_ours if args._worker == "ours" else run_pandas
        print(json.dumps(fn(args.records, args._out)))
        return
    import tempfile

    n, n_pd = args.records, min(args.pandas_records, args.records)
    load0 = os.getloadavg()
    print(f"SYNTHETIC data (random walks, realistic layout only): {n:,} records x "
          f"{len(KEYWORDS)} keywords")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        built, store_rss = _child("store", n, None, f"{tmp}/store")
        print(f"  synthetic store written chunk-wise in {built['seconds']:.1f} s (not timed "
              f"below; peak RSS {store_rss:.2f} GiB)")
        ours, ours_rss = _child("stream", n, f"{tmp}/features", f"{tmp}/store")
        print(f"flare_core featurize_store (streamed, Float32 Parquet): {ours['seconds']:.2f} s "
              f"for {ours['rows']:,} records x {len(KEYWORDS)} keywords -> "
              f"{ours['features']} features in {ours['files']} files "
              f"({ours['gib_written']:.2f} GiB); peak RSS {ours_rss:.2f} GiB; CPU time "
              f"{ours['cpu_s']:.1f} s (the 2 cores are shared: wall time is load-dependent)")
        floor, _ = _child("write", n, f"{tmp}/rewrite", f"{tmp}/features")
        shutil.rmtree(f"{tmp}/features", ignore_errors=True)
        shutil.rmtree(f"{tmp}/rewrite", ignore_errors=True)
        print(f"  I/O floor: writing the same {floor['gib_written']:.2f} GiB of Parquet with no "
              f"computation ({floor['files']} copies of one part file, the stream's writer) "
              f"took {floor['seconds']:.2f} s ({floor['gib_written'] * 1024 / floor['seconds']:.0f}"
              f" MiB/s); featurize_store took {ours['seconds'] / floor['seconds']:.2f}x that")
        sub, _ = _child("ours", n_pd, f"{tmp}/ours.parquet")
        pdr, pd_rss = _child("pandas", n_pd, f"{tmp}/pandas.parquet")
        scaled = pdr["seconds"] * n / n_pd
        print(f"pandas groupby().rolling('4h') baseline: {pdr['seconds']:.2f} s for {n_pd:,} "
              f"records (flare_core on the same subset: {sub['seconds']:.2f} s); peak RSS "
              f"{pd_rss:.2f} GiB on the subset; pandas CPU time {pdr['cpu_s']:.1f} s")
        if n_pd < n:
            print(f"  pandas scaled linearly to {n:,} records: {scaled:.1f} s (subset, scaled)")
        speedup = scaled / ours["seconds"]
        print(f"featurize_store: {speedup:.1f}x faster than pandas "
              f"({ours['seconds']:.2f} s vs {scaled:.1f} s, {n:,} rows); in-memory "
              f"build_running_stats on the subset: {pdr['seconds'] / sub['seconds']:.1f}x")
        print("cross-check on the subset: " + _cross_check(f"{tmp}/ours.parquet",
                                                             f"{tmp}/pandas.parquet"))
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}; at the end: "
          "{:.2f} {:.2f} {:.2f} (2 cores; other work on the machine slows every figure)"
          .format(*load0, *os.getloadavg()))
    print(f"RESULT records={n} seconds={ours['seconds']:.2f} peak_rss_gib={ours_rss:.2f} "
          f"speedup_vs_pandas={speedup:.1f} write_only_s={floor['seconds']:.2f} "
          f"vs_write_only={ours['seconds'] / floor['seconds']:.2f}")


if __name__ == "__main__":
    main()
