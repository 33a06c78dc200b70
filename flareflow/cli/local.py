"""The operations of the ``flareflow`` command without a Prefect server, in this process.

``forecast``, ``backfill`` and ``score`` run their Prefect flows when a server is configured
(`server_url`: ``PREFECT_API_URL`` set, as ``flareflow serve`` and the deployments set it).
Without one, Prefect would start a temporary server for every command (measured 33-38 s
for 0.3 s of model work), so these functions compose the same `flare_core` steps as the
flows, in the same order and on the same data: read the store up to the issue time
(SHARP records with ``t_rec <= issue_time``, flares that peaked strictly before it, as
`tasks.features.snapshot_store`), `flare_core.forecasting.forecast_many` (as
`tasks.forecasting.compute_forecasts`), upsert into the `ForecastStore`, scoreboard JSON
and page (as `tasks.forecasting.publish_forecasts` / ``publish_page``, without the Prefect
artifacts). Neither this module nor what it imports at run time imports Prefect, except
`score_local` (the scoring functions live in `tasks.evaluation`).

Results are dicts with the keys of the flows' results, so the commands print either alike.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from flare_core.forecasting import ModelBundle
    from flows.layout import Layout

__all__ = ["server_url", "load_model", "forecast_local", "backfill_local", "score_local",
           "issue_times"]


def server_url() -> str | None:
    """The Prefect API the flows would report to: ``PREFECT_API_URL``, or None."""
    return os.environ.get("PREFECT_API_URL") or None


def load_model(layout: Layout, model_dir: str | Path | None) -> tuple[ModelBundle, Path]:
    """The MODEL_DIR given, or the installation's latest (as `flows.forecast.model_ref`).

    Raises `flare_core.errors.ModelError` when there is none.
    """
    from flare_core.errors import ModelError
    from flare_core.forecasting import ModelBundle

    path = Path(model_dir) if model_dir else layout.latest_model()
    if path is None or not (path / "model.json").is_file():
        raise ModelError(f"no trained model: pass --model or run `flareflow train` for "
                         f"{layout.root} first (looked for {path or layout.latest_model_file})")
    return ModelBundle.load(path), path.resolve()


def issue_times(start: datetime, end: datetime, cadence_h: float = 1.0) -> list[datetime]:
    """``start, start + cadence_h, ...`` up to and including ``end`` (UTC), as
    `flows.backfill.issue_times`."""
    from flare_core.config import check_positive

    check_positive("cadence_h", cadence_h)
    out, t, step = [], start, timedelta(hours=cadence_h)
    while t <= end:
        out.append(t)
        t += step
    return out


def _snapshot(layout: Layout, start: datetime, end: datetime, series: str | None
              ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """SHARP records with ``start <= t_rec <= end`` and flares that peaked before ``end``."""
    import polars as pl

    from flare_core.store import Store

    store = Store(layout.store)
    sharp = store.read_sharp(start=start, end=end, series=series)
    flares = store.read_flares(end=end, series=series).filter(pl.col("peak_time") < end)
    return sharp, flares


def _forecast_rows(bundle: ModelBundle, sharp: pl.DataFrame, flares: pl.DataFrame,
                   times: list[datetime]) -> tuple[pl.DataFrame, dict[str, str]]:
    """`forecast_many` rows and, per issue time without a fresh record, the reason."""
    from flare_core.errors import DataGapError
    from flare_core.forecasting import forecast_many
    from flare_core.publish.forecast_store import empty_forecast_frame

    why = (f"no SHARP record within {bundle.config.freshness_h} h before the issue time: "
           "nothing to forecast")
    try:
        rows = forecast_many(bundle, sharp, flares, times)
    except DataGapError:
        return empty_forecast_frame(), {t.isoformat(): why for t in times}
    done = set(rows["issue_time"].unique().to_list())
    return rows, {t.isoformat(): why for t in times if t not in done}


def _publish(rows: pl.DataFrame, layout: Layout, *, mode: str) -> int:
    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.publish.scoreboard_json import write_scoreboard_json

    n = ForecastStore(layout.forecasts).upsert(rows)
    write_scoreboard_json(rows, layout.scoreboard, mode=mode)
    return n


def _page(layout: Layout) -> str:
    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.publish.page import publish_latest_page

    store = ForecastStore(layout.forecasts)
    latest = store.latest_issue_time()
    models = set(store.read(issue_time=latest)["model"]) if latest is not None else set()
    return str(publish_latest_page(store, layout.page,
                                   model="survival" if "survival" in models else None))


def forecast_local(issue: datetime, layout: Layout, model_dir: str | Path | None = None, *,
                   series: str | None = None, page: bool = True) -> dict[str, Any]:
    """Issue and publish the forecast of ``issue`` (UTC, a whole hour) in this process.

    Returns the keys of `flows.forecast.forecast`'s result: ``issue_time``, ``rows``,
    ``regions``, ``failed_regions`` (always empty: no region is fetched), ``gaps``,
    ``forecast_store``, ``model_dir``, ``model_seconds`` and ``page``.
    """
    bundle, path = load_model(layout, model_dir)
    need_h = bundle.lookback_h() + float(bundle.config.freshness_h)
    sharp, flares = _snapshot(layout, issue - timedelta(hours=need_h), issue, series)
    t0 = time.perf_counter()
    rows, gaps = _forecast_rows(bundle, sharp, flares, [issue])
    out: dict[str, Any] = {"issue_time": issue.isoformat(), "rows": rows.height,
                           "regions": int(rows["harpnum"].n_unique()) if rows.height else 0,
                           "failed_regions": {}, "gaps": gaps,
                           "forecast_store": str(layout.forecasts), "model_dir": str(path),
                           "model_seconds": time.perf_counter() - t0}
    if rows.height:
        _publish(rows, layout, mode="forecast")
        if page:
            out["page"] = _page(layout)
    return out


def backfill_local(times: list[datetime], layout: Layout, model_dir: str | Path | None = None,
                   *, batch_size: int = 24, series: str | None = None, page: bool = True,
                   on_batch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Forecasts of every issue time in ``times`` (UTC, ascending), published batch by batch.

    One `forecast_many` call per ``batch_size`` issue times (as the backfill flow's tasks);
    ``on_batch(n)`` is called with the number of issue times of each finished batch.
    Returns the keys of `flows.backfill.backfill`'s result.
    """
    bundle, path = load_model(layout, model_dir)
    need_h = bundle.lookback_h() + float(bundle.config.freshness_h)
    sharp, flares = _snapshot(layout, times[0] - timedelta(hours=need_h), times[-1], series)
    totals: dict[str, Any] = {"rows": 0, "issue_times": 0, "gaps": {}, "model_seconds": 0.0}
    size = max(1, int(batch_size))
    for i in range(0, len(times), size):
        chunk = times[i:i + size]
        t0 = time.perf_counter()
        rows, gaps = _forecast_rows(bundle, sharp, flares, chunk)
        totals["model_seconds"] += time.perf_counter() - t0
        totals["rows"] += rows.height
        totals["issue_times"] += len(chunk) - len(gaps)
        totals["gaps"].update(gaps)
        if rows.height:
            _publish(rows, layout, mode="historical")
        if on_batch is not None:
            on_batch(len(chunk))
    out = {"start": times[0].isoformat(), "end": times[-1].isoformat(),
           "requested": len(times), **totals, "forecast_store": str(layout.forecasts),
           "model_dir": str(path)}
    if page and totals["rows"]:
        out["page"] = _page(layout)
    return out


def score_local(start: datetime, end: datetime, layout: Layout,
                model_dir: str | Path | None = None) -> dict[str, Any]:
    """Score the forecasts issued in [start, end] (UTC), as `flows.evaluate.evaluate` (same
    result and ``published_scores.json``, no Prefect artifact)."""
    import polars as pl

    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.store import Store
    from tasks.evaluation import label_published, score_published

    if model_dir is None and layout.latest_model() is not None:
        model_dir = layout.latest_model()
    report = layout.evaluation / f"{start:%Y%m%dT%H%M}_{end:%Y%m%dT%H%M}"
    fc = ForecastStore(layout.forecasts).read(start=start, end=end + timedelta(microseconds=1))
    flares = Store(layout.store).read_flares()
    last_flare = flares["peak_time"].max() if flares.height else None
    verifiable = (fc.filter(pl.col("issue_time") + timedelta(hours=24) <= last_flare)
                  if last_flare is not None else fc.clear())
    clim = None
    if model_dir is not None:
        from flare_core.models.persistence import read_json

        clim = read_json(Path(model_dir) / "model.json").get("climatology")
    scores = (score_published(label_published(verifiable, flares), clim)
              if verifiable.height else {})
    result = {"start": start.isoformat(), "end": end.isoformat(), "rows": fc.height,
              "issue_times": fc["issue_time"].n_unique() if fc.height else 0,
              "not_yet_verifiable": fc.height - verifiable.height, "models": scores}
    report.mkdir(parents=True, exist_ok=True)
    (report / "published_scores.json").write_text(json.dumps(result, indent=1, default=str))
    return result
