"""Prefect tasks that issue forecasts (`flare_core.forecasting.forecast_many`) and publish them.

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

from .common import FileRef, retry_on_store_busy, run_logger, write_frame_addressed

__all__ = [
    "compute_forecasts",
    "publish_forecasts",
    "load_bundle",
    "read_frame",
    "forecast_batch_plain",
    "publish_page",
    "failed_records",
    "failed_frame",
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

    One `flare_core.forecasting.forecast_many` call (with the ``headline`` rows): each SHARP
    record is predicted once and every issue time's rows are derived from the records
    served by it (the rows equal `forecast_at` issue time by issue time, no look-ahead).

    ``fetched_since``: the live flow's own fetch began then; the reply times it stamped
    (``available_at >= fetched_since``) are replaced by the modelled NRT latency
    (`flare_core.forecasting.forget_own_reply_times`).

    Returns the forecast rows (`flare_core.publish.forecast_store` schema) and, per issue time
    that could not be forecast (no fresh record), the reason; with ``with_failed`` also the
    regions left out (`flare_core.publish.forecast_store.FAILED_SCHEMA`).
    """
    from flare_core.errors import DataGapError
    from flare_core.forecasting import forecast_many, forget_own_reply_times
    from flare_core.publish.forecast_store import conform_failed, empty_forecast_frame
    from flare_core.timeutil import to_utc

    bundle = load_bundle(model.path, model.sha256)
    sharp_df = read_frame(sharp.path, sharp.sha256)
    flare_df = read_frame(flares.path, flares.sha256)
    if harpnums is not None:
        sharp_df = sharp_df.filter(pl.col("harpnum").is_in(harpnums))
    if fetched_since is not None:
        sharp_df = forget_own_reply_times(sharp_df, fetched_since)
    why = (f"no SHARP record within {bundle.config.freshness_h} h before the issue time: "
           "nothing to forecast")
    failed = conform_failed(None)
    if not issue_times:
        return (empty_forecast_frame(), {}, failed) if with_failed else (
            empty_forecast_frame(), {})
    try:
        rows, failed = forecast_many(bundle, sharp_df, flare_df, issue_times, headline=True,
                                     return_failed=True)
    except DataGapError:
        gaps = {t.isoformat(): why for t in issue_times}
        return (empty_forecast_frame(), gaps, failed) if with_failed else (
            empty_forecast_frame(), gaps)
    done = set(rows["issue_time"].unique().to_list()) | set(failed["issue_time"].to_list())
    gaps = {t.isoformat(): why for t in issue_times if to_utc(t) not in done}
    return (rows, gaps, failed) if with_failed else (rows, gaps)


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


def failed_records(failed: pl.DataFrame) -> list[dict[str, Any]]:
    """Failed-region rows as JSON-able dicts (``issue_time`` as ISO text)."""
    return [{**r, "issue_time": r["issue_time"].isoformat()}
            for r in failed.iter_rows(named=True)]


def failed_frame(records: list[dict[str, Any]] | None) -> pl.DataFrame:
    """`failed_records` back to a `flare_core.publish.forecast_store.FAILED_SCHEMA` frame."""
    from flare_core.publish.forecast_store import FAILED_SCHEMA, conform_failed
    from flare_core.timeutil import to_utc

    if not records:
        return conform_failed(None)
    return conform_failed(pl.DataFrame(
        [{**r, "issue_time": to_utc(r["issue_time"])} for r in records],
        schema=FAILED_SCHEMA))


@task(cache_policy=NO_CACHE, tags=["forecast-store-write"], retries=3,
      retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_on_store_busy)
def publish_forecasts(forecasts: FileRef | None, forecast_store: str,
                      scoreboard_dir: str | None, *, mode: str = "forecast",
                      failed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Upsert forecast rows into the `ForecastStore`; write one scoreboard JSON per issue time.

    The store replaces each issue time as a whole in one transaction, so publishing twice
    (a retry, a re-run, an hourly run racing a backfill) leaves exactly one copy. ``failed``
    (`failed_records`) goes to the store's ``failed_regions`` table and to the
    ``failed_regions`` of each document of its issue time; ``forecasts`` None publishes
    only those.
    """
    from flare_core.publish.forecast_store import ForecastStore, empty_forecast_frame
    from flare_core.publish.scoreboard_json import write_scoreboard_json

    rows = pl.read_parquet(forecasts.path) if forecasts is not None else empty_forecast_frame()
    bad = failed_frame(failed)
    n = ForecastStore(forecast_store).upsert(rows, failed=bad)
    paths = (write_scoreboard_json(rows, scoreboard_dir, mode=mode, failed=bad)
             if scoreboard_dir is not None and rows.height else [])
    run_logger().info("published %d rows of %d issue times to %s (%d JSON documents)",
                          n, rows["issue_time"].n_unique(), forecast_store, len(paths))
    return {"rows": n, "issue_times": rows["issue_time"].n_unique(),
            "json": [str(p) for p in paths]}


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

    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.publish.page import publish_latest_page
    from flare_core.publish.summary import rank_regions, summary_markdown

    store = ForecastStore(forecast_store)
    latest = store.latest_issue_time()
    models = set(store.read(issue_time=latest)["model"]) if latest is not None else set()
    # the region plots (survival curves, lifetime tracks) need the survival model's rows
    page = publish_latest_page(store, page_dir,
                               model="survival" if "survival" in models else None,
                               embed_images=embed_images)
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
