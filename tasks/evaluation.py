"""Prefect task that scores published forecasts against the flares that happened.

For each published (issue_time, harpnum, model) row the outcome is whether a flare of at
least M1.0 (and C1.0) peaked in ``(issue_time, issue_time + 24 h]`` in that region
(`flare_core.labels.label_time_to_event` with the forecast issue time as record time).
Scores come from `flare_core.metrics`; decision thresholds are fixed in advance (0.5 for
probabilities, the model's own warning flag), never tuned on the scored period. The Brier
skill score uses the training climatology stored in MODEL_DIR when a model directory is
given, else the period's own event rate (the usual sample-climatology reference).
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.common import run_logger

__all__ = ["label_published", "score_published", "evaluate_published"]

_TARGETS = (("p_m24", "m_within_24h"), ("p_c24", "c_within_24h"))


def label_published(forecasts: pl.DataFrame, flares: pl.DataFrame,
                    horizon_h: float = 24.0) -> pl.DataFrame:
    """``forecasts`` plus the Boolean outcomes ``m_within_24h`` and ``c_within_24h``."""
    from flare_core.labels import label_time_to_event

    records = forecasts.select("harpnum", pl.col("issue_time").alias("t_rec")).unique()
    labels = label_time_to_event(records, flares, horizon_h=horizon_h)
    return forecasts.join(
        labels.select("harpnum", pl.col("t_rec").alias("issue_time"), "m_within_24h",
                      "c_within_24h"),
        on=["harpnum", "issue_time"], how="left")


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return _clean(v.item())
    return v


def score_published(labelled: pl.DataFrame, climatology: dict[str, float] | None = None
                    ) -> dict[str, Any]:
    """Per model and target: n, events, Brier score, BSS, ROC AUC and contingency scores.

    ``climatology`` maps a label column to the reference event rate of the BSS.
    """
    from flare_core import metrics

    out: dict[str, Any] = {}
    for (model,), part in labelled.group_by(["model"], maintain_order=True):
        res: dict[str, Any] = {}
        for col, label in _TARGETS:
            d = part.filter(pl.col(col).is_not_null() & pl.col(label).is_not_null())
            if d.height == 0:
                continue
            y = d[label].cast(pl.Int64).to_numpy()
            p = d[col].to_numpy().astype(float)
            clim = (climatology or {}).get(label, float(y.mean()))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r: dict[str, Any] = {"n": int(y.size), "events": int(y.sum()),
                                     "brier": metrics.brier_score(y, p),
                                     "bss": (metrics.brier_skill_score(y, p, climatology=clim)
                                             if 0.0 < clim < 1.0 else None),
                                     "auc": metrics.roc_auc(y, p),
                                     "at_0.5": metrics.skill_scores(y, p >= 0.5)}
                if label == "m_within_24h" and part["warning_class"].null_count() < part.height:
                    w = d["warning_class"].is_not_null().to_numpy()
                    r["warning"] = metrics.skill_scores(y, w)
            res[col] = {k: ({kk: _clean(vv) for kk, vv in v.items()} if isinstance(v, dict)
                            else _clean(v)) for k, v in r.items()}
        out[str(model)] = res
    return out


@task(cache_policy=NO_CACHE)
def evaluate_published(forecast_store: str, store_root: str, start: datetime, end: datetime,
                       report_dir: str, *, model_dir: str | None = None) -> dict[str, Any]:
    """Score the forecasts issued in [start, end] (UTC); writes ``published_scores.json``.

    Only issue times whose whole 24-h window is covered by the flare list are scored; the
    others are counted as ``not_yet_verifiable``.
    """
    from prefect.artifacts import create_table_artifact

    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.store import Store

    log = run_logger()
    fc = ForecastStore(forecast_store).read(start=start, end=end + timedelta(microseconds=1))
    flares = Store(store_root).read_flares()
    last_flare = flares["peak_time"].max() if flares.height else None
    verifiable = (fc.filter(pl.col("issue_time") + timedelta(hours=24) <= last_flare)
                  if last_flare is not None else fc.clear())
    clim = None
    if model_dir is not None:
        from flare_core.models.persistence import read_json

        clim = read_json(Path(model_dir) / "model.json").get("climatology")
    scores = score_published(label_published(verifiable, flares), clim) if verifiable.height \
        else {}
    result = {"start": start.isoformat(), "end": end.isoformat(), "rows": fc.height,
              "issue_times": fc["issue_time"].n_unique() if fc.height else 0,
              "not_yet_verifiable": fc.height - verifiable.height, "models": scores}
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "published_scores.json").write_text(json.dumps(result, indent=1, default=str))
    table = [{"model": m, "target": t, "n": s["n"], "events": s["events"],
              "brier": s["brier"], "bss": s["bss"], "auc": s["auc"],
              "tss_at_0.5": s["at_0.5"].get("tss")}
             for m, per in scores.items() for t, s in per.items()]
    if table:
        create_table_artifact(key="published-skill", table=table,
                              description=f"Skill of forecasts issued {start:%Y-%m-%d %H:%M}"
                                          f" .. {end:%Y-%m-%d %H:%M} UTC")
    log.info("scored %d rows (%d not yet verifiable) -> %s", verifiable.height,
             result["not_yet_verifiable"], out / "published_scores.json")
    return result
