"""Benchmark: `bootstrap_by_region` against its naive cost, n_boot single metric calls.

Data: the REAL bundled sun2022 fold 1 (``data/sharp/sun2022_sharp_m24h_fold1.csv.gz``), the
source's own 24-h >=M label and a fixed R_VALUE threshold as a toy forecast (the point is
timing, not skill). For each metric the script times one call on the full fold, then the
bootstrap with ``--n-boot`` region resamples, and prints the bootstrap time as a ratio to
``n_boot x`` the single call (1.0x = the region resampling itself is free). It also prints
the interval width with regions vs rows as the resampling unit, the reason the region
bootstrap exists.

Usage: ``python benchmarks/bench_metrics.py [--n-boot 1000]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from flare_core import metrics as M

FOLD = Path(__file__).resolve().parents[1] / "data/sharp/sun2022_sharp_m24h_fold1.csv.gz"
R_VALUE_THRESHOLD = 3.5  # fixed by hand, not tuned on this fold


def _time(fn, repeat: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    df = pl.read_csv(FOLD, columns=["arpnum", "label", "R_VALUE"]).drop_nulls()
    y = df["label"].to_numpy()
    score = df["R_VALUE"].to_numpy()
    groups = df["arpnum"].to_numpy()
    print(f"sun2022 fold 1: {df.height} records, {np.unique(groups).size} regions, "
          f"n_boot={args.n_boot}")
    cases = {
        "true_skill_statistic": (M.true_skill_statistic, (y, score > R_VALUE_THRESHOLD)),
        "roc_auc": (M.roc_auc, (y, score)),
    }
    result = []
    for name, (fn, arrays) in cases.items():
        fn(*arrays)  # warm-up: lazy imports inside the metric
        single = _time(lambda fn=fn, arrays=arrays: fn(*arrays), repeat=20)
        t0 = time.perf_counter()
        res = M.bootstrap_by_region(fn, groups, *arrays, n_boot=args.n_boot, seed=0)
        boot = time.perf_counter() - t0
        rows = M.bootstrap_by_region(fn, np.arange(len(y)), *arrays, n_boot=args.n_boot, seed=0)
        print(
            f"bootstrap_by_region({name}): {boot / (args.n_boot * single):.2f}x baseline "
            f"({boot:.2f} s vs {args.n_boot} x {single * 1e3:.2f} ms single call); "
            f"estimate {res.estimate:.3f} [{res.low:.3f}, {res.high:.3f}], "
            f"width by region / by row: {(res.high - res.low) / (rows.high - rows.low):.2f}x"
        )
        result.append(f"{name}_boot_s={boot:.2f} {name}_ratio_vs_single="
                      f"{boot / (args.n_boot * single):.2f} {name}_width_region_vs_row="
                      f"{(res.high - res.low) / (rows.high - rows.low):.2f}")
    print(f"RESULT n_boot={args.n_boot} " + " ".join(result))


if __name__ == "__main__":
    main()
