"""Prefect tasks that issue forecasts (`flare_core.forecasting.forecast_many`) and publish them.

Thin wrappers over the plain steps of `flare_core.issuing` (`issue_forecasts`,
`publish_issued`, `publish_page`), which ``flareflow`` also runs in-process without a
server (`flareflow.cli.local`); the tasks add content-addressed caching, retries, run logs
and artifacts.

These are the only publishing tasks: `publish_forecasts` (store upsert + scoreboard JSON)
and `publish_page` (plots, ``index.html`` and the Prefect artifacts). Both retry only when
the forecast store was locked or could not be opened (`StoreError`); bad forecast rows
(`ParseError`) fail at once.

`compute_forecasts` is pure and cached: it maps a batch of issue times, a MODEL_DIR and a
data snapshot (all by content hash) to one Parquet file of forecast rows. A batch of issue
times is one task, so a backfill of hundreds of hours is a few dozen tasks and the model is
loaded once per worker process. `publish_forecasts` is the side effect: an idempotent upsert
into the `ForecastStore` (an issue time is replaced as a whole, so re-runs and concurrent
runs neither lose nor duplicate rows), then the scoreboard JSON documents.

Region isolation: `forecast_many` leaves out a region whose inputs or outputs are invalid
(`flare_core.forecasting.isolate_invalid_regions`) and names it; `compute_forecasts` returns
those failed regions (``failed``), `publish_forecasts` writes them to the store's
``failed_regions`` table and each issue time's scoreboard JSON, and the flows report
``status: "partial"``. Every batch also publishes the ``headline`` rows.

No look-ahead: a batch is one `forecast_many` call, whose rows of each issue time equal
`forecast_at`'s: only SHARP records with ``t_rec <= issue_time`` (each record's features and
sequence read only the region's records at or before it) and flares that peaked before the
record time, whatever later data the snapshot holds.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from flare_core.issuing import failed_frame, failed_records

from .common import FileRef, retry_on_store_busy, run_logger, write_frame_addressed

__all__ = [
    "compute_forecasts",
    "publish_forecasts",
    "load_bundle",
    "read_frame",
    "forecast_batch_plain",
    "publish_page",
]

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def load_bundle(model_dir: str, sha256: str):
    """`ModelBundle.load`, once per process and model content (``sha256`` keys the cache)."""
    from flare_core.forecasting import ModelBundle

    return ModelBundle.load(model_dir)


@functools.lru_cache(maxsize=8)
def read_frame(path: str, sha256: str) -> pl.DataFrame:
    """A snapshot Parquet file, read once per process and content."""
    return pl.read_parquet(path)


def forecast_batch_plain(issue_times: list[datetime], model: FileRef, sharp: FileRef,
                         flares: FileRef, *, harpnums: list[int] | None = None,
                         fetched_since: datetime | None = None, with_failed: bool = False):
    """The forecasts of several issue times, without Prefect (used by the task and benchmarks).

    `flare_core.issuing.issue_forecasts` on the snapshot files (read once per process and
    content): one `flare_core.forecasting.forecast_many` call with the ``headline`` rows and
    region isolation, as the in-process commands run it. Each SHARP
    record is predicted once and every issue time's rows are derived from the records
    served by it (the rows equal `forecast_at` issue time by issue time, no look-ahead).

    ``fetched_since``: the live flow's own fetch began then; the reply times it stamped
    (``available_at >= fetched_since``) are replaced by the modelled NRT latency
    (`flare_core.forecasting.forget_own_reply_times`).

    Returns the forecast rows (`flare_core.publish.forecast_store` schema) and, per issue time
    that could not be forecast (no fresh record), the reason; with ``with_failed`` also the
    regions left out (`flare_core.publish.forecast_store.FAILED_SCHEMA`).
    """
    from flare_core.issuing import issue_forecasts

    issued = issue_forecasts(load_bundle(model.path, model.sha256),
                             read_frame(sharp.path, sharp.sha256),
                             read_frame(flares.path, flares.sha256), issue_times,
                             harpnums=harpnums, fetched_since=fetched_since)
    if with_failed:
        return issued.rows, issued.gaps, issued.failed
    return issued.rows, issued.gaps


@task(cache_policy=INPUTS + TASK_SOURCE)
def compute_forecasts(issue_times: list[datetime], model: FileRef, sharp: FileRef,
                      flares: FileRef, out_dir: str, *,
                      harpnums: list[int] | None = None,
                      fetched_since: datetime | None = None) -> dict[str, Any]:
    """Forecasts of every region at each issue time of the batch, as one Parquet file.

    Parameters
    ----------
    issue_times
        UTC issue times (one batch).
    model, sharp, flares
        MODEL_DIR and the snapshot files (`tasks.features.snapshot_store`).
    out_dir
        Where the content-addressed Parquet file of forecast rows goes.
    harpnums
        Forecast only these regions (the live flow drops regions whose data fetch failed).
    fetched_since
        As in `forecast_batch_plain` (the live flow's fetch start).

    Returns
    -------
    dict
        ``forecasts`` (`FileRef` or None when nothing was forecast), ``rows``, ``regions``,
        ``issue_times``, ``gaps`` (issue time -> reason), ``failed`` (regions left out:
        ``issue_time`` ISO, ``harpnum``, ``model_version``, ``series``, ``reason``) and
        ``seconds`` (model time).
    """
    log = run_logger()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # scikit-learn notes once per call that a daemonic Dask worker runs n_jobs=1: intended
        warnings.filterwarnings("ignore", message="Inside a Dask worker")
        rows, gaps, failed = forecast_batch_plain(issue_times, model, sharp, flares,
                                                  harpnums=harpnums,
                                                  fetched_since=fetched_since,
                                                  with_failed=True)
    seconds = time.perf_counter() - t0
    for t, why in gaps.items():
        log.warning("no forecast at %s: %s", t, why)
    for r in failed.iter_rows(named=True):
        log.error("HARP %d left out at %s: %s", r["harpnum"], r["issue_time"].isoformat(),
                  r["reason"])
    ref = write_frame_addressed(rows, out_dir, "forecasts") if rows.height else None
    log.info("%d issue times: %d rows, %d gaps in %.2f s", len(issue_times), rows.height,
             len(gaps), seconds)
    return {"forecasts": ref, "rows": rows.height,
            "regions": int(rows["harpnum"].n_unique()) if rows.height else 0,
            "issue_times": len(issue_times) - len(gaps), "gaps": gaps,
            "failed": failed_records(failed), "seconds": seconds}


# No concurrency tag: the ForecastStore's file lock already orders writers, and a tag costs
# every run a concurrency-lease round trip to the server (~2 s measured in an hourly run).
@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=retry_on_store_busy)
def publish_forecasts(forecasts: FileRef | None, forecast_store: str,
                      scoreboard_dir: str | None, *, mode: str = "forecast",
                      failed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Upsert forecast rows into the `ForecastStore`; write one scoreboard JSON per issue time.

    The store replaces each issue time as a whole in one transaction, so publishing twice
    (a retry, a re-run, an hourly run racing a backfill) leaves exactly one copy. ``failed``
    (`flare_core.issuing.failed_records`) goes to the store's ``failed_regions`` table and to the
    ``failed_regions`` of each document of its issue time; ``forecasts`` None publishes
    only those.
    """
    from flare_core.issuing import publish_issued
    from flare_core.publish.forecast_store import empty_forecast_frame

    rows = pl.read_parquet(forecasts.path) if forecasts is not None else empty_forecast_frame()
    res = publish_issued(rows, forecast_store, scoreboard_dir, failed=failed_frame(failed),
                         mode=mode)
    run_logger().info("published %d rows of %d issue times to %s (%d JSON documents)",
                      res["rows"], res["issue_times"], forecast_store, len(res["json"]))
    return res


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_on_store_busy)
def publish_page(forecast_store: str, page_dir: str, issue_time: datetime | None = None, *,
                 failed_regions: dict[int, str] | None = None, embed_images: bool = False,
                 top_n: int = 10) -> dict[str, Any]:
    """Plots + ``index.html`` of the newest issue time in the store, and the Prefect artifacts
    of ``issue_time`` (default: the newest).

    Artifacts: a table of every region by risk, per model (key ``flare-risk-regions``), and
    a markdown summary of the ``top_n`` riskiest regions (key ``forecast-summary``) linking
    the page and plots. With ``embed_images`` the page inlines its PNGs (one portable file).
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from flare_core.issuing import publish_page as draw_page
    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.publish.summary import rank_regions, summary_markdown

    store = ForecastStore(forecast_store)
    page = draw_page(forecast_store, page_dir, embed_images=embed_images)
    latest = store.latest_issue_time()
    shown = issue_time or latest
    current = store.read(issue_time=shown)
    ranked = rank_regions(current).select(
        "rank", "model", "harpnum", "noaa_ars", "p_c24", "p_m24", "p_x24", "mean_lifetime_h",
        "warning_class", "t_rec")
    table = [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
             for r in ranked.iter_rows(named=True)]
    create_table_artifact(key="flare-risk-regions", table=table,
                          description=f"Regions by P(M+ in 24 h), per model, issued "
                                      f"{shown.isoformat()}")
    plots = sorted(Path(page_dir).glob("*.png"))
    lines = [summary_markdown(current, top_n=top_n), "",
             f"Page (newest issue time, {latest:%Y-%m-%d %H:%M} UTC): "
             f"[{Path(page).name}](file://{Path(page).resolve()})", ""]
    if failed_regions:
        lines += ["## Regions not forecast", ""]
        lines += [f"- HARP {h}: {why}" for h, why in sorted(failed_regions.items())]
        lines.append("")
    lines += ["## Plots", ""]
    lines += [f"- [{p.name}](file://{p.resolve()})" for p in plots]
    create_markdown_artifact(key="forecast-summary", markdown="\n".join(lines),
                             description="Forecast summary with links to the page and plots")
    n_regions = current["harpnum"].n_unique()
    run_logger().info("page %s: %d regions, %d plots", page, n_regions, len(plots))
    return {"page": str(page), "plots": [str(p) for p in plots], "issue_time": shown,
            "page_issue_time": latest, "regions": n_regions}
