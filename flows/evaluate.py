"""The ``evaluate`` flow: score a published period against the flares that happened."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from flows.layout import Layout
from tasks.common import parse_utc
from tasks.evaluation import evaluate_published

__all__ = ["evaluate"]


@flow(name="evaluate")
def evaluate(start: datetime, end: datetime, store: str | None = None,
             model_dir: str | None = None) -> dict[str, Any]:
    """Score the forecasts issued in [start, end] (UTC) in the installation's ForecastStore.

    Outcomes come from the store's flare list: a flare >= M1.0 (C1.0) peaking in
    ``(issue_time, issue_time + 24 h]`` in the region. Writes
    ``<root>/published/evaluation/<start>_<end>/published_scores.json`` and a table artifact.
    """
    layout = Layout.of(store)
    start, end = parse_utc(start), parse_utc(end)
    report = layout.evaluation / f"{start:%Y%m%dT%H%M}_{end:%Y%m%dT%H%M}"
    if model_dir is None and layout.latest_model() is not None:
        model_dir = str(layout.latest_model())
    return evaluate_published(str(layout.forecasts), str(layout.store), start, end,
                              str(report), model_dir=model_dir)
