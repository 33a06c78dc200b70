"""Issuing forecasts: a store snapshot -> forecast rows -> published products -> the result.

The steps of one hourly forecast and of one backfill batch, as plain functions that both
runners compose: the Prefect flows (`flows.forecast`, `flows.backfill`, through the tasks
of `tasks.forecasting`, which add caching, retries and artifacts) and the in-process
commands (`flareflow.cli.local`, no Prefect). Both therefore publish identical rows.

`read_snapshot`
    SHARP records with ``start <= t_rec <= end`` and the flares that peaked before ``end``.
`issue_forecasts`
    `flare_core.forecasting.forecast_many` with the ``headline`` rows and region isolation:
    the rows, the issue times without a fresh record (gaps) and the regions left out.
`fetch_failures`
    Regions whose data fetch failed, as failed-region rows of an issue time.
`publish_issued`
    Upsert into the `ForecastStore` (rows and failed regions), then the scoreboard JSON.
`publish_page`
    Plots and ``index.html`` of the store's newest issue time.
`run_status`, `forecast_result`
    How a run went (``complete | partial | failed | empty``) and the result of one hourly
    forecast, with the keys both runners return.

No look-ahead: the snapshot holds SHARP records with ``t_rec <= end`` and flares peaking
strictly before ``end``; `forecast_many` then uses, per issue time, only the records served
by it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from .publish.forecast_store import (
    FAILED_SCHEMA,
    ForecastStore,
    conform_failed,
    empty_forecast_frame,
)
from .timeutil import to_utc

if TYPE_CHECKING:
    from .forecasting import ModelBundle

__all__ = ["BATCH_ISSUE_TIMES", "Issued", "read_snapshot", "issue_forecasts", "fetch_failures", "failed_records",
           "failed_frame", "failed_reasons", "publish_issued", "publish_page", "run_status",
           "forecast_result"]

#: Issue times per backfill batch (one task, one `issue_forecasts` call): one week of hourly
#: forecasts. A `forecast_many` call costs a fixed part (the look-back records it predicts
#: besides the batch's own, the snapshot filter) and each task a Prefect and Dask round trip,
#: so few large batches are cheapest: on the 2023 NRT stream 24-hour batches spent ~7x the
#: model time of 168-hour ones (`benchmarks/bench_nrt_backfill.py`).
BATCH_ISSUE_TIMES = 168

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Issued:
    """What `issue_forecasts` made of a batch of issue times.

    Attributes
    ----------
    rows : pl.DataFrame
        Forecast rows (`flare_core.publish.forecast_store.FORECAST_SCHEMA`), the
        ``headline`` rows included.
    gaps : dict
        Issue time (ISO, UTC) -> why nothing was forecast then (no fresh SHARP record).
    failed : pl.DataFrame
        Regions left out of an issue time (`FAILED_SCHEMA`), with the reason.
    """

    rows: pl.DataFrame
    gaps: dict[str, str]
    failed: pl.DataFrame

    @property
    def regions(self) -> int:
        """Number of distinct regions forecast."""
        return int(self.rows["harpnum"].n_unique()) if self.rows.height else 0


def read_snapshot(store_root: str | Path, start: datetime | None, end: datetime, *,
                  series: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """SHARP records with ``start <= t_rec <= end`` and flares that peaked before ``end``.

    Parameters
    ----------
    store_root : str or Path
        The data store (`flare_core.store.Store`).
    start, end : datetime
        UTC bounds of ``t_rec`` (``start`` None: from the beginning).
    series : str, optional
        SHARP series (default: the store's only one; `StoreError` when it holds several).

    Returns
    -------
    (sharp, flares) : tuple of pl.DataFrame
        As `Store.read_sharp` and `Store.read_flares` (``peak_time < end``, strict).
    """
    from .store import Store

    store = Store(store_root)
    sharp = store.read_sharp(start=start, end=end, series=series)
    flares = store.read_flares(end=end, series=series).filter(pl.col("peak_time") < end)
    return sharp, flares


def issue_forecasts(bundle: ModelBundle, sharp: pl.DataFrame, flares: pl.DataFrame,
                    issue_times: Sequence[datetime], *, harpnums: Sequence[int] | None = None,
                    fetched_since: datetime | None = None) -> Issued:
    """The forecasts of every region at each issue time, with the headline and isolation.

    One `flare_core.forecasting.forecast_many` call (``headline=True, return_failed=True``):
    each SHARP record is predicted once and every issue time's rows equal `forecast_at`'s.

    Parameters
    ----------
    bundle : ModelBundle
    sharp, flares : pl.DataFrame
        The snapshot (`read_snapshot`).
    issue_times : sequence of datetime
        UTC issue times.
    harpnums : sequence of int, optional
        Forecast only these regions (a live run leaves out those whose fetch failed).
    fetched_since : datetime, optional
        A live run's own fetch began then: the reply times it stamped give way to the
        modelled NRT latency (`flare_core.forecasting.forget_own_reply_times`).

    Returns
    -------
    Issued
    """
    from .errors import DataGapError
    from .forecasting import forecast_many, forget_own_reply_times

    if harpnums is not None:
        sharp = sharp.filter(pl.col("harpnum").is_in(list(harpnums)))
    if fetched_since is not None:
        sharp = forget_own_reply_times(sharp, fetched_since)
    why = (f"no SHARP record within {bundle.config.freshness_h} h before the issue time: "
           "nothing to forecast")
    if not issue_times:
        return Issued(empty_forecast_frame(), {}, conform_failed(None))
    try:
        rows, failed = forecast_many(bundle, sharp, flares, list(issue_times), headline=True,
                                     return_failed=True)
    except DataGapError:
        return Issued(empty_forecast_frame(), {to_utc(t).isoformat(): why
                                               for t in issue_times}, conform_failed(None))
    done = set(rows["issue_time"].unique().to_list()) | set(failed["issue_time"].to_list())
    gaps = {to_utc(t).isoformat(): why for t in issue_times if to_utc(t) not in done}
    return Issued(rows, gaps, conform_failed(failed))


def fetch_failures(reasons: Mapping[int, str], issue_time: datetime, *, model_version: str,
                   series: str | None) -> pl.DataFrame:
    """Regions whose SHARP fetch failed, as `FAILED_SCHEMA` rows (reason ``fetch: ...``)."""
    if not reasons:
        return conform_failed(None)
    return conform_failed(pl.DataFrame(
        [{"issue_time": to_utc(issue_time), "harpnum": int(h), "model_version": model_version,
          "series": series, "reason": f"fetch: {why}"} for h, why in reasons.items()],
        schema=FAILED_SCHEMA))


def failed_records(failed: pl.DataFrame) -> list[dict[str, Any]]:
    """Failed-region rows as JSON-able dicts (``issue_time`` as ISO text), as tasks pass
    them on."""
    return [{**r, "issue_time": r["issue_time"].isoformat()}
            for r in conform_failed(failed).iter_rows(named=True)]


def failed_frame(records: Sequence[Mapping[str, Any]] | None) -> pl.DataFrame:
    """`failed_records` back to a `FAILED_SCHEMA` frame (None or empty: zero rows)."""
    if not records:
        return conform_failed(None)
    return conform_failed(pl.DataFrame(
        [{**r, "issue_time": to_utc(r["issue_time"])} for r in records],
        schema=FAILED_SCHEMA))


def failed_reasons(failed: pl.DataFrame) -> dict[int, str]:
    """HARP number -> reason of the failed-region rows (one issue time)."""
    return {int(r["harpnum"]): r["reason"] for r in failed.iter_rows(named=True)}


def publish_issued(rows: pl.DataFrame, forecast_store: str | Path,
                   scoreboard_dir: str | Path | None, *, failed: pl.DataFrame | None = None,
                   mode: str = "forecast") -> dict[str, Any]:
    """Upsert rows and failed regions into the `ForecastStore`, then the scoreboard JSON.

    The store replaces each issue time as a whole (one transaction), so publishing twice
    leaves one copy. Each scoreboard document (one per issue time and model, written when
    ``scoreboard_dir`` is given) lists the failed regions of its issue time.

    Returns
    -------
    dict
        ``rows`` (written), ``issue_times`` and ``json`` (the documents' paths).
    """
    from .publish.scoreboard_json import write_scoreboard_json

    bad = conform_failed(failed)
    n = ForecastStore(forecast_store).upsert(rows, failed=bad)
    paths = (write_scoreboard_json(rows, scoreboard_dir, mode=mode, failed=bad)
             if scoreboard_dir is not None and rows.height else [])
    logger.info("published %d rows of %d issue times to %s (%d JSON documents, %d regions "
                "left out)", n, rows["issue_time"].n_unique(), forecast_store, len(paths),
                bad.height)
    return {"rows": n, "issue_times": rows["issue_time"].n_unique(),
            "json": [str(p) for p in paths]}


def publish_page(forecast_store: str | Path, page_dir: str | Path, *,
                 embed_images: bool = False) -> Path:
    """Plots and ``index.html`` of the newest issue time (`publish_latest_page`: the
    headline first, then every model; the failed regions of that issue time listed)."""
    from .publish.page import publish_latest_page

    return publish_latest_page(ForecastStore(forecast_store), page_dir,
                               embed_images=embed_images)


def run_status(rows: int, n_failed: int) -> str:
    """``complete``, ``partial`` (some regions left out), ``failed`` (all) or ``empty``."""
    if n_failed:
        return "partial" if rows else "failed"
    return "complete" if rows else "empty"


def forecast_result(issue_time: datetime, *, rows: int, regions: int, gaps: Mapping[str, str],
                    failed: Mapping[int, str], series: str | None,
                    forecast_store: str | Path, model_dir: str | Path,
                    model_seconds: float) -> dict[str, Any]:
    """The result of one hourly forecast, as both runners return it.

    Keys: ``issue_time`` (ISO), ``status`` (`run_status`), ``series``, ``rows``,
    ``regions``, ``failed_regions`` (HARP -> reason: fetch failures and regions left out by
    the forecast), ``gaps``, ``forecast_store``, ``model_dir`` and ``model_seconds``.
    """
    return {"issue_time": to_utc(issue_time).isoformat(),
            "status": run_status(rows, len(failed)), "series": series, "rows": rows,
            "regions": regions, "failed_regions": dict(failed), "gaps": dict(gaps),
            "forecast_store": str(forecast_store), "model_dir": str(model_dir),
            "model_seconds": model_seconds}
