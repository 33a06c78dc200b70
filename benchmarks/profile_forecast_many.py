"""Model time of one week of hourly NRT forecasts: `forecast_many` in-process, with a breakdown.

The backfill's model part (`flare_core.forecasting.forecast_many`, one call per batch of 168
hourly issue times) on the real NRT stream, without Prefect or Dask: the store is built once
from the shared NRT export (`flare_core.sources.load_file` and `flare_core.store.Store`, what
`flows.ingest.ingest_files` runs; kept under ``--store`` and reused), the year's snapshot is
read once as the backfill reads it (`flare_core.issuing.read_snapshot`, from ``history_h``
before the first issue time), the model is loaded once, then `issue_forecasts` (one
`forecast_many` call, headline rows and region isolation, as each backfill task) runs over
the week ``--repeat`` times. The breakdown is the cumulative time of the main steps under
cProfile (``--profile``; cProfile slows Python-level code, so its total is above the plain
timing); ``--save FILE`` writes the rows (Parquet) and ``--compare FILE`` checks them against
rows saved earlier (identical, or the largest absolute difference per column).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/profile_forecast_many.py \
        [--model out/bench_nrt/model] [--week 2023-12-10] [--profile] [--save rows.parquet]

Prints figures and ends with one ``RESULT`` line; asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the CLI and Dask workers use

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "sharp_nrt"

#: (label, function name as cProfile prints it) of the steps in the breakdown
STEPS = (
    ("build_model_dataset", r"\(build_model_dataset\)"),
    ("predict_records", r"\(predict_records\)"),
    ("  survival chain", r"survival_chain.py:\d+\(predict\)"),
    ("    flare-class forest", r"flare_class.py:\d+\(predict_proba\)"),
    ("    cox-time curves", r"cox_time.py:\d+\(predict_survival\)"),
    ("    lifetime warning", r"survival_chain.py:\d+\(warn\)"),
    ("      warning SVM", r"warning.py:\d+\(predict\)"),
    ("  defn", r"defn.py:\d+\(predict_proba\)"),
    ("  lstm", r"lstm.py:\d+\(predict_proba\)"),
    ("  baselines", r"baselines.py:\d+\(predict_proba\)"),
    ("_published_rows", r"\(_published_rows\)"),
    ("  _rebased_survival", r"\(_rebased_survival\)"),
    ("  isolate_invalid_regions", r"\(isolate_invalid_regions\)"),
    ("  project_class_probabilities", r"\(project_class_probabilities\)"),
    ("_failures", r"\(_failures\)"),
    ("conform_forecasts", r"\(conform_forecasts\)"),
)


def build_store(store: Path, paths: list[Path]) -> float:
    """Ingest ``paths`` (HARP map, SHARP export, flare list) into ``store``; seconds."""
    from flare_core.sources import load_file
    from flare_core.store import Store

    t0 = time.perf_counter()
    st = Store(store)
    for p in paths:
        res = load_file(p)
        {"sharp": st.write_sharp, "flares": st.write_flares,
         "harp_map": st.write_harp_map}[res.kind](res.frame)
    return time.perf_counter() - t0


def _cumulative(stats: pstats.Stats, pattern: str) -> float:
    import re

    rx = re.compile(pattern)
    total = 0.0
    for (file, line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        if rx.search(f"{Path(file).name}:{line}({name})"):
            total += ct
    return total


def compare(rows, path: Path) -> str:
    """'identical' or the largest absolute difference per differing column."""
    import numpy as np
    import polars as pl

    old = pl.read_parquet(path)
    if old.equals(rows):
        return "identical"
    if old.shape != rows.shape or old.columns != rows.columns:
        return f"shape/columns differ: {old.shape} vs {rows.shape}"
    out = []
    for c in rows.columns:
        a, b = old[c], rows[c]
        if a.equals(b):
            continue
        if a.dtype == pl.List(pl.Float64):
            if (a.list.len() != b.list.len()).any():
                out.append(f"{c}: list lengths differ")
                continue
            a, b = a.explode(), b.explode()
        if a.dtype.is_float():
            if (a.is_null() != b.is_null()).any():
                out.append(f"{c}: nulls differ")
                continue
            d = np.nanmax(np.abs(a.drop_nulls().to_numpy() - b.drop_nulls().to_numpy()))
            out.append(f"{c}: max |diff| {d:.3g}")
        else:
            out.append(f"{c}: {int((a != b).sum())} values differ")
    return "; ".join(out) or "identical"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "out" / "bench_nrt" / "model"))
    ap.add_argument("--store", type=Path, default=Path("/tmp/flareflow-profile-store"))
    ap.add_argument("--data", type=Path,
                    default=SHARED / "hmi_sharp_720s_nrt_2021-05_2023-12.csv.gz")
    ap.add_argument("--harp-map", type=Path, default=REPO / "data/sharp_nrt/harp_noaa_nrt.txt")
    ap.add_argument("--flares", type=Path,
                    default=REPO / "data/flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz")
    ap.add_argument("--week", default="2023-12-10", help="first day (UTC) of the 168 hours")
    ap.add_argument("--year", type=int, default=2023, help="year of the snapshot read")
    ap.add_argument("--year-run", action="store_true",
                    help="also time every week of the year (53 batches of 168 hours)")
    ap.add_argument("--save-year", type=Path, default=None,
                    help="write the year's rows (Parquet; with --year-run)")
    ap.add_argument("--compare-year", type=Path, default=None,
                    help="compare the year's rows with saved ones (with --year-run)")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs (best is reported)")
    ap.add_argument("--profile", action="store_true", help="one more run under cProfile")
    ap.add_argument("--top", type=int, default=0, help="print the TOP functions by tottime")
    ap.add_argument("--save", type=Path, default=None, help="write the rows (Parquet)")
    ap.add_argument("--compare", type=Path, default=None, help="compare with saved rows")
    args = ap.parse_args()
    if not (Path(args.model) / "model.json").is_file():
        sys.exit(f"no model.json in {args.model}")

    from flare_core.forecasting import ModelBundle
    from flare_core.issuing import issue_forecasts, read_snapshot

    if not (args.store / "sharp").exists():
        s = build_store(args.store, [args.harp_map, args.data, args.flares])
        print(f"store built in {s:.1f} s: {args.store}")
    bundle = ModelBundle.load(args.model)
    year0 = datetime(args.year, 1, 1, tzinfo=UTC)
    year1 = datetime(args.year + 1, 1, 1, tzinfo=UTC) - timedelta(hours=1)
    history = timedelta(hours=bundle.lookback_h() + float(bundle.config.freshness_h))
    t0 = time.perf_counter()
    sharp, flares = read_snapshot(args.store, year0 - history, year1)
    read_s = time.perf_counter() - t0
    start = datetime.fromisoformat(args.week).replace(tzinfo=UTC)
    times = [start + timedelta(hours=h) for h in range(168)]
    print(f"snapshot {sharp.height} SHARP records, {flares.height} flares read in "
          f"{read_s:.1f} s; week {times[0]:%Y-%m-%d} .. {times[-1]:%Y-%m-%d %H:%M}")

    issue_forecasts(bundle, sharp, flares, times[:2])  # warm-up: imports, first calls
    best = float("inf")
    issued = None
    for _ in range(max(args.repeat, 1)):
        t0 = time.perf_counter()
        issued = issue_forecasts(bundle, sharp, flares, times)
        best = min(best, time.perf_counter() - t0)
    rows = issued.rows
    print(f"forecast_many over {len(times)} issue times: {best:.2f} s "
          f"({rows.height} rows, {issued.failed.height} region forecasts left out, "
          f"{len(issued.gaps)} gaps)")
    year_s = None
    if args.year_run:
        hours = [year0 + timedelta(hours=h) for h in range(int((year1 - year0) / timedelta(hours=1)) + 1)]
        per_week, n_rows, parts = [], 0, []
        for i in range(0, len(hours), 168):
            t0 = time.perf_counter()
            part = issue_forecasts(bundle, sharp, flares, hours[i:i + 168]).rows
            per_week.append(time.perf_counter() - t0)
            n_rows += part.height
            if args.save_year or args.compare_year:
                parts.append(part)
        if parts:
            import polars as pl

            year_rows = pl.concat(parts)
            if args.save_year:
                year_rows.write_parquet(args.save_year)
            if args.compare_year:
                print(f"year rows vs {args.compare_year}: {compare(year_rows, args.compare_year)}")
        year_s = sum(per_week)
        slow = sorted(range(len(per_week)), key=per_week.__getitem__)[-3:]
        print(f"year {args.year}: {len(hours)} issue times, {len(per_week)} batches, "
              f"{n_rows} rows, {year_s:.1f} s in all (mean {year_s / len(per_week):.2f} s, "
              f"max {max(per_week):.2f} s a batch; slowest batches "
              + ", ".join(f"{hours[i * 168]:%m-%d} {per_week[i]:.2f} s" for i in slow) + ")")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        issue_forecasts(bundle, sharp, flares, times)
        prof.disable()
        stats = pstats.Stats(prof)
        print(f"under cProfile: {stats.total_tt:.2f} s; cumulative per step:")
        for label, pattern in STEPS:
            print(f"  {label:32s} {_cumulative(stats, pattern):7.2f} s")
        if args.top:
            stats.sort_stats("tottime").print_stats(args.top)
    if args.save:
        rows.write_parquet(args.save)
    verdict = ""
    if args.compare:
        verdict = compare(rows, args.compare)
        print(f"rows vs {args.compare}: {verdict}")
    print(f"RESULT week_s={best:.2f} issue_times={len(times)} rows={rows.height}"
          + (f" year_s={year_s:.1f}" if year_s is not None else "")
          + (f" same_rows={verdict == 'identical'}" if args.compare else ""))


if __name__ == "__main__":
    main()
