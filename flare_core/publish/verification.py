"""Rolling verification of published forecasts against the flares that happened.

The forecast page shows how each model did over the last days before its issue time ``T``:
every forecast issued in ``[T - window_d, T - horizon_h]`` (its window ``(issue_time,
issue_time + horizon_h]`` closed by ``T``) is paired with the outcome "a flare of at least
``min_class`` peaked in the region in ``(issue_time, issue_time + horizon_h]``"
(`flare_core.labels.label_time_to_event` with the issue time as record time, as
``tasks.evaluation`` scores published periods). Only flares peaking before ``T`` are read,
so the page never uses what was not known at its issue time.

All functions are pure functions on frames; the page draws their results with
`flare_core.publish.plots.plot_verification`.

`label_forecasts`
    The verifiable forecasts of the window with their Boolean outcome ``observed``.
`score_forecasts`
    Per model: forecasts, events, Brier score, Brier skill score, ROC AUC and TSS.
`reliability_table`, `roc_table`
    The points of the reliability diagram and ROC curve of each model.
"""

from __future__ import annotations

import logging
import math
import warnings
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from .. import metrics
from ..config import check_positive
from ..errors import ConfigError, DataQualityWarning
from ..labels import binary_label_names, label_time_to_event
from ..timeutil import to_utc

__all__ = ["verification_window", "label_forecasts", "score_forecasts",
           "reliability_table", "roc_table"]

logger = logging.getLogger(__name__)

_MODEL_KEYS = ["model", "model_version"]


def verification_window(issue_time: datetime, *, window_d: float = 30.0,
                        horizon_h: float = 24.0) -> tuple[datetime, datetime]:
    """``(start, end)``: the issue times ``[start, end]`` verifiable at ``issue_time``.

    ``start = issue_time - window_d`` days and ``end = issue_time - horizon_h`` hours, the
    last issue time whose prediction window has closed by ``issue_time``.
    """
    check_positive("window_d", window_d)
    check_positive("horizon_h", horizon_h)
    t = to_utc(issue_time)
    return t - timedelta(days=window_d), t - timedelta(hours=horizon_h)


def label_forecasts(forecasts: pl.DataFrame, flares: pl.DataFrame, *, issue_time: datetime,
                    window_d: float = 30.0, horizon_h: float = 24.0,
                    column: str = "p_m24") -> pl.DataFrame:
    """The forecasts verifiable at ``issue_time``, with their observed outcome.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast rows (`flare_core.publish.forecast_store.FORECAST_SCHEMA`), any issue
        times and models.
    flares : pl.DataFrame
        Canonical flare frame with ``harpnum`` attached (`flare_core.store.Store.read_flares`);
        flares peaking at or after ``issue_time`` are ignored.
    issue_time : datetime
        The page's issue time T (UTC).
    window_d : float, optional
        Days of issue times to verify (default 30).
    horizon_h : float, optional
        Prediction window, hours (default 24).
    column : {"p_m24", "p_c24"}, optional
        The probability verified: >=M (default) or >=C flares.

    Returns
    -------
    pl.DataFrame
        The rows of ``forecasts`` issued in `verification_window` with a non-null
        ``column``, plus ``observed`` (Boolean: a flare of the class or above peaked in the
        region in ``(issue_time, issue_time + horizon_h]``), sorted by model and issue time.
    """
    if column not in ("p_m24", "p_c24"):
        raise ConfigError(f"column must be 'p_m24' or 'p_c24', got {column!r}")
    start, end = verification_window(issue_time, window_d=window_d, horizon_h=horizon_h)
    rows = forecasts.filter(pl.col("issue_time").is_between(start, end),
                            pl.col(column).is_not_null())
    if rows.is_empty():
        return rows.with_columns(observed=pl.lit(None, dtype=pl.Boolean))
    known = flares.filter(pl.col("peak_time") < to_utc(issue_time))
    records = rows.select("harpnum", pl.col("issue_time").alias("t_rec")).unique()
    labels = label_time_to_event(records, known, horizon_h=horizon_h)
    m_label, c_label = binary_label_names(horizon_h)
    label = m_label if column == "p_m24" else c_label
    return rows.join(
        labels.select("harpnum", pl.col("t_rec").alias("issue_time"),
                      pl.col(label).alias("observed")),
        on=["harpnum", "issue_time"], how="left",
    ).sort(*_MODEL_KEYS, "issue_time", "harpnum")


def _quiet(fn, *args, **kwargs) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        v = fn(*args, **kwargs)
    return None if v is None or not math.isfinite(v) else float(v)


def score_forecasts(labelled: pl.DataFrame, *, column: str = "p_m24",
                    threshold: float = 0.5) -> pl.DataFrame:
    """Verification scores of each model over the labelled forecasts.

    Parameters
    ----------
    labelled : pl.DataFrame
        Output of `label_forecasts` (``observed`` and ``column``).
    column : str, optional
        The probability column scored (default ``p_m24``).
    threshold : float, optional
        Probability at or above which a forecast counts as "yes" for the TSS (default 0.5,
        fixed in advance; never tuned on the scored forecasts).

    Returns
    -------
    pl.DataFrame
        One row per (model, model_version), sorted: ``n`` (forecasts), ``events``,
        ``event_rate``, ``brier`` (mean squared error of the probabilities), ``bss`` (Brier
        skill score against the window's own event rate; null when that rate is 0 or 1),
        ``roc_auc``, ``tss`` (at ``threshold``) and ``tss_warning`` (of the model's own
        warning, ``warning_class`` set; null for models without warnings). A score that is
        undefined (one class only) is null.
    """
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold!r}")
    rows = []
    data = labelled.filter(pl.col("observed").is_not_null(), pl.col(column).is_not_null())
    for (model, version), part in data.group_by(_MODEL_KEYS, maintain_order=True):
        y = part["observed"].cast(pl.Int64).to_numpy()
        p = part[column].cast(pl.Float64).to_numpy()
        rate = float(y.mean())
        has_warning = part["warning_class"].null_count() < part.height
        rows.append({
            "model": model, "model_version": version, "n": int(y.size),
            "events": int(y.sum()), "event_rate": rate,
            "brier": metrics.brier_score(y, p),
            "bss": (_quiet(metrics.brier_skill_score, y, p, climatology=rate)
                    if 0.0 < rate < 1.0 else None),
            "roc_auc": _quiet(metrics.roc_auc, y, p),
            "tss": _quiet(metrics.true_skill_statistic, y, p >= threshold),
            "tss_warning": (_quiet(metrics.true_skill_statistic, y,
                                   part["warning_class"].is_not_null().to_numpy())
                            if has_warning else None),
        })
    schema = {"model": pl.Utf8, "model_version": pl.Utf8, "n": pl.Int64, "events": pl.Int64,
              "event_rate": pl.Float64, "brier": pl.Float64, "bss": pl.Float64,
              "roc_auc": pl.Float64, "tss": pl.Float64, "tss_warning": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort(_MODEL_KEYS)


def reliability_table(labelled: pl.DataFrame, *, column: str = "p_m24",
                      n_bins: int = 10) -> pl.DataFrame:
    """Reliability-diagram points of each model (`flare_core.metrics.reliability_bins`).

    Returns
    -------
    pl.DataFrame
        model, model_version, bin_lower, bin_upper, n, mean_prob, event_rate; empty bins
        left out; sorted by model and bin.
    """
    parts = []
    data = labelled.filter(pl.col("observed").is_not_null(), pl.col(column).is_not_null())
    for (model, version), part in data.group_by(_MODEL_KEYS, maintain_order=True):
        bins = metrics.reliability_bins(part["observed"].cast(pl.Int64).to_numpy(),
                                        part[column].cast(pl.Float64).to_numpy(),
                                        n_bins=n_bins)
        parts.append(bins.filter(pl.col("n") > 0).select(
            pl.lit(model).alias("model"), pl.lit(version).alias("model_version"),
            pl.all()))
    if not parts:
        return pl.DataFrame(schema={"model": pl.Utf8, "model_version": pl.Utf8,
                                    "bin_lower": pl.Float64, "bin_upper": pl.Float64,
                                    "n": pl.Int64, "mean_prob": pl.Float64,
                                    "event_rate": pl.Float64})
    return pl.concat(parts).sort(*_MODEL_KEYS, "bin_lower")


def roc_table(labelled: pl.DataFrame, *, column: str = "p_m24") -> pl.DataFrame:
    """ROC-curve points of each model whose outcomes hold both classes.

    Returns
    -------
    pl.DataFrame
        model, model_version, threshold, fpr (probability of false detection), tpr
        (probability of detection), in curve order (`sklearn.metrics.roc_curve`, threshold
        decreasing; the first point is (0, 0) with an infinite threshold).
    """
    from sklearn.metrics import roc_curve

    parts = []
    data = labelled.filter(pl.col("observed").is_not_null(), pl.col(column).is_not_null())
    for (model, version), part in data.group_by(_MODEL_KEYS, maintain_order=True):
        y = part["observed"].cast(pl.Int64).to_numpy()
        if y.min() == y.max():
            continue
        fpr, tpr, thr = roc_curve(y, part[column].cast(pl.Float64).to_numpy())
        parts.append(pl.DataFrame({"model": model, "model_version": version,
                                   "threshold": thr.astype(np.float64), "fpr": fpr,
                                   "tpr": tpr}))
    if not parts:
        return pl.DataFrame(schema={"model": pl.Utf8, "model_version": pl.Utf8,
                                    "threshold": pl.Float64, "fpr": pl.Float64,
                                    "tpr": pl.Float64})
    return pl.concat(parts)
