"""A year of hourly NRT forecasts: the `backfill` flow for 2023 on the real SHARP NRT stream.

End to end, as an operator runs it, with a local Prefect server on 127.0.0.1
(`deployments.server.local_server`; no network):

1. ingest the shared NRT export (1.08 M records, 2021-05 .. 2023-12, every region on the
   disk; ``hmi.sharp_720s_nrt``), its HARP map and the NCEI flare list into a temporary
   store (`flows.ingest.ingest_files`);
2. hourly ``forecast`` flows at the busiest hour of the year and the hours after (snapshot
   -> forecasts of every region -> ForecastStore -> scoreboard JSON -> page), end to end:
   the medians of three with the page and three without (``--forecast-only`` stops here);
3. ``backfill`` of every hourly issue time of the year (8,760) on a `DaskTaskRunner`
   (LocalCluster of ``--workers`` processes, ``--batch-size`` issue times per task), as
   served (a record is used from its ``available_at`` on), published to the forecast store,
   the scoreboard JSON and the page; the page an hourly run draws after that year of
   service (``page_year_s``, median of three); then the same backfill again (cached
   compute);
4. ``flareflow score`` of the year (the CLI, so the `evaluate` flow under the same server);
5. scaling: the backfill of ``--scaling-days`` days on 1 and on 2 worker processes (fresh
   copies of the store, so nothing is cached).

Model time is the time inside `flare_core.forecasting.forecast_many` (each task's
``seconds``, summed over the batches, so over the workers); the publish time is the same
upserts and JSON writes done here without Prefect (the plain baseline, one process); the
Prefect time is the rest of the wall time: ``backfill_s - (model_s + publish_s) / workers``
(task and flow runs, state and result round trips, Dask scheduling, waiting). The baseline
is a plain loop over the same batches in this process (snapshot read, `forecast_many`, upsert,
JSON), so ``backfill flow / plain`` is the ratio to read. The model is ``--model`` (default
``out/bench_nrt/model``: trained on 2021-05 .. 2022-12, 2023 validation year).

Usage::

    .venv/bin/python benchmarks/bench_nrt_backfill.py [--model DIR] [--year 2023]

Prints figures and ends with one ``RESULT`` line; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the CLI and Dask workers use
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "sharp_nrt"


def _ingest(store: Path, data: Path, harp_map: Path, flares: Path) -> float:
    from flows.ingest import ingest_files

    t0 = time.perf_counter()
    ingest_files([str(harp_map), str(data), str(flares)], str(store))
    return time.perf_counter() - t0


def _busiest_hour(store: Path, start: datetime, end: datetime) -> tuple[datetime, int]:
    """The issue time of the year with the most regions fresh (record < 6 h old)."""
    import polars as pl

    from flare_core.store import Store

    recs = Store(store).read_sharp(start=start, end=end).select("harpnum", "t_rec")
    per_h = (recs.with_columns(pl.col("t_rec").dt.truncate("6h").alias("b"))
             .group_by("b").agg(pl.col("harpnum").n_unique().alias("n")).sort("n"))
    best = per_h.row(-1, named=True)
    return best["b"] + timedelta(hours=6), int(best["n"])


def _plain(store: Path, model: str, times: list[datetime], batch_size: int,
           history_h: float) -> dict[str, float]:
    """The flows' flare_core calls without Prefect, one process: snapshot read,
    `forecast_many` per batch, upsert, scoreboard JSON (scratch outputs). Seconds."""
    import polars as pl

    from flare_core.errors import DataGapError
    from flare_core.forecasting import forecast_many
    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.publish.scoreboard_json import write_scoreboard_json
    from flare_core.store import Store
    from tasks.common import file_sha256
    from tasks.forecasting import load_bundle

    out = {"read": 0.0, "model": 0.0, "upsert": 0.0, "json": 0.0, "rows": 0.0}
    t0 = time.perf_counter()
    bundle = load_bundle(model, file_sha256(Path(model) / "model.json"))
    st = Store(store)
    sharp = st.read_sharp(start=times[0] - timedelta(hours=history_h), end=times[-1])
    flares = st.read_flares(end=times[-1]).filter(pl.col("peak_time") < times[-1])
    out["read"] = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="bench-nrt-plain-"))
    fs = ForecastStore(tmp / "forecasts.duckdb")
    for i in range(0, len(times), batch_size):
        t0 = time.perf_counter()
        try:
            rows = forecast_many(bundle, sharp, flares, times[i:i + batch_size], headline=True)
        except DataGapError:
            continue
        t1 = time.perf_counter()
        fs.upsert(rows)
        t2 = time.perf_counter()
        write_scoreboard_json(rows, tmp / "json", mode="historical")
        t3 = time.perf_counter()
        out["model"] += t1 - t0
        out["upsert"] += t2 - t1
        out["json"] += t3 - t2
        out["rows"] += rows.height
    shutil.rmtree(tmp, ignore_errors=True)
    out["total"] = out["read"] + out["model"] + out["upsert"] + out["json"]
    return out


def _task_profile(flow_run_id) -> dict[str, dict[str, float]]:
    """Per task name: count and summed run time (s) of the task runs under a flow run (and
    its sub-flow), read from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    out: dict[str, dict[str, float]] = {}
    with get_client(sync_client=True) as client:
        runs = [flow_run_id] + [r.id for r in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(
                any_=[flow_run_id])))]
        # a sub-flow is linked to its parent through a task run; read the runs of each flow
        from prefect.client.schemas.filters import FlowRunFilterId, TaskRunFilter

        seen = set()
        offset = 0
        while True:
            page = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=runs)), task_run_filter=TaskRunFilter(),
                limit=200, offset=offset)
            if not page:
                break
            offset += len(page)
            for tr in page:
                if tr.id in seen:
                    continue
                seen.add(tr.id)
                name = tr.name.split("-")[0]
                d = out.setdefault(name, {"n": 0, "run_s": 0.0})
                d["n"] += 1
                d["run_s"] += tr.total_run_time.total_seconds()
    return out


def _backfill(store: Path, model: str, times: list[datetime], *, batch_size: int,
              workers: int, page: bool = True) -> tuple[float, dict]:
    from flows.backfill import backfill

    t0 = time.perf_counter()
    state = backfill(times[0], times[-1], str(store), model, batch_size=batch_size,
                     n_workers=workers, dask_processes=True, page=page, return_state=True)
    wall = time.perf_counter() - t0
    res = state.result()
    res["flow_run_id"] = state.state_details.flow_run_id
    return wall, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=SHARED / "hmi_sharp_720s_nrt_2021-05_2023-12.csv.gz")
    ap.add_argument("--flares", type=Path,
                    default=REPO / "data/flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz")
    ap.add_argument("--harp-map", type=Path, default=REPO / "data/sharp_nrt/harp_noaa_nrt.txt")
    ap.add_argument("--model", default=str(REPO / "out" / "bench_nrt" / "model"))
    ap.add_argument("--year", type=int, default=2023)
    ap.add_argument("--days", type=int, default=None, help="only the first DAYS of the year")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="issue times per task (default: the flow's)")
    ap.add_argument("--scaling-days", type=int, default=28, help="0: no scaling runs")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain baseline")
    ap.add_argument("--forecast-only", action="store_true",
                    help="only the hourly forecasts at the busiest hour (no year backfill)")
    ap.add_argument("--out", type=Path, default=None, help="work dir (default: a temp dir)")
    args = ap.parse_args()
    if not (Path(args.model) / "model.json").is_file():
        sys.exit(f"no model.json in {args.model}: train one (see benchmarks/"
                 "bench_nrt_train_predict.py) or pass --model")
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-nrt-backfill-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(work / ".prefect"))
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)

    from deployments.server import local_server

    start = datetime(args.year, 1, 1, tzinfo=UTC)
    end = (start + timedelta(days=args.days) if args.days
           else datetime(args.year + 1, 1, 1, tzinfo=UTC)) - timedelta(hours=1)
    t0 = time.perf_counter()
    with local_server() as api:
        from flows.backfill import DEFAULT_BATCH_SIZE, issue_times
        from flows.forecast import forecast, history_h, model_ref
        from flows.layout import Layout

        server_s = time.perf_counter() - t0
        batch_size = args.batch_size or DEFAULT_BATCH_SIZE
        ingest_s = _ingest(store, args.data, args.harp_map, args.flares)
        times = issue_times(start, end)
        print(f"Prefect server {api} up in {server_s:.1f} s; ingest (flow) {ingest_s:.1f} s; "
              f"model {args.model}")

        # -- one hourly forecast with a running server ----------------------------------
        busiest, n_regions = _busiest_hour(store, start, end + timedelta(hours=1))
        t0 = time.perf_counter()
        forecast(busiest - timedelta(hours=1), str(store), args.model)  # imports, model load
        cold = time.perf_counter() - t0
        # three consecutive hours with the page, three more without (a new issue time each:
        # the same one again would be a cached compute); the medians are the figures
        with_page, bare_runs = [], []
        for h in range(6):
            t0 = time.perf_counter()
            one = forecast(busiest + timedelta(hours=h), str(store), args.model, page=h < 3)
            (with_page if h < 3 else bare_runs).append((time.perf_counter() - t0, one))
        forecast_s, one = sorted(with_page, key=lambda r: r[0])[1]
        nopage_s, bare = sorted(bare_runs, key=lambda r: r[0])[1]
        print(f"forecast flow at {busiest:%Y-%m-%d %H:%M} and the next 2 hours "
              f"({one['regions']} regions, {one['rows']} rows): median {forecast_s:.2f} s end "
              f"to end ({', '.join(f'{r[0]:.2f}' for r in with_page)}; first in the process "
              f"{cold:.2f} s); target < 3 s. Without the page (the 3 hours after): median "
              f"{nopage_s:.2f} s ({', '.join(f'{r[0]:.2f}' for r in bare_runs)}), of which "
              f"model {bare['model_seconds']:.2f} s, so snapshot + publish + Prefect "
              f"{nopage_s - bare['model_seconds']:.2f} s; the page (plots, HTML, artifacts) "
              f"{forecast_s - nopage_s:.2f} s")

        if not args.forecast_only:
            # -- the year -------------------------------------------------------------------
            hist = history_h(model_ref(Layout.of(store), args.model))
            backfill_s, bf = _backfill(store, args.model, times, batch_size=batch_size,
                                       workers=args.workers)
            model_s = bf["model_seconds"]
            print(f"backfill {len(times)} hourly issue times, {args.workers} worker processes, "
                  f"batches of {batch_size} ({-(-len(times) // batch_size)} tasks): "
                  f"{backfill_s:.1f} s; {bf['issue_times']} issue times published "
                  f"({bf['rows']} rows), {len(bf['gaps'])} without a fresh record, "
                  f"{len(bf['failed_regions'])} region forecasts left out; target < 300 s")
            prof = _task_profile(bf["flow_run_id"])
            for name, d in sorted(prof.items()):
                print(f"  task {name:22s} {d['n']:5.0f} runs, {d['run_s']:7.1f} s summed run time")
            plain = None if args.no_plain else _plain(store, args.model, times, batch_size, hist)
            publish_s = 0.0
            if plain is not None:
                publish_s = plain["upsert"] + plain["json"] + plain["read"]
                print(f"  plain loop, one process: {plain['total']:.1f} s (snapshot read "
                      f"{plain['read']:.1f} s, model {plain['model']:.1f} s, upsert "
                      f"{plain['upsert']:.1f} s, JSON {plain['json']:.1f} s); backfill flow "
                      f"{backfill_s / max(plain['total'], 1e-9):.2f}x plain")
            if plain is None:  # the publish tasks' own run time
                publish_s = prof.get("publish_forecasts", {}).get("run_s", 0.0)
            # both the compute and the publish tasks run on the workers
            prefect_s = backfill_s - (model_s + publish_s) / args.workers
            print(f"  model time (flare_core forecast_many) {model_s:.1f} s summed over workers "
                  f"(~{model_s / args.workers:.1f} s of wall); publish "
                  f"{'(plain, one process)' if plain else '(task run time)'} {publish_s:.1f} s "
                  f"(~{publish_s / args.workers:.1f} s of wall); "
                  f"Prefect + scheduling + page the rest: {prefect_s:.1f} s")

            # the page an hourly run draws after a year of service (store of the whole year)
            from flare_core.issuing import publish_page

            year_page = []
            for k in range(3):
                t0 = time.perf_counter()
                publish_page(Layout.of(store).forecasts, work / f"page-{k}")
                year_page.append(time.perf_counter() - t0)
            page_year_s = sorted(year_page)[1]
            print(f"the page after the year (forecast store of {len(times)} issue times, "
                  f"plots of the last 27 days): median {page_year_s:.2f} s "
                  f"({', '.join(f'{v:.2f}' for v in year_page)})")

            cached_s, again = _backfill(store, args.model, times, batch_size=batch_size,
                                        workers=args.workers)
            print(f"re-run (cached compute; {again['already_published']} of {again['batches']} "
                  f"batches found published as computed, not re-published): {cached_s:.1f} s; "
                  f"target < 60 s")

            # -- score ------------------------------------------------------------------------
            t0 = time.perf_counter()
            proc = subprocess.run([str(Path(sys.executable).with_name("flareflow")), "score",
                                   "--start", times[0].isoformat(), "--end", times[-1].isoformat(),
                                   "--store", str(store), "--model", args.model, "--json"],
                                  capture_output=True, text=True, cwd=REPO)
            score_s = time.perf_counter() - t0
            if proc.returncode:
                print(f"flareflow score failed ({proc.returncode}): {proc.stderr[-2000:]}")
            else:
                scores = json.loads(proc.stdout)
                print(f"flareflow score: {score_s:.1f} s, {scores['rows']} rows of "
                      f"{scores['issue_times']} issue times")
                for name, m in sorted(scores.get("models", {}).items()):
                    t = m.get("p_m24", m) if isinstance(m, dict) else {}
                    shown = ", ".join(f"{k}={t[k]:.3f}" for k in ("tss", "bss", "auc")
                                      if isinstance(t.get(k), float))
                    print(f"  {name:20s} {shown}")

            # -- scaling 1 -> 2 workers ------------------------------------------------------
            scale = {}
            if args.scaling_days:
                sub = times[:24 * args.scaling_days]
                for n in (1, 2):
                    copy = work / f"store-{n}w"
                    shutil.rmtree(copy, ignore_errors=True)
                    shutil.copytree(store, copy, ignore=shutil.ignore_patterns(
                        "work", ".prefect-results", "published"))
                    scale[n], _ = _backfill(copy, args.model, sub, batch_size=batch_size,
                                            workers=n, page=False)
                    shutil.rmtree(copy, ignore_errors=True)
                print(f"scaling, {len(sub)} issue times: 1 worker {scale[1]:.1f} s, 2 workers "
                      f"{scale[2]:.1f} s ({scale[1] / max(scale[2], 1e-9):.2f}x)")
    if args.forecast_only:
        print(f"RESULT forecast_s={forecast_s:.2f} forecast_nopage_s={nopage_s:.2f} "
              f"regions={one['regions']}")
    else:
        print(f"RESULT forecast_s={forecast_s:.2f} forecast_nopage_s={nopage_s:.2f} "
              f"backfill_hours={len(times)} "
              f"backfill_s={backfill_s:.1f} cached_s={cached_s:.1f} model_s={model_s:.1f} "
              f"publish_s={publish_s:.1f} prefect_s={prefect_s:.1f} "
              f"page_year_s={page_year_s:.2f} batch_size={batch_size} "
              f"workers={args.workers}"
              + (f" scaling_2v1={scale[1] / max(scale[2], 1e-9):.2f}" if scale else ""))
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
