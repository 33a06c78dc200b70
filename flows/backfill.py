"""The ``backfill`` flow: forecasts for a range of issue times, in parallel on Dask.

The issue times ``start, start + cadence_h, ..., <= end`` (UTC) are cut into batches of
``batch_size`` (default `DEFAULT_BATCH_SIZE`, a week of hourly issue times, and smaller when
that leaves a worker idle); each batch is one `tasks.forecasting.compute_forecasts` task, one
`flare_core.forecasting.forecast_many` call that predicts each SHARP record once for all the
batch's hours (the model and the snapshot are loaded once per worker process), mapped over a
`prefect_dask.DaskTaskRunner`: a `LocalCluster` by default, or the scheduler at
``dask_address``. Each batch is upserted into the `ForecastStore` as soon as it is done, so
an interrupted backfill keeps the finished batches and a re-run recomputes nothing it has
already (cached on model, data and issue-time hashes) and re-publishes no batch the forecast
store already holds as computed (same rows and failed regions, a scoreboard document per
issue time and model; `_already_published`). A region whose inputs or outputs are
invalid at an issue time is left out of that issue time only (named in ``failed_regions``,
the store and the JSON; ``status`` "partial"); every hour still completes. The backfill
reads one SHARP series: ``series``, or the store's only one.

Dask worker processes talk to the Prefect API named by ``PREFECT_API_URL``; with no API
configured (a temporary in-process server) the local cluster uses threads, so that workers
do not each start a server of their own (``dask_processes`` overrides the choice).

The local cluster serves no dashboard: no Bokeh pages and no HTTP routes, and the HTTP
listener distributed always opens is on a random port of 127.0.0.1 (``dashboard_address=None``
alone still listens on 8787 with metrics and a proxy). In a deployment run ``dask_address``
is refused: where a served flow computes is the serving installation's choice, not a run's.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from flare_core.io import atomic_write
from flare_core.issuing import BATCH_ISSUE_TIMES
from flows.forecast import history_h, model_ref, run_status
from flows.layout import Layout
from tasks.common import FileRef, bind_storage, floor_hour, parse_utc, store_fingerprint
from tasks.features import snapshot_store
from tasks.forecasting import compute_forecasts, publish_forecasts, publish_page

__all__ = ["backfill", "issue_times", "batches", "batch_size_for", "dask_runner",
           "DEFAULT_BATCH_SIZE"]

#: Issue times per task (`flare_core.issuing.BATCH_ISSUE_TIMES`: one week).
DEFAULT_BATCH_SIZE = BATCH_ISSUE_TIMES


def issue_times(start: datetime, end: datetime, cadence_h: float = 1.0) -> list[datetime]:
    """``start, start + cadence_h, ...`` up to and including ``end`` (UTC)."""
    from flare_core.config import check_positive

    check_positive("cadence_h", cadence_h)
    t, out, step = parse_utc(start), [], timedelta(hours=cadence_h)
    end = parse_utc(end)
    while t <= end:
        out.append(t)
        t += step
    return out


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` in consecutive chunks of at most ``size``."""
    return [items[i:i + size] for i in range(0, len(items), max(1, int(size)))]


def batch_size_for(n_times: int, batch_size: int, n_workers: int) -> int:
    """``batch_size``, made smaller when there would be fewer batches than ``n_workers``
    (a 7-day backfill on 2 workers is two batches of 84 h, not one of 168)."""
    n_workers = max(1, int(n_workers))
    return max(1, min(int(batch_size), -(-int(n_times) // n_workers)))


def dask_runner(address: str | None = None, n_workers: int = 2,
                processes: bool | None = None):
    """A `DaskTaskRunner` on ``address`` or on a new `LocalCluster` of ``n_workers``.

    Worker processes of the local cluster are tied to this process: a watchdog thread
    (a worker preload) ends a worker within 0.25 s of its parent changing, so a SIGKILLed
    backfill leaves none behind reparented to PID 1 (distributed's parent-alive pipe did
    not end them: `tests/test_backfill_kill.py`). ``PR_SET_PDEATHSIG`` is no use here: it
    follows the *thread* that started the worker (distributed's watch thread).
    """
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    if processes is None:
        processes = bool(os.environ.get("PREFECT_API_URL"))
    _no_http_routes()
    kwargs: dict[str, Any] = {"processes": processes, "dashboard_address": "127.0.0.1:0",
                              "scheduler_kwargs": {"dashboard": False},
                              "silence_logs": logging.WARNING}
    if processes:
        # one thread per worker process, and torch/BLAS told so: no oversubscribed cores
        threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                    "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS")}
        # the preload is the text of a module (distributed runs it in each worker process)
        watchdog = f"""
import os, threading, time
BACKFILL_PID = {os.getpid()}
def dask_setup(worker):
    parent = os.getppid()
    if parent != BACKFILL_PID:
        try:  # started by another parent, or after the backfill died: is it alive?
            os.kill(BACKFILL_PID, 0)
        except ProcessLookupError:
            os._exit(1)
    def watch():
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(1)
    threading.Thread(target=watch, name="flareflow-orphan-watchdog", daemon=True).start()
"""
        kwargs.update(n_workers=n_workers, threads_per_worker=1, env=threads,
                      preload=[watchdog])
    else:
        kwargs.update(n_workers=1, threads_per_worker=n_workers)
    return DaskTaskRunner(cluster_kwargs=kwargs)


def _no_http_routes() -> None:
    """Empty the HTTP routes of Dask schedulers and workers started from this process (the
    only switch distributed has; its nannies pass the config on to the workers)."""
    import dask

    dask.config.set({"distributed.scheduler.http.routes": [],
                     "distributed.worker.http.routes": []})


def _check_not_deployment_dask(dask_address: str | None) -> None:
    from prefect.runtime import deployment

    if dask_address and deployment.id:
        from flare_core.errors import ConfigError

        raise ConfigError(f"dask_address={dask_address!r}: a deployment run computes where "
                          f"the serving installation says, not where a run asks")


def _already_published(forecasts: FileRef | None, failed: list[dict[str, Any]],
                       forecast_store: str, scoreboard_dir: str | None) -> bool:
    """Whether the forecast store already holds exactly this batch (its rows and failed
    regions, of its model versions, at its issue times; ``written_at`` aside) and, with
    ``scoreboard_dir``, a scoreboard document per issue time and model: a re-run of a
    cached batch then publishes nothing. Any difference (or doubt) means False."""
    import polars as pl

    from flare_core.issuing import failed_frame
    from flare_core.publish.forecast_store import FORECAST_KEY, ForecastStore

    if forecasts is None or not os.path.isfile(forecast_store):
        return False
    rows = pl.read_parquet(forecasts.path)
    times = rows["issue_time"].unique()
    versions = rows["model_version"].unique()
    fs = ForecastStore(forecast_store)
    lo, hi = times.min(), times.max() + timedelta(microseconds=1)
    stored = fs.read(start=lo, end=hi).filter(
        pl.col("issue_time").is_in(times.implode()) & pl.col("model_version").is_in(
            versions.implode()))
    if set(rows.columns) - set(stored.columns) or stored.height != rows.height:
        return False
    if not stored.select(rows.columns).sort(FORECAST_KEY).equals(rows.sort(FORECAST_KEY)):
        return False
    key = ["issue_time", "harpnum", "model_version", "reason"]
    bad = failed_frame(failed).select(key).sort(key)
    stored_bad = fs.read_failed(start=lo, end=hi).filter(
        pl.col("model_version").is_in(versions.implode())).select(key).sort(key)
    if not stored_bad.equals(bad):
        return False
    if scoreboard_dir is None:
        return True
    # one document per (issue time, model): <model>_<version>.<start>.<issue time>.json
    want = rows.group_by("issue_time").agg(pl.struct("model", "model_version").n_unique()
                                           .alias("n"))
    try:
        names = [e.name for e in os.scandir(scoreboard_dir) if e.name.endswith(".json")]
    except FileNotFoundError:
        return False
    have: dict[str, int] = {}
    for name in names:
        stamp = name[:-len(".json")].rsplit(".", 1)[-1]
        have[stamp] = have.get(stamp, 0) + 1
    return all(have.get(f"{t:%Y%m%dT%H%M}", 0) >= n for t, n in want.iter_rows())


#: Next to the page: what it was drawn from (`_page_inputs`), so that an unchanged page is
#: not drawn again.
PAGE_STAMP = ".drawn-from"


def _page_inputs(layout: Layout, store_root: str) -> str:
    """What the page is drawn from: the forecast store's content stamp and the data store's
    fingerprint (its flares and records)."""
    from flare_core.publish.forecast_store import ForecastStore

    return (ForecastStore(layout.forecasts).content_stamp() + "\n"
            + store_fingerprint(store_root) + "\n")


def _page(layout: Layout, store_root: str, log: Any) -> str:
    """Draw the page of the newest issue time, unless it was drawn from exactly what the
    stores hold now (a re-run of a published backfill: the same plots, seconds saved)."""
    index, stamp = layout.page / "index.html", layout.page / PAGE_STAMP
    inputs = _page_inputs(layout, store_root)
    try:
        if index.is_file() and stamp.read_text() == inputs:
            log.info("page %s is current (drawn from the same forecasts and data)", index)
            return str(index)
    except OSError:
        pass
    drawn = publish_page(str(layout.forecasts), str(layout.page))["page"]
    atomic_write(stamp, inputs)
    return drawn


@flow(name="backfill-batches")
def _run_batches(chunks: list[list[datetime]], model: FileRef, sharp: FileRef, flares: FileRef,
                 work_dir: str, forecast_store: str, scoreboard_dir: str | None,
                 store_root: str) -> dict[str, Any]:
    compute = bind_storage(compute_forecasts, store_root)
    futures = compute.map(chunks, model=model, sharp=sharp, flares=flares, out_dir=work_dir)
    totals: dict[str, Any] = {"rows": 0, "issue_times": 0, "gaps": {}, "model_seconds": 0.0,
                              "failed_regions": [], "batches": len(chunks),
                              "already_published": 0}
    published = []
    for fut in futures:
        res = fut.result()
        totals["rows"] += res["rows"]
        totals["issue_times"] += res["issue_times"]
        totals["gaps"].update(res["gaps"])
        totals["model_seconds"] += res["seconds"]
        totals["failed_regions"] += res["failed"]
        if _already_published(res["forecasts"], res["failed"], forecast_store,
                              scoreboard_dir):
            totals["already_published"] += 1
        elif res["forecasts"] is not None or res["failed"]:
            published.append(publish_forecasts.submit(res["forecasts"], forecast_store,
                                                      scoreboard_dir, mode="historical",
                                                      failed=res["failed"]))
    for p in published:
        p.result()
    return totals


@flow(name="backfill")
def backfill(start: datetime, end: datetime, store: str | None = None,
             model_dir: str | None = None, *, cadence_h: float = 1.0,
             batch_size: int = DEFAULT_BATCH_SIZE,
             dask_address: str | None = None, n_workers: int = 2,
             dask_processes: bool | None = None, scoreboard: bool = True,
             page: bool = True, series: str | None = None) -> dict[str, Any]:
    """Forecasts for every issue time from ``start`` to ``end`` (UTC) every ``cadence_h`` hours.

    Parameters
    ----------
    start, end
        First and last issue time (UTC; rounded down to the hour).
    store, model_dir
        Installation root and MODEL_DIR (default the latest trained).
    cadence_h
        Hours between issue times (default hourly).
    batch_size
        Issue times per task (at most; fewer when there would be fewer batches than
        ``n_workers``: `batch_size_for`).
    dask_address
        Address of a running Dask scheduler (``tcp://host:8786``); default a local cluster.
    n_workers
        Workers of the local cluster (with ``dask_address``: the workers the batches are
        cut for).
    dask_processes
        Local cluster of processes (True) or threads (False); default: processes when
        ``PREFECT_API_URL`` names a server.
    scoreboard, page
        Write the scoreboard JSON of every issue time; draw the page of the last one.
    series
        SHARP series to read; default the store's only one (`StoreError` if several).

    Returns
    -------
    dict
        Counts (issue times, rows, gaps), ``failed_regions`` (``issue_time``, ``harpnum``,
        ``reason``, ... per region left out of an issue time), ``status``
        (`flows.forecast.run_status`), ``series``, ``model_seconds`` (time inside
        `flare_core.forecasting.forecast_many`, summed over the batches; a cached batch
        counts the time it took when computed), ``batches`` and ``already_published``
        (batches found in the forecast store as computed, so not published again).
    """
    _check_not_deployment_dask(dask_address)
    log = get_run_logger()
    layout = Layout.of(store)
    root = str(layout.store)
    times = issue_times(floor_hour(start), floor_hour(end), cadence_h)
    model = model_ref(layout, model_dir)
    sharp, flares = bind_storage(snapshot_store, root)(
        root, store_fingerprint(root), times[0] - timedelta(hours=history_h(model)), times[-1],
        series=series)
    chunks = batches(times, batch_size_for(len(times), batch_size, n_workers))
    runner = dask_runner(dask_address, n_workers, dask_processes)
    log.info("backfill %s .. %s: %d issue times in %d batches on %s", times[0].isoformat(),
             times[-1].isoformat(), len(times), len(chunks),
             dask_address or f"a local cluster ({runner.cluster_kwargs})")
    totals = _run_batches.with_options(task_runner=runner)(
        chunks, model, sharp, flares, str(layout.work / "forecasts"), str(layout.forecasts),
        str(layout.scoreboard) if scoreboard else None, root)
    out = {"start": times[0].isoformat(), "end": times[-1].isoformat(),
           "requested": len(times), **totals,
           "status": run_status(totals["rows"], len(totals["failed_regions"])),
           "series": series, "forecast_store": str(layout.forecasts),
           "model_dir": model.path}
    if page and totals["rows"]:
        out["page"] = _page(layout, root, log)
    log.info("backfill done (%s): %d of %d issue times published (%d rows), %d gaps, %d "
             "region forecasts left out", out["status"], totals["issue_times"], len(times),
             totals["rows"], len(totals["gaps"]), len(totals["failed_regions"]))
    return out
