"""The operations of the ``flareflow`` command without a Prefect server, in this process.

``forecast``, ``backfill`` and ``score`` run their Prefect flows when a server is configured
(`server_url`: ``PREFECT_API_URL`` set, as ``flareflow serve`` and the deployments set it).
Without one, Prefect would start a temporary server for every command (measured 33-38 s
for 0.3 s of model work), so these functions compose the flows' own plain steps
(`flare_core.issuing`: the snapshot, `issue_forecasts` with the headline rows and region
isolation, `publish_issued` to the store and scoreboard JSON, the page) in the same order
on the same data, without the Prefect caching, retries and artifacts; scoring is
`flare_core.publish.verification`, as the ``evaluate`` flow's task. Neither this module nor
what it imports at run time imports Prefect.

Results are dicts with the keys of the flows' results, so the commands print either alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def _history_h(bundle: ModelBundle) -> float:
    """Hours of SHARP records before an issue time that a forecast reads (windows +
    freshness), as `flows.forecast.history_h`."""
    return bundle.lookback_h() + float(bundle.config.freshness_h)


def forecast_local(issue: datetime, layout: Layout, model_dir: str | Path | None = None, *,
                   series: str | None = None, page: bool = True) -> dict[str, Any]:
    """Issue and publish the forecast of ``issue`` (UTC, a whole hour) in this process.

    The steps of `flows.forecast.forecast` without fetching (`flare_core.issuing`): the
    snapshot, `issue_forecasts` (headline rows, regions with invalid inputs or outputs left
    out), `publish_issued` (rows and failed regions to the store, scoreboard JSON) and the
    page. Returns `flare_core.issuing.forecast_result` (``status``, ``failed_regions``, ...)
    and ``page``.
    """
    from flare_core.issuing import (
        failed_reasons,
        forecast_result,
        issue_forecasts,
        publish_issued,
        publish_page,
        read_snapshot,
    )

    bundle, path = load_model(layout, model_dir)
    sharp, flares = read_snapshot(layout.store, issue - timedelta(hours=_history_h(bundle)),
                                  issue, series=series)
    t0 = time.perf_counter()
    issued = issue_forecasts(bundle, sharp, flares, [issue])
    out = forecast_result(issue, rows=issued.rows.height, regions=issued.regions,
                          gaps=issued.gaps, failed=failed_reasons(issued.failed),
                          series=series, forecast_store=layout.forecasts, model_dir=path,
                          model_seconds=time.perf_counter() - t0)
    if issued.rows.height or issued.failed.height:
        publish_issued(issued.rows, layout.forecasts,
                       layout.scoreboard if issued.rows.height else None,
                       failed=issued.failed)
    if issued.rows.height and page:
        out["page"] = str(publish_page(layout.forecasts, layout.page))
    return out


def backfill_local(times: list[datetime], layout: Layout, model_dir: str | Path | None = None,
                   *, batch_size: int | None = None, series: str | None = None, page: bool = True,
                   on_batch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Forecasts of every issue time in ``times`` (UTC, ascending), published batch by batch.

    One `flare_core.issuing.issue_forecasts` call per ``batch_size`` issue times and one
    `publish_issued` per batch, as the backfill flow's tasks; ``on_batch(n)`` is called
    with the number of issue times of each finished batch. Returns the keys of
    `flows.backfill.backfill`'s result (``status``, ``failed_regions`` as records, ...).
    """
    from flare_core.issuing import (
        BATCH_ISSUE_TIMES,
        failed_records,
        issue_forecasts,
        publish_issued,
        publish_page,
        read_snapshot,
        run_status,
    )

    bundle, path = load_model(layout, model_dir)
    sharp, flares = read_snapshot(layout.store,
                                  times[0] - timedelta(hours=_history_h(bundle)), times[-1],
                                  series=series)
    totals: dict[str, Any] = {"rows": 0, "issue_times": 0, "gaps": {}, "model_seconds": 0.0,
                              "failed_regions": []}
    size = max(1, int(batch_size if batch_size is not None else BATCH_ISSUE_TIMES))
    for i in range(0, len(times), size):
        chunk = times[i:i + size]
        t0 = time.perf_counter()
        issued = issue_forecasts(bundle, sharp, flares, chunk)
        totals["model_seconds"] += time.perf_counter() - t0
        totals["rows"] += issued.rows.height
        totals["issue_times"] += len(chunk) - len(issued.gaps)
        totals["gaps"].update(issued.gaps)
        totals["failed_regions"] += failed_records(issued.failed)
        if issued.rows.height or issued.failed.height:
            publish_issued(issued.rows, layout.forecasts, layout.scoreboard,
                           failed=issued.failed, mode="historical")
        if on_batch is not None:
            on_batch(len(chunk))
    out = {"start": times[0].isoformat(), "end": times[-1].isoformat(),
           "requested": len(times), **totals,
           "status": run_status(totals["rows"], len(totals["failed_regions"])),
           "series": series, "forecast_store": str(layout.forecasts), "model_dir": str(path)}
    if page and totals["rows"]:
        out["page"] = str(publish_page(layout.forecasts, layout.page))
    return out


def score_local(start: datetime, end: datetime, layout: Layout,
                model_dir: str | Path | None = None) -> dict[str, Any]:
    """Score the forecasts issued in [start, end] (UTC), as `flows.evaluate.evaluate` (same
    result and ``published_scores.json``, no Prefect artifact):
    `flare_core.publish.verification.evaluate_published`."""
    from flare_core.publish.verification import evaluate_published

    if model_dir is None and layout.latest_model() is not None:
        model_dir = layout.latest_model()
    report = layout.evaluation / f"{start:%Y%m%dT%H%M}_{end:%Y%m%dT%H%M}"
    return evaluate_published(layout.forecasts, layout.store, start, end, report,
                              model_dir=model_dir)
