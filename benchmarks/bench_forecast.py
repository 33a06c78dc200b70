"""Forecast and backfill speed with Prefect, against the same flare_core calls without it.

Measures, with a local Prefect server running (started here on 127.0.0.1; no network):

1. one hourly ``forecast`` flow (snapshot -> forecasts of every region -> ForecastStore
   -> scoreboard JSON -> plots/page -> artifacts), end to end, for ~20 regions; and the
   same forecast through `tasks.forecasting.forecast_batch_plain` (no Prefect) in this
   process, so that the Prefect overhead is reported apart from model time;
2. a ``backfill`` of ``--days`` days of hourly issue times on a `DaskTaskRunner`
   (LocalCluster, ``--workers`` processes; each task one `forecast_many` call for a batch
   of ``--batch-size`` hours, default the flow's `flows.backfill.DEFAULT_BATCH_SIZE`),
   against the plain loop over the same batches; and, on the first batch, `forecast_many`
   against calling `forecast_at` per issue time.

The hourly forecast is run ``--repeats`` times after a first (cold) run and the median is
reported (the machine is shared; target < 3 s end to end with a running server).

Data: the bundled sun2022 SHARP records of the window (real) and the NCEI flare list. At
most ~10 regions are in the sun2022 files at a time, so each real region's records are
copied under ``--copies`` new HARP numbers (harpnum + k * 1 000 000) to reach the load of an
active Sun (~20 regions); the copies have no flare history. The model is ``--model`` or one
trained here with the quick configuration on records before the window (not timed).

Usage::

    .venv/bin/python benchmarks/bench_forecast.py [--out DIR] [--model DIR] [--days 30]

Runs with ``OMP_NUM_THREADS=1`` unless set, as the CLI and Dask's worker processes do: on a
busy 2-core machine torch's default 2 OpenMP threads made each ``forecast_at`` ~40x slower
(1.3 s vs 0.03 s, 5 regions). Run with ``OMP_NUM_THREADS=2`` to see it.

Prints figures and ratios and ends with one ``RESULT`` line; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# one OpenMP thread, as the CLI and Dask workers use (see the module docstring)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parents[1]
START = datetime(2014, 10, 1, tzinfo=UTC)


def _prepare(out: Path, model: str | None, start: datetime, end: datetime,
             copies: int) -> tuple[Path, str]:
    """Base store with the bundled data (+ quick model), and the replicated bench store."""
    import polars as pl

    from flare_core.store import Store
    from flows.ingest import ingest_files
    from flows.train import train

    base = out / "base"
    data = REPO / "data"  # the definitive-series files of the sun2022 folds (2010-2018)
    ingest_files([str(data / "harp_noaa" / "all_harps_with_noaa_ars.txt"),
                  str(data / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"),
                  *map(str, sorted((data / "sharp").glob("sun2022_sharp_m24h_fold*.csv.gz")))],
                 str(base))
    if model is None:
        model = train(None, start - timedelta(days=7), str(base), quick=True)
    bench = out / "bench"
    shutil.rmtree(bench, ignore_errors=True)
    src = Store(base)
    dst = Store(bench)
    series = "hmi.sharp_cea_720s"  # the sun2022 folds' series (a reused base may hold others)
    dst.write_harp_map(src.read_harp_map(series), series=series)
    sharp = src.read_sharp(start=start - timedelta(days=2), end=end, series=series)
    dst.write_sharp(pl.concat([sharp.with_columns(pl.col("harpnum") + k * 1_000_000)
                               for k in range(copies)]))
    dst.write_flares(src.read_flares(end=end, series=series))
    return bench, model


def _fresh_regions(store: Path, t: datetime, fresh_h: float = 6.0) -> int:
    import polars as pl

    from flare_core.store import Store

    recs = Store(store).read_sharp(start=t - timedelta(hours=fresh_h), end=t)
    return recs.filter(pl.col("t_rec") > t - timedelta(hours=fresh_h))["harpnum"].n_unique()


def _plain_forecasts(store: Path, model: str, times: list[datetime], *, page: bool,
                     batch_size: int = 24) -> dict[str, float]:
    """The same flare_core calls as the flows, without Prefect: read the store, forecast_many
    per batch of issue times, upsert into a (scratch) ForecastStore, scoreboard JSON, page.
    Seconds."""
    import polars as pl

    from flare_core.errors import DataGapError
    from flare_core.forecasting import forecast_many
    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.publish.page import publish_latest_page
    from flare_core.publish.scoreboard_json import write_scoreboard_json
    from flare_core.store import Store
    from tasks.common import file_sha256
    from tasks.forecasting import load_bundle

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    bundle = load_bundle(model, file_sha256(Path(model) / "model.json"))
    need = timedelta(hours=bundle.lookback_h() + bundle.config.freshness_h)
    st = Store(store)
    sharp = st.read_sharp(start=times[0] - need, end=times[-1])
    flares = st.read_flares(end=times[-1]).filter(pl.col("peak_time") < times[-1])
    out["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    frames = []
    for i in range(0, len(times), batch_size):
        try:
            frames.append(forecast_many(bundle, sharp, flares, times[i:i + batch_size]))
        except DataGapError:
            pass
    rows = pl.concat(frames, how="diagonal_relaxed")
    out["model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-plain-"))
    fs = ForecastStore(tmp / "forecasts.duckdb")
    fs.upsert(rows)
    write_scoreboard_json(rows, tmp / "json")
    if page:
        publish_latest_page(fs, tmp / "page")
    out["publish"] = time.perf_counter() - t0
    out["total"] = out["read"] + out["model"] + out["publish"]
    out["rows"] = rows.height
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "flareflow-bench")
    ap.add_argument("--model", default=None, help="MODEL_DIR (default: train a quick one)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--copies", type=int, default=4, help="copies of each real region")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="issue times per task (default: the flow's)")
    ap.add_argument("--repeats", type=int, default=3, help="warm hourly forecasts timed")
    args = ap.parse_args()
    (args.out / ".prefect").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(args.out / ".prefect"))

    from deployments.server import local_server

    start, end = START, START + timedelta(days=args.days)
    with local_server() as api:
        from flows.backfill import DEFAULT_BATCH_SIZE, backfill, batch_size_for, issue_times
        from flows.forecast import forecast
        from tasks.forecasting import load_bundle

        t0 = time.perf_counter()
        store, model = _prepare(args.out, args.model, start, end, args.copies)
        print(f"setup (ingest, model, bench store): {time.perf_counter() - t0:.1f} s; "
              f"Prefect API {api}")
        times = issue_times(start, end - timedelta(hours=1), 1.0)
        args.batch_size = batch_size_for(len(times), args.batch_size or DEFAULT_BATCH_SIZE,
                                         args.workers)
        # the busiest hour of the window gives the "active Sun" forecast
        busiest = max(times[::6], key=lambda t: _fresh_regions(store, t))
        n_regions = _fresh_regions(store, busiest)
        load_bundle.cache_clear()

        # -- one hourly forecast ------------------------------------------------------
        t0 = time.perf_counter()
        forecast(busiest - timedelta(hours=1), str(store), model)  # cold: imports, model load
        cold = time.perf_counter() - t0
        # each run a new issue time (the same one again would be a cached compute)
        hours = iter(busiest + timedelta(hours=k) for k in range(2 * max(1, args.repeats)))
        runs = []
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            res = forecast(next(hours), str(store), model)
            runs.append(time.perf_counter() - t0)
        warm = sorted(runs)[len(runs) // 2]
        bare_runs = []
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            bare = forecast(next(hours), str(store), model, page=False)
            bare_runs.append(time.perf_counter() - t0)
        nopage = sorted(bare_runs)[len(bare_runs) // 2]
        p_bare = _plain_forecasts(store, model, [busiest], page=False)
        p = p_one = _plain_forecasts(store, model, [busiest], page=True)
        print(f"forecast flow, {n_regions} regions ({res['rows']} rows): {warm:.2f} s end to end"
              f" (median of {len(runs)}: {', '.join(f'{r:.2f}' for r in runs)} s; first run in "
              f"the process {cold:.2f} s); target < 3 s")
        print(f"  same flare_core calls without Prefect: {p['total']:.2f} s (read "
              f"{p['read']:.2f} s, model {p['model']:.2f} s, publish {p['publish']:.2f} s, "
              f"{p['rows']:.0f} rows); Prefect overhead {warm - p['total']:+.2f} s; flow "
              f"{warm / max(p['total'], 1e-9):.2f}x plain")
        print(f"  without the page (page=False): flow {nopage:.2f} s (median of "
              f"{len(bare_runs)}), of which model {bare['model_seconds']:.2f} s; plain "
              f"{p_bare['total']:.2f} s (read {p_bare['read']:.2f} s, model "
              f"{p_bare['model']:.2f} s, publish {p_bare['publish']:.2f} s); Prefect "
              f"overhead {nopage - p_bare['total']:+.2f} s; the page adds "
              f"{warm - nopage:.2f} s to the flow")

        # -- backfill -------------------------------------------------------------------
        t0 = time.perf_counter()
        bf = backfill(times[0], times[-1], str(store), model, batch_size=args.batch_size,
                      n_workers=args.workers, dask_processes=True, page=False)
        flow_s = time.perf_counter() - t0
        print(f"backfill {len(times)} hourly issue times on Dask ({args.workers} worker "
              f"processes, batches of {args.batch_size}): {flow_s:.1f} s, {bf['rows']} rows "
              f"published, {len(bf['gaps'])} hours without data; model time inside tasks "
              f"{bf['model_seconds']:.1f} s (summed over workers); target < 600 s")
        p = _plain_forecasts(store, model, times, page=False, batch_size=args.batch_size)
        print(f"  plain loop, one process: {p['total']:.1f} s (model {p['model']:.1f} s, "
              f"publish {p['publish']:.1f} s, {p['rows']:.0f} rows); backfill flow "
              f"{flow_s / max(p['total'], 1e-9):.2f}x plain ({flow_s - p['total']:+.1f} s)")
        t0 = time.perf_counter()
        backfill(times[0], times[-1], str(store), model, batch_size=args.batch_size,
                 n_workers=args.workers, dask_processes=True, page=False, scoreboard=False)
        cached_s = time.perf_counter() - t0
        print(f"re-run of the same backfill (cached compute, re-publish): {cached_s:.1f} s")
        many_s, at_s = _batch_many_vs_at(store, model, times[:args.batch_size])
        print(f"one batch of {min(args.batch_size, len(times))} issue times: forecast_many "
              f"{many_s:.2f} s, forecast_at per issue time {at_s:.2f} s "
              f"({at_s / max(many_s, 1e-9):.1f}x)")
    print(f"RESULT forecast_s={warm:.2f} forecast_plain_s={p_one['total']:.2f} "
          f"forecast_nopage_s={nopage:.2f} forecast_nopage_plain_s={p_bare['total']:.2f} "
          f"page_s={warm - nopage:.2f} "
          f"regions={n_regions} backfill_hours={len(times)} backfill_s={flow_s:.1f} "
          f"cached_s={cached_s:.1f} model_s={bf['model_seconds']:.1f} "
          f"batch_size={args.batch_size} workers={args.workers}")


def _batch_many_vs_at(store: Path, model: str, times: list[datetime]) -> tuple[float, float]:
    """Seconds of `forecast_many` on ``times`` and of `forecast_at` called per issue time."""
    from flare_core.errors import DataGapError
    from flare_core.forecasting import forecast_at, forecast_many
    from flare_core.store import Store
    from tasks.common import file_sha256
    from tasks.forecasting import load_bundle

    bundle = load_bundle(model, file_sha256(Path(model) / "model.json"))
    need = timedelta(hours=bundle.lookback_h() + bundle.config.freshness_h)
    st = Store(store)
    sharp = st.read_sharp(start=times[0] - need, end=times[-1])
    flares = st.read_flares(end=times[-1])
    t0 = time.perf_counter()
    try:
        forecast_many(bundle, sharp, flares, times)
    except DataGapError:
        pass
    many_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in times:
        try:
            forecast_at(bundle, sharp, flares, t)
        except DataGapError:
            pass
    return many_s, time.perf_counter() - t0


if __name__ == "__main__":
    main()
