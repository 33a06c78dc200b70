"""Prefect task that scores published forecasts against the flares that happened.

A thin wrapper: the outcomes, scores and ``published_scores.json`` are
`flare_core.publish.verification.evaluate_published` (the one home of verification, also
used by the page and by ``flareflow score`` without a server); this task adds the Prefect
table artifact and the run log line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.common import run_logger

__all__ = ["evaluate_published"]


@task(cache_policy=NO_CACHE)
def evaluate_published(forecast_store: str, store_root: str, start: datetime, end: datetime,
                       report_dir: str, *, model_dir: str | None = None) -> dict[str, Any]:
    """Score the forecasts issued in [start, end] (UTC); writes ``published_scores.json``
    (`flare_core.publish.verification.evaluate_published`) and a ``published-skill`` table
    artifact."""
    from prefect.artifacts import create_table_artifact

    from flare_core.publish.verification import evaluate_published as score_period

    result = score_period(forecast_store, store_root, start, end, report_dir,
                          model_dir=model_dir)
    table = [{"model": m, "target": t, "n": s["n"], "events": s["events"],
              "brier": s["brier"], "bss": s["bss"], "auc": s["auc"],
              "tss_at_0.5": s["at_0.5"].get("tss")}
             for m, per in result["models"].items() for t, s in per.items()]
    if table:
        create_table_artifact(key="published-skill", table=table,
                              description=f"Skill of forecasts issued {start:%Y-%m-%d %H:%M}"
                                          f" .. {end:%Y-%m-%d %H:%M} UTC")
    run_logger().info("scored %s .. %s: %d rows, %d not yet verifiable -> %s/"
                      "published_scores.json", start.isoformat(), end.isoformat(),
                      result["rows"], result["not_yet_verifiable"], report_dir)
    return result
