"""Verification of published forecasts against the flares that happened.

The outcome of a forecast row issued at ``issue_time`` for a region is "a flare of at
least M1.0 (C1.0) peaked in the region in ``(issue_time, issue_time + horizon_h]``"
(`flare_core.labels.label_time_to_event` with the issue time as record time). One home for
both uses:

- the page's rolling verification: at the page's issue time ``T`` every forecast issued in
  ``[T - window_d, T - horizon_h]`` (its window closed by ``T``), scored with the flares
  that peaked before ``T`` only, so the page never uses what was not known then;
- the scores of a published period (``flareflow score``, the ``evaluate`` flow): every
  forecast of the period whose window the flare list covers, with the training
  climatology as the BSS reference.

Decision thresholds are fixed in advance (0.5 for probabilities, the model's own warning
flag), never tuned on the scored forecasts.

`verification_window`
    The issue times verifiable at a page's issue time.
`label_forecasts`
    Forecast rows with their Boolean outcomes (``m_within_24h``, ``c_within_24h``).
`score_forecasts`
    Per model (and version) and probability column: n, events, Brier score, BSS, ROC AUC,
    TSS and the contingency scores at the threshold and of the warning.
`scores_by_model`
    Those scores as the nested document of ``published_scores.json``.
`reliability_table`, `roc_table`
    The points of the reliability diagram and ROC curve of each model.
`evaluate_published`
    The one function with I/O: reads the forecast and data stores, scores a period and
    writes ``published_scores.json``.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .. import metrics
from ..config import check_positive
from ..errors import ConfigError, DataQualityWarning
from ..labels import binary_label_names, label_time_to_event
from ..timeutil import to_utc

__all__ = ["verification_window", "outcome_column", "label_forecasts", "score_forecasts",
           "scores_by_model", "reliability_table", "roc_table", "evaluate_published"]

logger = logging.getLogger(__name__)

_MODEL_KEYS = ["model", "model_version"]
#: The probability columns verified, by outcome class (>=M, >=C) of `binary_label_names`.
_VERIFIED = ("p_m24", "p_c24")
_INT_SCORES = ("tp", "fn", "fp", "tn", "n")
_FLOAT_SCORES = ("pod", "far", "csi", "tss", "hss", "accuracy")
#: The contingency scores (`flare_core.metrics.scores_from_table`) as a struct column.
_SKILL = pl.Struct({**{k: pl.Int64 for k in _INT_SCORES},
                    **{k: pl.Float64 for k in _FLOAT_SCORES}})


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


def outcome_column(column: str, horizon_h: float = 24.0) -> str:
    """The outcome column of a probability column: ``p_m24`` -> ``m_within_24h``,
    ``p_c24`` -> ``c_within_24h``. Raises `ConfigError` for any other column."""
    if column not in _VERIFIED:
        raise ConfigError(f"column must be 'p_m24' or 'p_c24', got {column!r}")
    m_label, c_label = binary_label_names(horizon_h)
    return m_label if column == "p_m24" else c_label


def label_forecasts(forecasts: pl.DataFrame, flares: pl.DataFrame, *,
                    issue_time: datetime | None = None, window_d: float = 30.0,
                    horizon_h: float = 24.0) -> pl.DataFrame:
    """Forecast rows with their observed outcomes.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast rows (`flare_core.publish.forecast_store.FORECAST_SCHEMA`), any issue
        times and models.
    flares : pl.DataFrame
        Canonical flare frame with ``harpnum`` attached (`flare_core.store.Store.read_flares`).
    issue_time : datetime, optional
        A page's issue time T (UTC): keep only the rows issued in `verification_window`
        and ignore the flares peaking at or after T. None: label every row with every flare
        (the caller keeps the rows whose window the flare list covers).
    window_d : float, optional
        Days of issue times verified at ``issue_time`` (default 30).
    horizon_h : float, optional
        Prediction window, hours (default 24).

    Returns
    -------
    pl.DataFrame
        The rows kept, plus the Boolean outcomes ``m_within_24h`` and ``c_within_24h``
        (`outcome_column`; a flare >= M1.0 / >= C1.0 peaked in the region in
        ``(issue_time, issue_time + horizon_h]``), sorted by model, version, issue time
        and region.
    """
    m_label, c_label = binary_label_names(horizon_h)
    rows, known = forecasts, flares
    if issue_time is not None:
        start, end = verification_window(issue_time, window_d=window_d, horizon_h=horizon_h)
        rows = forecasts.filter(pl.col("issue_time").is_between(start, end))
        known = flares.filter(pl.col("peak_time") < to_utc(issue_time))
    if rows.is_empty():
        return rows.with_columns(pl.lit(None, dtype=pl.Boolean).alias(m_label),
                                 pl.lit(None, dtype=pl.Boolean).alias(c_label))
    records = rows.select("harpnum", pl.col("issue_time").alias("t_rec")).unique()
    labels = label_time_to_event(records, known, horizon_h=horizon_h)
    return rows.join(
        labels.select("harpnum", pl.col("t_rec").alias("issue_time"), m_label, c_label),
        on=["harpnum", "issue_time"], how="left",
    ).sort(*[c for c in _MODEL_KEYS if c in rows.columns], "issue_time", "harpnum")


def _quiet(fn, *args, **kwargs) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        v = fn(*args, **kwargs)
    return None if v is None or not math.isfinite(v) else float(v)


def _skill(y: np.ndarray, yes: np.ndarray) -> dict[str, Any]:
    """`metrics.skill_scores` with undefined (non-finite) scores as None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        s = metrics.skill_scores(y, yes)
    return {k: (None if v is None or not math.isfinite(float(v)) else
                (int(v) if k in _INT_SCORES else float(v))) for k, v in s.items()
            if k in _INT_SCORES or k in _FLOAT_SCORES}


def score_forecasts(labelled: pl.DataFrame, *, columns: Sequence[str] = ("p_m24",),
                    by: Sequence[str] = ("model", "model_version"),
                    climatology: Mapping[str, float] | None = None,
                    threshold: float = 0.5, horizon_h: float = 24.0) -> pl.DataFrame:
    """Verification scores of each model over the labelled forecasts.

    Parameters
    ----------
    labelled : pl.DataFrame
        Output of `label_forecasts` (the outcome columns and ``columns``).
    columns : sequence of {"p_m24", "p_c24"}, optional
        The probability columns scored (default ``p_m24``), each against its
        `outcome_column`; rows with a null probability or outcome are left out.
    by : sequence of str, optional
        The groups scored (default model and version; ``("model",)`` pools the versions of
        a published period).
    climatology : mapping, optional
        Outcome column -> reference event rate of the BSS (a model's training climatology);
        default the scored rows' own event rate.
    threshold : float, optional
        Probability at or above which a forecast counts as "yes" (default 0.5, fixed in
        advance; never tuned on the scored forecasts).
    horizon_h : float, optional
        Prediction window of the outcome columns, hours (default 24).

    Returns
    -------
    pl.DataFrame
        One row per group and column, sorted by ``by`` then ``column`` in the order given:
        ``column``, ``n`` (forecasts), ``events``, ``event_rate``, ``brier`` (mean squared
        error of the probabilities), ``bss`` (Brier skill score against the reference;
        null when that rate is 0 or 1), ``roc_auc``, ``tss`` (at ``threshold``),
        ``tss_warning`` (of the model's own warning, ``warning_class`` set; null for
        models without warnings and for ``p_c24``), ``at_threshold`` and ``warning`` (every
        contingency score, `flare_core.metrics.skill_scores`, as structs). A score that is
        undefined (one class only) is null.

    Raises
    ------
    ConfigError
        For a column other than ``p_m24``/``p_c24`` or a threshold outside (0, 1].
    """
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold!r}")
    outcomes = {c: outcome_column(c, horizon_h) for c in columns}
    keys = list(by)
    rows = []
    for group, part in labelled.group_by(keys, maintain_order=True):
        for col, label in outcomes.items():
            d = part.filter(pl.col(label).is_not_null(), pl.col(col).is_not_null())
            if d.is_empty():
                continue
            y = d[label].cast(pl.Int64).to_numpy()
            p = d[col].cast(pl.Float64).to_numpy()
            rate = float(y.mean())
            ref = (climatology or {}).get(label, rate)
            warned = (d["warning_class"].is_not_null().to_numpy()
                      if col == "p_m24" and d["warning_class"].null_count() < d.height
                      else None)
            rows.append({
                **dict(zip(keys, group, strict=True)), "column": col, "n": int(y.size),
                "events": int(y.sum()), "event_rate": rate,
                "brier": metrics.brier_score(y, p),
                "bss": (_quiet(metrics.brier_skill_score, y, p, climatology=ref)
                        if 0.0 < ref < 1.0 else None),
                "roc_auc": _quiet(metrics.roc_auc, y, p),
                "tss": _quiet(metrics.true_skill_statistic, y, p >= threshold),
                "tss_warning": (None if warned is None else
                                _quiet(metrics.true_skill_statistic, y, warned)),
                "at_threshold": _skill(y, p >= threshold),
                "warning": None if warned is None else _skill(y, warned),
            })
    schema = {**{k: pl.Utf8 for k in keys}, "column": pl.Utf8, "n": pl.Int64,
              "events": pl.Int64, "event_rate": pl.Float64, "brier": pl.Float64,
              "bss": pl.Float64, "roc_auc": pl.Float64, "tss": pl.Float64,
              "tss_warning": pl.Float64, "at_threshold": _SKILL, "warning": _SKILL}
    order = {c: i for i, c in enumerate(columns)}
    return (pl.DataFrame(rows, schema=schema)
            .with_columns(pl.col("column").replace_strict(order, return_dtype=pl.Int64)
                          .alias("_order"))
            .sort(*keys, "_order").drop("_order"))


def scores_by_model(scores: pl.DataFrame, *, threshold: float = 0.5) -> dict[str, Any]:
    """`score_forecasts` (grouped by ``model``) as ``{model: {column: {...}}}``.

    Each entry holds ``n``, ``events``, ``brier``, ``bss``, ``auc``, ``at_<threshold>``
    (the contingency scores at the threshold) and, for models with warnings, ``warning``:
    the layout of ``published_scores.json``.
    """
    out: dict[str, Any] = {}
    for r in scores.iter_rows(named=True):
        entry = {"n": r["n"], "events": r["events"], "brier": r["brier"], "bss": r["bss"],
                 "auc": r["roc_auc"], f"at_{threshold:g}": r["at_threshold"]}
        if r["warning"] is not None:
            entry["warning"] = r["warning"]
        out.setdefault(str(r["model"]), {})[r["column"]] = entry
    return out


def reliability_table(labelled: pl.DataFrame, *, column: str = "p_m24",
                      n_bins: int = 10, horizon_h: float = 24.0) -> pl.DataFrame:
    """Reliability-diagram points of each model (`flare_core.metrics.reliability_bins`).

    Returns
    -------
    pl.DataFrame
        model, model_version, bin_lower, bin_upper, n, mean_prob, event_rate; empty bins
        left out; sorted by model and bin.
    """
    label = outcome_column(column, horizon_h)
    parts = []
    data = labelled.filter(pl.col(label).is_not_null(), pl.col(column).is_not_null())
    for (model, version), part in data.group_by(_MODEL_KEYS, maintain_order=True):
        bins = metrics.reliability_bins(part[label].cast(pl.Int64).to_numpy(),
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


def roc_table(labelled: pl.DataFrame, *, column: str = "p_m24",
              horizon_h: float = 24.0) -> pl.DataFrame:
    """ROC-curve points of each model whose outcomes hold both classes.

    Returns
    -------
    pl.DataFrame
        model, model_version, threshold, fpr (probability of false detection), tpr
        (probability of detection), in curve order (`sklearn.metrics.roc_curve`, threshold
        decreasing; the first point is (0, 0) with an infinite threshold).
    """
    from sklearn.metrics import roc_curve

    label = outcome_column(column, horizon_h)
    parts = []
    data = labelled.filter(pl.col(label).is_not_null(), pl.col(column).is_not_null())
    for (model, version), part in data.group_by(_MODEL_KEYS, maintain_order=True):
        y = part[label].cast(pl.Int64).to_numpy()
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


def evaluate_published(forecast_store: str | Path, store_root: str | Path, start: datetime,
                       end: datetime, report_dir: str | Path, *,
                       model_dir: str | Path | None = None) -> dict[str, Any]:
    """Score the forecasts issued in [start, end] (UTC); writes ``published_scores.json``.

    Only issue times whose whole 24-h window the flare list covers (``issue_time + 24 h <=``
    the last flare's peak) are scored, per model (versions pooled) and for ``p_m24`` and
    ``p_c24``; the others are counted as ``not_yet_verifiable``. The BSS reference is the
    training climatology of ``model_dir``'s ``model.json`` when given, else each scored
    group's own event rate.

    Returns
    -------
    dict
        ``start``, ``end`` (ISO), ``rows``, ``issue_times``, ``not_yet_verifiable`` and
        ``models`` (`scores_by_model`), as written to ``report_dir/published_scores.json``.
    """
    from ..store import Store
    from .forecast_store import ForecastStore

    start, end = to_utc(start), to_utc(end)
    fc = ForecastStore(forecast_store).read(start=start, end=end + timedelta(microseconds=1))
    flares = Store(store_root).read_flares()
    last_flare = flares["peak_time"].max() if flares.height else None
    verifiable = (fc.filter(pl.col("issue_time") + timedelta(hours=24) <= last_flare)
                  if last_flare is not None else fc.clear())
    clim = None
    if model_dir is not None:
        from ..models.persistence import read_json

        clim = read_json(Path(model_dir) / "model.json").get("climatology")
    scores = (scores_by_model(score_forecasts(label_forecasts(verifiable, flares),
                                              columns=_VERIFIED, by=("model",),
                                              climatology=clim))
              if verifiable.height else {})
    result = {"start": start.isoformat(), "end": end.isoformat(), "rows": fc.height,
              "issue_times": fc["issue_time"].n_unique() if fc.height else 0,
              "not_yet_verifiable": fc.height - verifiable.height, "models": scores}
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "published_scores.json").write_text(json.dumps(result, indent=1, default=str))
    logger.info("scored %d rows (%d not yet verifiable) -> %s", verifiable.height,
                result["not_yet_verifiable"], out / "published_scores.json")
    return result
