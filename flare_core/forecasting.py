"""Forecasts from a trained model directory: per record (`predict_records`) and per issue time
(`forecast_at`, `forecast_many`).

`ModelBundle.load` reads MODEL_DIR (written by `flare_core.training.train_all`) without
unpickling anything: each model's own ``load`` reads torch state_dicts (``weights_only``),
skops files behind an allow-list and JSON.

Time conventions: datetimes are tz-aware UTC. In `predict_records` ``p_*24`` is the
probability that a flare of at least that class peaks in ``(t_rec, t_rec + 24 h]`` and
``mean_lifetime_h`` and survival-curve times are hours after ``t_rec``.

At an issue time ``t_i`` (`forecast_at`) each region's newest record *served* by ``t_i``
(``served_at <= t_i``, `flare_core.schema.served_at_expr`: when JSOC served it, not its
``t_rec``) is used, with lead ``L = t_i - t_rec`` (``0 <= L < freshness_h``; freshness is
measured from ``t_rec``):

* the survival model is *re-based* to the issue time, conditioned on no >=M flare in
  ``(t_rec, t_i]``: ``S_i(u) = S(L + u) / S(L)`` for hours ``u`` after ``t_i``, where ``S`` is
  the record's right-continuous step curve (constant between grid points, ``S(0) = 1``).
  The published ``p_m24 = 1 - S_i(24)``, ``p_x24 = p_m24 * P(X | M)`` (the same X-given-M
  factor as at the record time) and ``mean_lifetime_h = integral_0^(Tmax - L) S_i(u) du``
  (the restricted mean remaining lifetime, exact step integral; *not* bias-corrected by
  ``mu0``, like ``mean_lifetime_h`` of `predict_records`, which is the ``L = 0`` case);
* the binary models (DeFN, LSTM, logistic, persistence, climatology) have no time
  structure to re-base: their ``p_*24`` is, as trained, the probability for
  ``(t_rec, t_rec + 24 h]``, the window starting at the record time published in ``t_rec``
  (at most ``freshness_h`` before the issue time), not ``(t_i, t_i + 24 h]``.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .errors import ConfigError, DataGapError, DataQualityWarning, ModelError
from .models.calibration import PlattCalibration
from .schema import DEFAULT_NRT_LATENCY, with_served_at
from .training import (
    ALL_MODELS,
    MODEL_FORMAT_VERSION,
    MODEL_SPECS,
    TrainConfig,
    _Context,
    apply_log_scaling,
    build_model_dataset,
)

__all__ = [
    "PREDICTION_COLUMNS",
    "ModelBundle",
    "limit_torch_threads",
    "predict_records",
    "forecast_at",
    "forecast_many",
    "survival_probabilities",
]

logger = logging.getLogger(__name__)

#: Columns every `predict_records` frame has (null where the model is not in the bundle).
PREDICTION_COLUMNS: tuple[str, ...] = (
    "p_m24_survival",
    "p_m24_defn",
    "p_c24_defn",
    "mean_lifetime_h",
    "warning_24h",
)

_SCALAR_DTYPES = {"warning_24h": pl.Boolean, "next_flare_class": pl.Utf8}


@dataclass(frozen=True)
class ModelBundle:
    """Every model of one MODEL_DIR, loaded and ready to predict.

    Attributes
    ----------
    model_dir : Path
    meta : dict
        The content of ``model.json``.
    config : TrainConfig
        The training configuration (feature windows are reused at prediction time).
    models : dict of str to object
        Fitted models by name (`flare_core.training.ALL_MODELS` order).
    torch_threads : int or None
        torch intra-op threads while this bundle predicts (`predict_records`; set and
        restored around the call, so the process-wide setting is unchanged afterwards).
        Default 1: the networks are small and extra OpenMP threads on a busy machine make
        inference much slower. None leaves torch's setting alone.
    """

    model_dir: Path
    meta: dict[str, Any]
    config: TrainConfig
    models: dict[str, Any] = field(default_factory=dict)
    torch_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.torch_threads is not None and not (
            isinstance(self.torch_threads, int) and self.torch_threads >= 1
        ):
            raise ConfigError(
                f"torch_threads must be a positive int or None, got {self.torch_threads!r}")

    @classmethod
    def load(cls, model_dir: str | Path, *, torch_threads: int | None = 1) -> ModelBundle:
        """Read MODEL_DIR; raises `ModelError` if it is incomplete or of another format.

        ``torch_threads`` is the attribute of that name (default 1).
        """
        from .models.persistence import read_json

        d = Path(model_dir)
        meta = read_json(d / "model.json")
        if meta.get("format_version") != MODEL_FORMAT_VERSION:
            raise ModelError(
                f"{d}: model format {meta.get('format_version')!r} is not supported "
                f"(expected {MODEL_FORMAT_VERSION})"
            )
        config = TrainConfig.from_mapping(meta["config"])
        models: dict[str, Any] = {}
        for name in ALL_MODELS:
            entry = meta["models"].get(name)
            if entry is None:
                continue
            spec = MODEL_SPECS.get(name)
            if spec is None:
                raise ModelError(f"{d}: model {name!r} has no loader in this code version")
            models[name] = spec.load_model(d / entry["dir"])
        logger.info("loaded %s: %s", d, ", ".join(models))
        return cls(model_dir=d, meta=meta, config=config, models=models,
                   torch_threads=torch_threads)

    @property
    def features(self) -> list[str]:
        """Feature columns, in training order."""
        return list(self.meta["features"])

    @property
    def version(self) -> str:
        """Model version tag: code version and a short hash of ``model.json``."""
        digest = hashlib.sha256(
            repr(sorted((k, str(v)) for k, v in self.meta.items())).encode()
        ).hexdigest()[:10]
        return f"{self.meta.get('code_version', '?')}-{digest}"

    def threshold(self, name: str) -> float:
        """Decision threshold of a binary model, chosen on the validation regions.

        For a calibrated model it applies to the calibrated probabilities.
        """
        return float(self.meta["models"][name].get("threshold", 0.5))

    def calibration(self, name: str) -> PlattCalibration | None:
        """Probability calibration fitted on the validation regions, or None (not calibrated)."""
        values = self.meta["models"][name].get("calibration")
        return None if values is None else PlattCalibration.from_dict(values)

    def lookback_h(self) -> float:
        """Hours of SHARP history before a region's newest record that its forecast reads.

        ``feature_h + record_span_h``: the models read, besides the newest record, the
        region's earlier records back to ``record_span_h`` hours before it, and every record
        read has features over the trailing ``feature_h = max(window_h, long_window_h)``
        (`flare_core.features`). A data window starting this long before the newest record
        gives each record read the same features (and the same predictions) as the full
        history. ``record_span_h`` is the largest of

        * the sequence model (``n_steps`` records, `flare_core.models.lstm.LSTMConfig`): its
          ``max_lookback_h`` when set, else ``(n_steps - 1) * freshness_h``, a bound that
          holds while consecutive records of a region are at most ``freshness_h`` apart
          (the age beyond which a record is no longer used; longer gaps may shorten the
          sequence of the oldest records only by records older than the bound);
        * the lifetime warning: its line-fit window ``window_h`` plus the ``4 sigma_h`` reach
          of the causal Gaussian smoothing of the lifetime track
          (`flare_core.models.lifetime.smooth_lifetime_track`; the kernel's width in records
          comes from the median cadence of the segment so far, which a shorter window can
          still change when the cadence is irregular);
        * ``max_lookback_h`` or ``lookback_h`` of any other model's config.
        """
        cfg = self.config
        feature_h = max(cfg.window_h, cfg.long_window_h)
        span_h = 0.0
        for model in self.models.values():
            span_h = max(span_h, float(getattr(model, "lookback_h", 0.0) or 0.0))
            model_cfg = getattr(model, "config", None)
            max_lookback = getattr(model_cfg, "max_lookback_h", None)
            n_steps = getattr(model_cfg, "n_steps", None)
            if max_lookback:
                span_h = max(span_h, float(max_lookback))
            elif isinstance(n_steps, int) and n_steps > 1:
                span_h = max(span_h, (n_steps - 1) * float(cfg.freshness_h))
            sigma_h, track_window_h = (getattr(model, "sigma_h", None),
                                       getattr(model, "window_h", None))
            if sigma_h and track_window_h:
                span_h = max(span_h, float(track_window_h) + 4.0 * float(sigma_h))
        return feature_h + span_h


def _with_missing_features(bundle: ModelBundle, dataset: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in bundle.features if c not in dataset.columns]
    if missing:
        warnings.warn(
            f"{len(missing)} feature column(s) of the model are absent from the data and are "
            f"imputed by the models: {missing[:8]}{' ...' if len(missing) > 8 else ''}",
            DataQualityWarning, stacklevel=3,
        )
        dataset = dataset.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
    return dataset


@contextmanager
def limit_torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n_threads)``, then restore the old value.

    Does nothing when ``n_threads`` is None or torch has not been imported (no model of the
    bundle uses it).
    """
    torch = sys.modules.get("torch")
    if n_threads is None or torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def predict_records(bundle: ModelBundle, dataset: pl.DataFrame) -> pl.DataFrame:
    """Every model's forecast for every record of ``dataset``.

    Parameters
    ----------
    bundle : ModelBundle
    dataset : pl.DataFrame
        Features of the records (`flare_core.training.build_model_dataset`, labels optional
        and never read): ``harpnum``, ``t_rec`` and the feature columns. A record's features
        use only data at or before its ``t_rec``, so its forecast does too.

    Returns
    -------
    pl.DataFrame
        One row per input row, in input order: ``harpnum``, ``t_rec``, the
        `PREDICTION_COLUMNS` (``p_m24_survival``, ``p_m24_defn``, ``p_c24_defn`` in [0, 1],
        ``mean_lifetime_h`` hours, ``warning_24h`` bool) and every model's own columns
        (``p_m24_<model>``, ``survival_grid_h``/``survival_curve`` lists, ...). Columns of a
        model the bundle lacks are null.
    """
    for col in ("harpnum", "t_rec"):
        if col not in dataset.columns:
            raise ModelError(f"dataset lacks the key column {col!r}")
    data = _with_missing_features(bundle, dataset)
    scales = bundle.meta.get("log_scaled_features") or {}
    if scales:
        data = apply_log_scaling(data, scales)
    ctx = _Context(config=bundle.config, features=bundle.features, models=bundle.models,
                   device="cpu", thresholds={n: bundle.threshold(n) for n in bundle.models})
    out: dict[str, Any] = {}
    ctx.outputs["_rows"] = data
    for name, model in bundle.models.items():
        t0 = time.perf_counter()
        with limit_torch_threads(bundle.torch_threads):
            values = MODEL_SPECS[name].predict(model, data, ctx)
        calibration = bundle.calibration(name)
        if calibration is not None:
            column = MODEL_SPECS[name].binary[0]
            values = {**values, column: calibration.apply(values[column])}
        for col, v in values.items():
            ctx.outputs[col] = v
            if not col.startswith("_"):
                out[col] = v
        logger.debug("predicted %s for %d records in %.2f s", name, data.height,
                     time.perf_counter() - t0)
    n = data.height
    columns: list[pl.Series] = [data["harpnum"], data["t_rec"]]
    for col in PREDICTION_COLUMNS:
        if col not in out:
            dtype = _SCALAR_DTYPES.get(col, pl.Float64)
            columns.append(pl.Series(col, [None] * n, dtype=dtype))
    for col, v in out.items():
        if isinstance(v, pl.Series):
            columns.append(v.alias(col))
        else:
            columns.append(pl.Series(col, v))
    frame = pl.DataFrame(columns)
    ordered = ["harpnum", "t_rec", *PREDICTION_COLUMNS]
    return frame.select(ordered + [c for c in frame.columns if c not in ordered])


# ------------------------------------------------------------------------------ forecast_at


#: (forecast-store model name, bundle model that must exist, column map) per published model.
_PUBLISHED: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("survival", "cox_time", {"p_m24": "p_m24_survival", "p_c24": "p_c24_survival",
                              "p_x24": "p_x24_survival", "mean_lifetime_h": "mean_lifetime_h"}),
    ("defn", "defn_m", {"p_m24": "p_m24_defn", "p_c24": "p_c24_defn"}),
    ("lstm", "lstm", {"p_m24": "p_m24_lstm"}),
    ("logistic", "logistic", {"p_m24": "p_m24_logistic"}),
    ("persistence", "persistence", {"p_m24": "p_m24_persistence"}),
    ("climatology", "climatology", {"p_m24": "p_m24_climatology"}),
)


def _to_utc(t: datetime) -> datetime:
    from .timeutil import to_utc

    return to_utc(t)


def _with_served_at(sharp: pl.DataFrame, default_latency: timedelta) -> pl.DataFrame:
    """``sharp`` with ``served_at`` (`flare_core.schema.with_served_at`); one series only."""
    if "series" in sharp.columns and sharp["series"].drop_nulls().n_unique() > 1:
        found = sorted(sharp["series"].drop_nulls().unique())
        raise ConfigError(f"the SHARP frame mixes series {found}: HARP numbers are per "
                          "series; forecast one at a time")
    return with_served_at(sharp, default_latency)


def forecast_at(
    bundle: ModelBundle,
    sharp: pl.DataFrame,
    flares: pl.DataFrame,
    issue_time: datetime,
    *,
    freshness_h: float | None = None,
    default_latency: timedelta = DEFAULT_NRT_LATENCY,
) -> pl.DataFrame:
    """Forecasts issued at ``issue_time`` for every region with a fresh SHARP record.

    Strictly no look-ahead: only SHARP rows served by ``issue_time`` (``served_at <=
    issue_time``, `flare_core.schema.served_at_expr`; hence ``t_rec <= issue_time``) and
    flares with ``peak_time < issue_time`` are read, so the result is the same whatever
    later data the frames hold. Each region's newest served record is used if its
    ``t_rec`` is less than ``freshness_h`` before ``issue_time``.

    Parameters
    ----------
    bundle : ModelBundle
    sharp : pl.DataFrame
        Canonical SHARP keyword frame (`flare_core.schema`), any time range.
    flares : pl.DataFrame
        Canonical flare frame with ``harpnum`` attached, any time range.
    issue_time : datetime
        Issue time (tz-aware; converted to UTC). The survival model's window is
        ``(issue_time, issue_time + 24 h]``; the binary models' window is
        ``(t_rec, t_rec + 24 h]`` (module docstring).
    freshness_h : float, optional
        Largest age (hours, from ``t_rec``) of the record used; default
        ``bundle.config.freshness_h``.
    default_latency : timedelta
        ``available_at`` assumed as ``t_rec + default_latency`` where unknown (null or no
        such column); default `flare_core.schema.DEFAULT_NRT_LATENCY`.

    Returns
    -------
    pl.DataFrame
        Rows in the schema of `flare_core.publish.forecast_store.FORECAST_SCHEMA`, one per
        (region, published model): ``issue_time, harpnum, noaa_ars, model, model_version,
        t_rec, p_c24, p_m24, p_x24, mean_lifetime_h, warning_class, survival_grid_h,
        survival_curve``. For the survival model ``p_m24``, ``p_x24``, ``mean_lifetime_h``
        and the curve are re-based to ``issue_time`` (conditioned on no >=M flare since
        ``t_rec``; module docstring) and survival times are hours after ``issue_time``;
        its ``p_c24`` is null (not forecast: the model is of >=M flares only). The binary
        models' probabilities are for ``(t_rec, t_rec + 24 h]``.

    Raises
    ------
    DataGapError
        If no region has a record within ``freshness_h`` before ``issue_time``.
    """
    from .publish.forecast_store import conform_forecasts

    t0 = time.perf_counter()
    issue = _to_utc(issue_time)
    fresh_h = bundle.config.freshness_h if freshness_h is None else float(freshness_h)
    fresh_start = issue - timedelta(hours=fresh_h)
    past = (_with_served_at(sharp, default_latency)
            .filter(pl.col("served_at") <= issue).drop("served_at"))
    latest = (
        past.filter(pl.col("t_rec") > fresh_start)
        .sort("t_rec")
        .group_by("harpnum", maintain_order=True)
        .last()
        .select("harpnum", pl.col("t_rec").alias("_latest"),
                pl.col("noaa_ars") if "noaa_ars" in past.columns else pl.lit(None, pl.Utf8)
                .alias("noaa_ars"))
    )
    if latest.height == 0:
        raise DataGapError(
            f"no SHARP record in ({fresh_start.isoformat()}, {issue.isoformat()}]: "
            "nothing to forecast"
        )
    lookback = timedelta(hours=bundle.lookback_h() + fresh_h)
    window = past.filter(
        pl.col("harpnum").is_in(latest["harpnum"].implode())
        & (pl.col("t_rec") > issue - lookback)
    )
    known_flares = flares.filter(pl.col("peak_time") < issue)
    dataset = build_model_dataset(window, known_flares, bundle.config, with_labels=False)
    # every record of the window is predicted, not only the newest: the sequence model and
    # the lifetime warning read a region's earlier records among those predicted
    preds = (
        predict_records(bundle, dataset.sort("harpnum", "t_rec"))
        .join(latest, on="harpnum")
        .filter(pl.col("t_rec") == pl.col("_latest"))
        .drop("_latest")
        .unique(["harpnum"], keep="last", maintain_order=True)
        .with_columns(pl.lit(issue).alias("issue_time"))
    )
    rows = _published_rows(bundle, preds)
    logger.info("forecast at %s: %d regions, %d rows in %.2f s", issue.isoformat(),
                preds.height, rows.height, time.perf_counter() - t0)
    return conform_forecasts(rows)


def forecast_many(
    bundle: ModelBundle,
    sharp: pl.DataFrame,
    flares: pl.DataFrame,
    issue_times: Iterable[datetime],
    *,
    freshness_h: float | None = None,
    default_latency: timedelta = DEFAULT_NRT_LATENCY,
) -> pl.DataFrame:
    """`forecast_at` for many issue times, predicting each SHARP record once.

    Every issue time uses, per region, the same record as `forecast_at` (the newest served
    by ``issue_time``, less than ``freshness_h`` old): a record is usable from its
    ``served_at`` until the next record of its region is served or it is ``freshness_h``
    old, whichever comes first; each distinct (harpnum, t_rec)
    record is predicted once and every issue time's rows are derived from it (the survival
    model re-based to that issue time, module docstring). Equal to concatenating
    `forecast_at` over the sorted distinct issue times, except that issue times without a
    fresh record are skipped (counted and logged) instead of raising.

    Parameters
    ----------
    bundle : ModelBundle
    sharp : pl.DataFrame
        Canonical SHARP keyword frame, any time range (nothing after the last issue time is
        read).
    flares : pl.DataFrame
        Canonical flare frame with ``harpnum`` attached; a record's features read only the
        flares that peaked before its ``t_rec``.
    issue_times : iterable of datetime
        Issue times (tz-aware; converted to UTC; duplicates dropped).
    freshness_h, default_latency
        As in `forecast_at`.

    Returns
    -------
    pl.DataFrame
        The `forecast_at` rows of every issue time, by ascending issue time (within one,
        in `forecast_at`'s order).

    Raises
    ------
    ConfigError
        If ``issue_times`` is empty.
    DataGapError
        If no issue time has a fresh record.
    """
    from .publish.forecast_store import conform_forecasts

    t0 = time.perf_counter()
    issues = sorted({_to_utc(t) for t in issue_times})
    if not issues:
        raise ConfigError("issue_times is empty")
    fresh_h = bundle.config.freshness_h if freshness_h is None else float(freshness_h)
    fresh = timedelta(hours=fresh_h)
    issue_s = pl.Series("issue_time", issues, dtype=pl.Datetime("us", "UTC"))
    iss_us = issue_s.dt.epoch("us").to_numpy()
    past = _with_served_at(sharp, default_latency).filter(
        (pl.col("served_at") <= issues[-1]) & (pl.col("t_rec") > issues[0] - fresh))
    noaa = pl.col("noaa_ars") if "noaa_ars" in past.columns else pl.lit(None, pl.Utf8)
    # per region and t_rec the last row (forecast_at: stable sort by t_rec, then .last())
    recs = (
        past.select("harpnum", "t_rec", noaa.alias("noaa_ars"), "served_at")
        .with_row_index("_i").sort("harpnum", "t_rec", "_i")
        .unique(["harpnum", "t_rec"], keep="last", maintain_order=True).drop("_i")
    )
    t_us = recs["t_rec"].dt.epoch("us").to_numpy()
    served_us = recs["served_at"].dt.epoch("us").to_numpy()
    recs = recs.drop("served_at")
    same_next = np.r_[recs["harpnum"].to_numpy()[1:] == recs["harpnum"].to_numpy()[:-1], False]
    # served_at is non-decreasing in t_rec within a region: the next record, once served,
    # replaces this one
    next_us = np.where(same_next, np.r_[served_us[1:], 0], np.iinfo(np.int64).max)
    end_us = np.minimum(next_us, t_us + fresh // timedelta(microseconds=1))
    lo = np.searchsorted(iss_us, served_us, side="left")  # first issue time >= served_at
    hi = np.searchsorted(iss_us, end_us, side="left")  # issue times before the next record
    counts = np.maximum(hi - lo, 0)
    rec_idx = np.repeat(np.arange(recs.height), counts)
    issue_idx = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
                 + np.repeat(lo, counts))
    n_empty = len(issues) - np.unique(issue_idx).size
    if rec_idx.size == 0:
        raise DataGapError(f"no SHARP record within {fresh_h} h before any of {len(issues)} "
                           "issue time(s): nothing to forecast")
    if n_empty:
        logger.warning("%d of %d issue time(s) have no fresh SHARP record: skipped",
                       n_empty, len(issues))
    used = recs[np.unique(rec_idx)]
    pairs = pl.DataFrame({"_rec": rec_idx, "issue_time": issue_s.gather(issue_idx)})
    lookback = timedelta(hours=bundle.lookback_h() + fresh_h)
    window = sharp.filter(
        pl.col("harpnum").is_in(used["harpnum"].unique().implode())
        & (pl.col("t_rec") > issues[0] - lookback) & (pl.col("t_rec") <= issues[-1])
    )
    known_flares = flares.filter(pl.col("peak_time") < issues[-1])
    dataset = build_model_dataset(window, known_flares, bundle.config, with_labels=False)
    # as in forecast_at, all records of the window are predicted (sequences, warning track)
    preds = predict_records(bundle, dataset.sort("harpnum", "t_rec")).unique(
        ["harpnum", "t_rec"], keep="last", maintain_order=True
    ).join(
        recs.with_row_index("_rec").join(pairs.with_columns(pl.col("_rec").cast(pl.UInt32)),
                                         on="_rec").drop("_rec"),
        on=["harpnum", "t_rec"],
    ).sort("issue_time", "harpnum")
    rows = _published_rows(bundle, preds).sort("issue_time", maintain_order=True)
    logger.info("forecasts at %d issue times: %d records predicted, %d rows in %.2f s",
                len(issues) - n_empty, dataset.height,
                rows.height, time.perf_counter() - t0)
    return conform_forecasts(rows)


def _published_rows(bundle: ModelBundle, preds: pl.DataFrame) -> pl.DataFrame:
    """Forecast-store rows of ``preds`` (`predict_records` columns plus ``issue_time`` and
    ``noaa_ars``), one per (row, published model); the survival model re-based to the row's
    issue time (module docstring)."""
    frames: list[pl.DataFrame] = []
    rebased: pl.DataFrame | None = None
    if "cox_time" in bundle.models and "survival_curve" in preds.columns:
        rebased = _rebased_survival(preds)
    for model_name, needs, cmap in _PUBLISHED:
        if needs not in bundle.models:
            continue
        cols: list[pl.Expr] = [
            pl.col("issue_time"), pl.col("harpnum"), pl.col("noaa_ars"),
            pl.lit(model_name).alias("model"), pl.lit(bundle.version).alias("model_version"),
            pl.col("t_rec"),
        ]
        for target in ("p_c24", "p_m24", "p_x24", "mean_lifetime_h"):
            src = cmap.get(target)
            if src is not None and src in preds.columns:
                cols.append(pl.col(src).cast(pl.Float64).alias(target))
            else:
                cols.append(pl.lit(None, dtype=pl.Float64).alias(target))
        if model_name == "survival" and "warning_24h" in preds.columns:
            cols.append(
                pl.when(pl.col("warning_24h")).then(pl.lit("M")).otherwise(pl.lit(None))
                .cast(pl.Utf8).alias("warning_class")
            )
        else:
            cols.append(pl.lit(None, dtype=pl.Utf8).alias("warning_class"))
        frame = preds.select(cols)
        if model_name == "survival" and rebased is not None:
            # re-based to the issue time: replaces the record-time values (hours after t_rec)
            frame = frame.with_columns(rebased.get_column(c) for c in rebased.columns)
        if frame["p_c24"].null_count() < frame.height:
            # P(>=C) >= P(>=M) >= P(>=X) by definition; separately trained heads may disagree
            frame = frame.with_columns(
                pl.max_horizontal("p_m24", "p_x24").alias("p_m24")
            ).with_columns(pl.max_horizontal("p_c24", "p_m24").alias("p_c24"))
        frames.append(frame)
    if not frames:
        raise ModelError("the bundle has no model that publishes forecasts")
    return pl.concat(frames, how="diagonal_relaxed")


def survival_probabilities(preds: pl.DataFrame, horizons_h: Iterable[float]) -> pl.DataFrame:
    """``p_m{h}_survival = 1 - S(h)`` of every record for each horizon ``h`` (hours).

    ``S`` is the record's right-continuous step curve (``survival_grid_h``,
    ``survival_curve`` of `predict_records`; 1 before the first grid point), so
    ``1 - S(h)`` is the probability of a >=M flare peaking in ``(t_rec, t_rec + h]``.
    Null where a record has no curve or ``h`` lies beyond the curve's last point (the
    follow-up ``tmax_h``). Column names print ``h`` without a trailing ``.0``
    (``p_m6_survival``, ``p_m24_survival``, ``p_m1.5_survival``).

    Raises
    ------
    ConfigError
        If a horizon is not positive, or ``preds`` lacks the survival curve columns.
    """
    hs = [float(h) for h in horizons_h]
    if not hs or any(not np.isfinite(h) or h <= 0 for h in hs):
        raise ConfigError(f"horizons must be positive hours, got {hs}")
    for col in ("survival_grid_h", "survival_curve"):
        if col not in preds.columns:
            raise ConfigError(f"no survival curves to read horizons from ({col!r} missing: "
                              "the model directory has no cox_time model)")
    grid, curve = pl.col("survival_grid_h"), pl.col("survival_curve")
    out = []
    for h in hs:
        j = grid.list.eval(pl.element() <= h).list.sum().cast(pl.Int64) - 1
        s_h = pl.when(j < 0).then(pl.lit(1.0)).otherwise(curve.list.get(j, null_on_oob=True))
        beyond = grid.list.last() < h
        name = f"p_m{h:g}_survival"
        out.append(pl.when(grid.is_null() | curve.is_null() | beyond).then(None)
                   .otherwise((1.0 - s_h).clip(0.0, 1.0)).alias(name))
    return preds.select(out)


def _step_at(grid: np.ndarray, curve: np.ndarray, t_h: float) -> float:
    """Value at ``t_h >= 0`` of the right-continuous step curve (1 before ``grid[0]``)."""
    j = int(np.searchsorted(grid, t_h, side="right")) - 1
    return 1.0 if j < 0 else float(curve[j])


def _rebased_survival(preds: pl.DataFrame) -> pl.DataFrame:
    """The survival model's values re-based from ``t_rec`` to ``issue_time``, row by row.

    With lead ``L = issue_time - t_rec`` (hours) and the record's step curve ``S`` on hours
    after ``t_rec``, the curve on hours ``u`` after the issue time is
    ``S_i(u) = S(L + u) / S(L)`` (no >=M flare in ``(t_rec, issue_time]``): published on
    ``0`` and the grid points beyond ``L`` shifted by ``-L``, with ``S_i(0) = 1``. Returns
    ``p_m24 = 1 - S_i(24)``, ``p_x24 = p_m24 * P(X | M)``, ``mean_lifetime_h`` =
    ``integral_0^(Tmax - L) S_i`` (`flare_core.models.lifetime.restricted_mean_lifetime`,
    ``Tmax`` the grid's last point), ``survival_grid_h`` and ``survival_curve``; all null
    for a row without curve, with ``S(L) = 0`` or with ``L + 24 h`` beyond ``Tmax``.
    """
    from .models.lifetime import restricted_mean_lifetime

    n = preds.height
    p_x_given_m = _x_given_m(preds)
    p_m24: list[float | None] = [None] * n
    p_x24: list[float | None] = [None] * n
    life: list[float | None] = [None] * n
    grids: list[list[float] | None] = [None] * n
    curves: list[list[float] | None] = [None] * n
    lead_us = (preds["issue_time"] - preds["t_rec"]).dt.total_microseconds().to_list()
    for i, (lead_i, grid, curve) in enumerate(zip(lead_us, preds["survival_grid_h"],
                                                  preds["survival_curve"], strict=True)):
        if grid is None or curve is None or lead_i is None:
            continue
        g = np.asarray(grid, dtype=np.float64)
        s = np.asarray(curve, dtype=np.float64)
        lead = max(lead_i / 3.6e9, 0.0)
        tmax = float(g[-1])
        s_lead = _step_at(g, s, lead)
        if s_lead <= 0 or lead + 24.0 > tmax:
            continue
        keep = g > lead
        g_i = np.r_[0.0, g[keep] - lead]
        s_i = np.r_[1.0, np.clip(s[keep] / s_lead, 0.0, 1.0)]
        p = min(max(1.0 - _step_at(g_i, s_i, 24.0), 0.0), 1.0)
        p_m24[i] = p
        if p_x_given_m is not None and p_x_given_m[i] is not None:
            p_x24[i] = p * p_x_given_m[i]
        life[i] = float(restricted_mean_lifetime(g_i, s_i[None, :], tmax - lead)[0])
        grids[i] = g_i.tolist()
        curves[i] = s_i.tolist()
    return pl.DataFrame([
        pl.Series("p_m24", p_m24, dtype=pl.Float64),
        pl.Series("p_x24", p_x24, dtype=pl.Float64),
        pl.Series("mean_lifetime_h", life, dtype=pl.Float64),
        pl.Series("survival_grid_h", grids, dtype=pl.List(pl.Float64)),
        pl.Series("survival_curve", curves, dtype=pl.List(pl.Float64)),
    ])


def _x_given_m(preds: pl.DataFrame) -> list[float | None] | None:
    """``P(X | M)`` per row: the class forest's output, else ``p_x24 / p_m24`` of the record
    (0 where ``p_m24`` is 0); None when the bundle has no X forecast."""
    if "p_x_given_m_forest" in preds.columns:
        return preds["p_x_given_m_forest"].cast(pl.Float64).to_list()
    if "p_x24_survival" not in preds.columns:
        return None
    return preds.select(
        pl.when(pl.col("p_m24_survival") > 0)
        .then(pl.col("p_x24_survival") / pl.col("p_m24_survival"))
        .otherwise(pl.when(pl.col("p_x24_survival").is_not_null()).then(0.0))
    ).to_series().cast(pl.Float64).to_list()
