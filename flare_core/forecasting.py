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
  structure to re-base. Their ``p_*24`` is, as trained, the probability for
  ``(t_rec, t_rec + 24 h]``; it is published as the forecast for ``(t_i, t_i + 24 h]``
  under a stationarity assumption over the lead: with a flare rate constant over
  ``(t_rec, t_i + 24 h]`` (``L < freshness_h``, 6 h by default) the probability for any
  24-hour window of it is the same number (a constant-hazard conversion
  ``1 - (1 - p)^(24/24)`` over the shifted window returns ``p``). Unlike the survival
  model this does not condition on no flare in ``(t_rec, t_i]``; the approximation's error
  is bounded by the flare rate's change over at most ``freshness_h`` hours. So every
  product, and every scoreboard document, forecasts ``(t_i, t_i + 24 h]``.

Classes (`_published_rows`): a model without an X+ head publishes ``p_x24 = p_m24 *
P(X | M)`` of the flare-class forest (the record's), then every row's ``(p_c24, p_m24,
p_x24)`` is projected onto ``C+ >= M+ >= X+`` (`project_class_probabilities`). A class no
model of the row gives stays null (`flare_core.publish.forecast_store.ABSENT_CLASS_REASONS`
says why). With ``headline=True`` one ``headline`` row per region follows `HeadlineRule`.

Region isolation: one absurd region never stops an issue time. A SHARP record with a value
beyond the float32 range the models compute in (`MAX_FEATURE_MAGNITUDE`), a model raising on
a region's rows (the batch is then predicted region by region) and an invalid output
(`isolate_invalid_regions`: NaN or out-of-range probability, bad lifetime or survival
curve, no value) leave out that region at that issue time, with its reason
(``return_failed=True``); every other region is forecast as without it.
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

from .config import TrainConfig
from .dataset import LogScaler, build_model_dataset
from .errors import ConfigError, DataGapError, DataQualityWarning, ModelError
from .models.calibration import PlattCalibration
from .models.registry import (
    ALL_MODELS,
    estimator_groups,
    load_estimators,
    predict_columns,
    published_specs,
)
from .schema import DEFAULT_NRT_LATENCY, with_served_at
from .timeutil import to_utc
from .training import MODEL_FORMAT_VERSION

__all__ = [
    "PREDICTION_COLUMNS",
    "ModelBundle",
    "limit_torch_threads",
    "predict_records",
    "forecast_at",
    "forecast_many",
    "survival_probabilities",
    "isolate_invalid_regions",
    "project_class_probabilities",
    "HeadlineRule",
    "headline_rule",
    "MAX_FEATURE_MAGNITUDE",
    "forget_own_reply_times",
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
        The fitted estimator of each model, by model name (`flare_core.models.registry`
        order); the three stages of the survival chain map to the one `SurvivalChain`.
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

        ``model.json`` is checked against
        `flare_core.models.persistence.MODEL_JSON_SCHEMA`, and every model ``dir`` must
        resolve inside MODEL_DIR (no absolute path, no ``..``, no symbolic link leading out);
        the error names the file and the field.

        ``torch_threads`` is the attribute of that name (default 1).
        """
        from .models.persistence import read_json, resolve_inside, validate_model_json

        d = Path(model_dir)
        file = d / "model.json"
        meta = read_json(file)
        if isinstance(meta, dict) and meta.get("format_version") != MODEL_FORMAT_VERSION:
            raise ModelError(
                f"{d}: model format {meta.get('format_version')!r} is not supported "
                f"(expected {MODEL_FORMAT_VERSION})"
            )
        validate_model_json(meta, file)
        try:
            config = TrainConfig.from_mapping(meta["config"])
        except (TypeError, ValueError) as e:  # ConfigError is a ValueError
            raise ModelError(f"{file}: field config: {e}") from e
        unknown = sorted(set(meta["models"]) - set(ALL_MODELS))
        if unknown:
            raise ModelError(f"{d}: model {unknown[0]!r} has no loader in this code version")
        models = load_estimators({
            name: resolve_inside(d, meta["models"][name]["dir"], file=file,
                                 field=f"models.{name}.dir")
            for name in ALL_MODELS if name in meta["models"]})
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
        * the lifetime warning (the survival chain's ``lookback_h``): its line-fit window
          ``window_h`` plus the ``4 sigma_h`` reach
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


def predict_records(bundle: ModelBundle, dataset: pl.DataFrame, *,
                    rows: np.ndarray | pl.Series | None = None) -> pl.DataFrame:
    """Every model's forecast for every record of ``dataset``.

    Parameters
    ----------
    bundle : ModelBundle
    dataset : pl.DataFrame
        Features of the records (`flare_core.dataset.build_model_dataset`, labels optional
        and never read): ``harpnum``, ``t_rec`` and the feature columns. A record's features
        use only data at or before its ``t_rec``, so its forecast does too.
    rows : boolean array or Series, optional
        The records whose forecasts are wanted (one flag per row of ``dataset``; default
        all). The other records are still read as context (the sequence model's earlier
        records, the lifetime track of the warning; the forest and Cox-Time predict every
        record for that track) but the other models do not predict them: their binary
        probabilities and warning are null. The wanted records' values are those of a call
        without ``rows`` (the SVM's labels exactly; the networks get at least
        `flare_core.models.registry.MIN_PREDICTED_ROWS` records a batch, measured to
        round as in a whole batch).

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
        data = LogScaler.from_scales(scales).transform(data)
    wanted = None
    if rows is not None:
        wanted = np.asarray(rows.to_numpy() if isinstance(rows, pl.Series) else rows)
        if wanted.dtype != np.bool_ or wanted.shape != (data.height,):
            raise ModelError(f"rows must be one bool per record ({data.height}), got "
                             f"{wanted.dtype} of shape {wanted.shape}")
        if wanted.all():
            wanted = None
    out: dict[str, Any] = {}
    for group, specs in estimator_groups(list(bundle.models)):
        t0 = time.perf_counter()
        with limit_torch_threads(bundle.torch_threads):
            values = predict_columns(group, specs, bundle.models[specs[0].name], data,
                                     rows=wanted)
        for spec in specs:
            calibration = bundle.calibration(spec.name)
            if calibration is not None:
                column = spec.columns[0]
                values = {**values, column: calibration.apply(values[column])}
        out.update(values)
        logger.debug("predicted %s for %d records in %.2f s", group, data.height,
                     time.perf_counter() - t0)
    n = data.height
    columns: list[pl.Series] = [data["harpnum"], data["t_rec"]]
    for col in PREDICTION_COLUMNS:
        if col not in out:
            dtype = _SCALAR_DTYPES.get(col, pl.Float64)
            columns.append(pl.Series(col, [None] * n, dtype=dtype))
    unwanted = None if wanted is None else np.flatnonzero(~wanted)
    for col, v in out.items():
        series = v.alias(col) if isinstance(v, pl.Series) else pl.Series(col, v)
        if unwanted is not None and unwanted.size and isinstance(v, np.ndarray) \
                and series.dtype.is_float():
            series = series.scatter(unwanted, None)  # not predicted: null, not NaN
        columns.append(series)
    frame = pl.DataFrame(columns)
    ordered = ["harpnum", "t_rec", *PREDICTION_COLUMNS]
    return frame.select(ordered + [c for c in frame.columns if c not in ordered])


# ------------------------------------------------------------------------------ forecast_at


def _with_served_at(sharp: pl.DataFrame, default_latency: timedelta,
                    until: datetime | None = None) -> pl.DataFrame:
    """``sharp`` with ``served_at`` (`flare_core.schema.with_served_at`); one series only.

    With ``until``, the rows that cannot be served by then are dropped first where that
    is exact: ``served_at`` is a cumulative maximum in T_REC order, so a record's value
    reads no later record, and a record with ``t_rec > until`` is served after ``until``
    unless its ``available_at`` (or ``t_rec + default_latency``) is before its ``t_rec``;
    when one such record exists every row is kept. The rows with ``served_at <= until``
    and their values are those of the whole frame.
    """
    if "series" in sharp.columns and sharp["series"].drop_nulls().n_unique() > 1:
        found = sorted(sharp["series"].drop_nulls().unique())
        raise ConfigError(f"the SHARP frame mixes series {found}: HARP numbers are per "
                          "series; forecast one at a time")
    if until is not None:
        fallback = pl.col("t_rec") + pl.lit(default_latency)
        avail = (pl.coalesce(pl.col("available_at"), fallback)
                 if "available_at" in sharp.columns else fallback)
        later = pl.col("t_rec") > until
        if not sharp.select((later & (avail <= until)).any()).item():
            sharp = sharp.filter(~later)
    return with_served_at(sharp, default_latency)


def forecast_at(
    bundle: ModelBundle,
    sharp: pl.DataFrame,
    flares: pl.DataFrame,
    issue_time: datetime,
    *,
    freshness_h: float | None = None,
    default_latency: timedelta = DEFAULT_NRT_LATENCY,
    headline: bool = False,
    return_failed: bool = False,
) -> pl.DataFrame | tuple[pl.DataFrame, pl.DataFrame]:
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
        Issue time (tz-aware; converted to UTC). Every model's window is
        ``(issue_time, issue_time + 24 h]`` (module docstring).
    freshness_h : float, optional
        Largest age (hours, from ``t_rec``) of the record used; default
        ``bundle.config.freshness_h``.
    default_latency : timedelta
        ``available_at`` assumed as ``t_rec + default_latency`` where unknown (null or no
        such column); default `flare_core.schema.DEFAULT_NRT_LATENCY`.
    headline : bool
        Add one ``headline`` row per region (`HeadlineRule`; default False).
    return_failed : bool
        Return ``(rows, failed)`` instead of ``rows``: ``failed`` has one row per region
        left out (`flare_core.publish.forecast_store.FAILED_SCHEMA`: ``issue_time,
        harpnum, model_version, series, reason``; module docstring, "Region isolation").

    Returns
    -------
    pl.DataFrame
        Rows in the schema of `flare_core.publish.forecast_store.FORECAST_SCHEMA`, one per
        (region, published model): ``issue_time, harpnum, noaa_ars, model, model_version,
        series, t_rec, p_c24, p_m24, p_x24, mean_lifetime_h, warning_class,
        survival_grid_h, survival_curve, method``. For the survival model ``p_m24``,
        ``p_x24``, ``mean_lifetime_h`` and the curve are re-based to ``issue_time``
        (conditioned on no >=M flare since ``t_rec``; module docstring) and survival times
        are hours after ``issue_time``; its ``p_c24`` is null (not forecast: the model is
        of >=M flares only). The binary models' record-time probabilities are used for
        the same window. In every row ``p_c24 >= p_m24 >= p_x24``. Regions left out are
        absent (and named with ``return_failed``).

    Raises
    ------
    DataGapError
        If no region has a record within ``freshness_h`` before ``issue_time``.
    """
    from .publish.forecast_store import conform_forecasts

    t0 = time.perf_counter()
    issue = to_utc(issue_time)
    fresh_h = bundle.config.freshness_h if freshness_h is None else float(freshness_h)
    fresh_start = issue - timedelta(hours=fresh_h)
    series = _series_of(sharp)
    past = (_with_served_at(sharp, default_latency, issue)
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
    window, bad_raw = _screen_records(window)
    dataset = build_model_dataset(window, known_flares, bundle.config, with_labels=False)
    dataset, bad_records = _screen_inputs(bundle, dataset)
    bad_records = pl.concat([bad_raw, bad_records])
    # the newest records are predicted with every record of the window as context: the
    # sequence model and the lifetime warning read a region's earlier records
    predicted, raised = _predict_isolated(bundle, dataset.sort("harpnum", "t_rec"),
                                          latest.select("harpnum",
                                                        pl.col("_latest").alias("t_rec")))
    preds = (
        predicted
        .join(latest, on="harpnum", maintain_order="left")  # by harpnum (dataset order)
        .filter(pl.col("t_rec") == pl.col("_latest"))
        .drop("_latest")
        .unique(["harpnum"], keep="last", maintain_order=True)
        .with_columns(pl.lit(issue).alias("issue_time"))
    )
    expected = latest.select("harpnum", pl.col("_latest").alias("t_rec"),
                             pl.lit(issue).alias("issue_time"))
    rows, failed = _published_rows(bundle, preds, headline=headline)
    failed = _failures(bundle, expected, preds, bad_records, raised, failed, series)
    rows = rows.with_columns(pl.lit(series, pl.Utf8).alias("series"))
    logger.info("forecast at %s: %d regions, %d rows, %d regions left out in %.2f s",
                issue.isoformat(), preds.height - failed.height, rows.height, failed.height,
                time.perf_counter() - t0)
    rows = conform_forecasts(rows)
    return (rows, failed) if return_failed else rows


def forecast_many(
    bundle: ModelBundle,
    sharp: pl.DataFrame,
    flares: pl.DataFrame,
    issue_times: Iterable[datetime],
    *,
    freshness_h: float | None = None,
    default_latency: timedelta = DEFAULT_NRT_LATENCY,
    headline: bool = False,
    return_failed: bool = False,
) -> pl.DataFrame | tuple[pl.DataFrame, pl.DataFrame]:
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
    freshness_h, default_latency, headline, return_failed
        As in `forecast_at` (``failed`` then covers every issue time).

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
    issues = sorted({to_utc(t) for t in issue_times})
    if not issues:
        raise ConfigError("issue_times is empty")
    fresh_h = bundle.config.freshness_h if freshness_h is None else float(freshness_h)
    fresh = timedelta(hours=fresh_h)
    issue_s = pl.Series("issue_time", issues, dtype=pl.Datetime("us", "UTC"))
    iss_us = issue_s.dt.epoch("us").to_numpy()
    series = _series_of(sharp)
    past = _with_served_at(sharp, default_latency, issues[-1]).filter(
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
    window, bad_raw = _screen_records(window)
    dataset = build_model_dataset(window, known_flares, bundle.config, with_labels=False)
    dataset, bad_records = _screen_inputs(bundle, dataset)
    bad_records = pl.concat([bad_raw, bad_records])
    # as in forecast_at, the records used are predicted with the whole window as context
    predicted, raised = _predict_isolated(bundle, dataset.sort("harpnum", "t_rec"), used)
    expected = recs.with_row_index("_rec").join(
        pairs.with_columns(pl.col("_rec").cast(pl.UInt32)), on="_rec").drop("_rec")
    preds = predicted.unique(
        ["harpnum", "t_rec"], keep="last", maintain_order=True
    ).join(expected, on=["harpnum", "t_rec"]).sort("issue_time", "harpnum")
    rows, failed = _published_rows(bundle, preds, headline=headline)
    rows = rows.sort("issue_time", maintain_order=True)
    failed = _failures(bundle, expected.select("harpnum", "t_rec", "issue_time"), preds,
                       bad_records, raised, failed, series)
    rows = rows.with_columns(pl.lit(series, pl.Utf8).alias("series"))
    logger.info("forecasts at %d issue times: %d records predicted, %d rows, %d region "
                "forecasts left out in %.2f s", len(issues) - n_empty, dataset.height,
                rows.height, failed.height, time.perf_counter() - t0)
    rows = conform_forecasts(rows)
    return (rows, failed) if return_failed else rows


def forget_own_reply_times(sharp: pl.DataFrame, fetched_since: datetime) -> pl.DataFrame:
    """``sharp`` with the ``available_at`` stamps at or after ``fetched_since`` set to null.

    A live forecast fetches the regions' records itself, after its issue time (the hourly
    run starts a few minutes past the hour; a replay of a past hour much later), and the
    client stamps each record with the time of that reply. The stamp bounds when JSOC served
    the record from above but says nothing about whether it was served by the issue time;
    as for any record whose serve time is unknown, the modelled NRT latency
    (`flare_core.schema.served_at_expr`, ``t_rec + default_latency``) then decides. Stamps
    from earlier fetches are kept.
    """
    if "available_at" not in sharp.columns:
        return sharp
    since = to_utc(fetched_since)
    return sharp.with_columns(pl.when(pl.col("available_at") >= since).then(None)
                              .otherwise(pl.col("available_at")).alias("available_at"))


def _series_of(sharp: pl.DataFrame) -> str | None:
    """The one SHARP series of ``sharp`` (`_with_served_at` refuses several), or None."""
    if "series" not in sharp.columns:
        return None
    found = sharp["series"].drop_nulls().unique()
    return found[0] if found.len() == 1 else None


#: Largest feature magnitude a model can take: the networks and the forests compute in
#: float32, and a larger value raises (scikit-learn) or overflows to inf (torch).
MAX_FEATURE_MAGNITUDE = float(np.finfo(np.float32).max)


def _absurd(frame: pl.DataFrame, cols: list[str], what: str
            ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split off the rows with a value of ``cols`` beyond `MAX_FEATURE_MAGNITUDE` (or
    +-inf); returns (kept rows, ``harpnum, t_rec, reason`` of those split off)."""
    empty = pl.DataFrame(schema={"harpnum": pl.Int64, "t_rec": frame.schema["t_rec"],
                                 "reason": pl.Utf8})
    if not cols or frame.height == 0:
        return frame, empty
    absurd = [pl.col(c).cast(pl.Float64).abs() > MAX_FEATURE_MAGNITUDE for c in cols]
    mask = frame.select(pl.any_horizontal(absurd).fill_null(False)).to_series()
    if not mask.any():
        return frame, empty
    bad = frame.filter(mask)
    reasons = []
    for row in bad.select("harpnum", "t_rec", *cols).iter_rows(named=True):
        over = [f"{c} = {row[c]:.3g}" for c in cols
                if row[c] is not None and abs(row[c]) > MAX_FEATURE_MAGNITUDE]
        reasons.append(f"input: record {row['t_rec'].isoformat()} has {len(over)} {what} "
                       f"beyond the float32 range the models compute in ({', '.join(over[:3])}"
                       f"{' ...' if len(over) > 3 else ''})")
    logger.warning("%d record(s) with absurd %s left out", bad.height, what)
    out = bad.select(pl.col("harpnum").cast(pl.Int64), "t_rec").with_columns(
        pl.Series("reason", reasons, dtype=pl.Utf8))
    return frame.filter(~mask), out


def _screen_records(sharp: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop SHARP records with a keyword value beyond `MAX_FEATURE_MAGNITUDE` (or +-inf)
    before features are computed, so that one absurd record (the readers' plausibility
    ranges let it through, or it was written to the store directly) spoils only the issue
    times at which it is its region's newest record, not every feature window holding it."""
    cols = [c for c, dt in sharp.schema.items() if dt.is_float()]
    return _absurd(sharp, cols, "keyword value(s)")


def _screen_inputs(bundle: ModelBundle, dataset: pl.DataFrame
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop records with a feature beyond `MAX_FEATURE_MAGNITUDE` (or +-inf); name them.

    NaN features are normal (the models impute them). Returns the remaining records and
    ``harpnum, t_rec, reason`` of those dropped.
    """
    cols = [c for c in bundle.features if c in dataset.columns
            and dataset.schema[c].is_numeric()]
    return _absurd(dataset, cols, "feature(s)")


def _predict_isolated(bundle: ModelBundle, dataset: pl.DataFrame, wanted: pl.DataFrame
                      ) -> tuple[pl.DataFrame, dict[int, str]]:
    """`predict_records` of the records of ``dataset`` whose ``(harpnum, t_rec)`` is in
    ``wanted`` (the others are context), those rows only; if a model raises on the batch,
    region by region, so that a region whose rows make a model raise is left out (HARP ->
    reason) and the others predicted."""
    flag = "_wanted"
    keys = wanted.select("harpnum", "t_rec").unique().with_columns(pl.lit(True).alias(flag))
    dataset = dataset.join(keys, on=["harpnum", "t_rec"], how="left",
                           maintain_order="left").with_columns(pl.col(flag).fill_null(False))

    def predict(part: pl.DataFrame) -> pl.DataFrame:
        rows = part[flag]
        return predict_records(bundle, part.drop(flag), rows=rows).filter(rows)

    try:
        return predict(dataset), {}
    except Exception as e:  # noqa: BLE001 - any model failure; re-tried region by region
        logger.warning("prediction of %d records failed (%s: %s); predicting region by region",
                       dataset.height, type(e).__name__, e)
    parts, raised = [], {}
    for (harpnum,), part in dataset.partition_by("harpnum", as_dict=True,
                                                  maintain_order=True).items():
        try:
            parts.append(predict(part))
        except Exception as e:  # noqa: BLE001 - reported as the region's reason
            raised[int(harpnum)] = f"model: {type(e).__name__}: {e}"
    if not parts:
        return predict_records(bundle, dataset.clear().drop(flag)), raised
    return pl.concat(parts, how="diagonal_relaxed"), raised


def _failures(bundle: ModelBundle, expected: pl.DataFrame, preds: pl.DataFrame,
              bad_records: pl.DataFrame, raised: dict[int, str], invalid: pl.DataFrame,
              series: str | None) -> pl.DataFrame:
    """Every (issue_time, harpnum) of ``expected`` left out, with its reason
    (`flare_core.publish.forecast_store.FAILED_SCHEMA`)."""
    from .publish.forecast_store import FAILED_SCHEMA

    missing = expected.join(preds.select("harpnum", "t_rec", "issue_time"),
                            on=["harpnum", "t_rec", "issue_time"], how="anti")
    missing = missing.join(bad_records, on=["harpnum", "t_rec"], how="left").with_columns(
        pl.coalesce(pl.col("reason"), pl.col("harpnum").replace_strict(
            raised, default=None, return_dtype=pl.Utf8)).alias("reason"))
    if missing["reason"].null_count():
        logger.warning("%d region forecast(s) have no prediction (no feature row)",
                       missing["reason"].null_count())
        missing = missing.with_columns(pl.col("reason").fill_null(
            "input: no feature row for the record"))
    both = pl.concat([missing.select("issue_time", "harpnum", "reason"),
                      invalid.select("issue_time", "harpnum", "reason")])
    return both.with_columns(pl.lit(bundle.version).alias("model_version"),
                             pl.lit(series, pl.Utf8).alias("series")).select(
        [pl.col(c).cast(dt) for c, dt in FAILED_SCHEMA.items()]).sort("issue_time", "harpnum")


def _published_rows(bundle: ModelBundle, preds: pl.DataFrame, *, headline: bool = False
                    ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Forecast-store rows of ``preds`` (`predict_records` columns plus ``issue_time`` and
    ``noaa_ars``), one per (row, published model), and the regions left out.

    Each model's values are taken as predicted (the survival model re-based to the row's
    issue time; ``p_x24`` of a binary model from the flare-class forest, module docstring),
    with the ``headline`` rows when asked; `isolate_invalid_regions` then leaves out every
    (issue_time, harpnum) with an invalid value of any model, and
    `project_class_probabilities` makes the remaining rows' classes nested."""
    frames: list[pl.DataFrame] = []
    rebased: pl.DataFrame | None = None
    if "cox_time" in bundle.models and "survival_curve" in preds.columns:
        rebased = _rebased_survival(preds)
    x_given_m = (pl.col("p_x_given_m_forest").cast(pl.Float64)
                 if "p_x_given_m_forest" in preds.columns else None)
    for spec in published_specs():
        if spec.name not in bundle.models:
            continue
        model_name, cmap = spec.published, spec.publish_columns
        cols: list[pl.Expr] = [
            pl.col("issue_time"), pl.col("harpnum"), pl.col("noaa_ars"),
            pl.lit(model_name).alias("model"), pl.lit(bundle.version).alias("model_version"),
            pl.col("t_rec"),
        ]
        for target in ("p_c24", "p_m24", "p_x24", "mean_lifetime_h"):
            src = cmap.get(target)
            if src is not None and src in preds.columns:
                cols.append(pl.col(src).cast(pl.Float64).alias(target))
            elif target == "p_x24" and x_given_m is not None and cmap["p_m24"] in preds.columns:
                # no X head: P(X | M) of the flare-class forest times the model's P(M+)
                cols.append((pl.col(cmap["p_m24"]).cast(pl.Float64) * x_given_m).alias(target))
            else:
                cols.append(pl.lit(None, dtype=pl.Float64).alias(target))
        if model_name == "survival" and "warning_24h" in preds.columns:
            # the lifetime-track SVM's own decision (not a threshold on p_m24)
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
        frames.append(frame)
    if not frames:
        raise ModelError("the bundle has no model that publishes forecasts")
    rule = headline_rule(bundle) if headline else None
    if rule is not None:
        frames.append(_headline_frame(rule, frames, preds, x_given_m))
    rows, failed = isolate_invalid_regions(pl.concat(frames, how="diagonal_relaxed"))
    rows = project_class_probabilities(rows)
    if rule is not None:
        rows = _with_headline_warning(rows, rule)
    return rows, failed


# ---------------------------------------------------------------- validity, coherence, headline


def isolate_invalid_regions(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Leave out every region whose forecast (any model) is invalid at an issue time.

    A row is invalid when a probability (``p_c24``, ``p_m24``, ``p_x24``) is NaN, infinite
    or outside [0, 1], ``mean_lifetime_h`` is NaN, infinite or negative, it has no value at
    all (every probability, the lifetime and the curve null), or its survival curve is
    malformed (`flare_core.publish.forecast_store.curve_problem`: lengths, NaN, grid not
    increasing, S(t) outside [0, 1] or increasing). One invalid row removes all rows of that
    (issue_time, harpnum), so that every model and the headline describe the same regions;
    the other regions are untouched.

    Parameters
    ----------
    rows : pl.DataFrame
        Forecast rows (`flare_core.publish.forecast_store.FORECAST_SCHEMA` columns; values
        as the models gave them, before `project_class_probabilities`).

    Returns
    -------
    (valid, failed) : tuple of pl.DataFrame
        ``rows`` without the invalid regions (order kept) and one row per region left out:
        ``issue_time``, ``harpnum``, ``reason`` (every problem, ``"<model>: <what>"``,
        joined by "; ").
    """
    from .publish.forecast_store import PROBABILITY_COLUMNS, _maybe_bad_curve, curve_problem

    problems: list[pl.Expr] = []
    for col in PROBABILITY_COLUMNS:
        if col not in rows.columns:
            continue
        v = pl.col(col)
        bad = v.is_not_null() & (v.is_nan() | ~v.is_between(0.0, 1.0))
        problems.append(pl.when(bad).then(pl.format("{}: " + col + " = {} is not a "
                                                    "probability in [0, 1]",
                                                    pl.col("model"), v)))
    if "mean_lifetime_h" in rows.columns:
        v = pl.col("mean_lifetime_h")
        bad = v.is_not_null() & (v.is_nan() | v.is_infinite() | (v < 0))
        problems.append(pl.when(bad).then(pl.format("{}: mean_lifetime_h = {} h is not a "
                                                    "lifetime", pl.col("model"), v)))
    values = [c for c in (*PROBABILITY_COLUMNS, "mean_lifetime_h", "survival_curve")
              if c in rows.columns]
    problems.append(pl.when(pl.all_horizontal(pl.col(c).is_null() for c in values))
                    .then(pl.format("{}: no forecast value", pl.col("model"))))
    checked = rows.with_row_index("_i").with_columns(
        pl.concat_str(problems, separator="; ", ignore_nulls=True).alias("_why"))
    if "survival_curve" in rows.columns:
        # only the rows a vectorised check cannot clear are checked one by one
        curves = checked.filter(_maybe_bad_curve())
        extra = {i: f"{m}: {why}" for i, m, g, s in curves.select(
                     "_i", "model", "survival_grid_h", "survival_curve").iter_rows()
                 if (why := curve_problem(g, s)) is not None}
        if extra:
            checked = checked.with_columns(
                pl.concat_str([pl.col("_why").replace("", None),
                               pl.col("_i").replace_strict(extra, default=None,
                                                           return_dtype=pl.Utf8)],
                              separator="; ", ignore_nulls=True).alias("_why"))
    bad_rows = checked.filter(pl.col("_why").is_not_null() & (pl.col("_why") != ""))
    failed = (bad_rows.group_by("issue_time", "harpnum", maintain_order=True)
              .agg(pl.col("_why").unique(maintain_order=True).str.join("; ").alias("reason"))
              .sort("issue_time", "harpnum"))
    if failed.height:
        for r in failed.iter_rows(named=True):
            logger.warning("HARP %d left out at %s: %s", r["harpnum"],
                           r["issue_time"].isoformat(), r["reason"])
    valid = rows.join(failed.select("issue_time", "harpnum"), on=["issue_time", "harpnum"],
                      how="anti", maintain_order="left")
    return valid, failed


def _nested_projection(values: list[float]) -> list[float]:
    """Pool-adjacent-violators for a non-increasing sequence, equal weights."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return [m for m, n in blocks for _ in range(int(n))]


def project_class_probabilities(rows: pl.DataFrame) -> pl.DataFrame:
    """Make every row's class probabilities nested: ``p_c24 >= p_m24 >= p_x24``.

    A flare of X1.0 or above is one of M1.0 or above, which is one of C1.0 or above, so
    ``P(C+) >= P(M+) >= P(X+)`` for any forecast of one window; separately trained heads
    (DeFN's two nets, a C head and an M head) need not agree. Each row's present values (a
    null class stays null) are replaced by their Euclidean projection onto the ordered set
    ``{c >= m >= x}``: the isotonic (non-increasing) regression of the ordered triple with
    equal weights, computed by pool-adjacent-violators. Values already in order are left
    exactly as they are; a violating pair becomes its mean (``p_c = p_m = (p_c + p_m) / 2``
    when ``p_c < p_m``), moving both values by the least amount.

    Notes
    -----
    Why this projection rather than a clamp (``p_c = max(p_c, p_m)``): every outcome vector
    (1, 1, 1), (1, 1, 0), (1, 0, 0), (0, 0, 0) lies in the ordered set, which is convex, so
    the projection never increases the summed Brier score of the three classes, whatever
    happens (the distance to every point of a closed convex set does not grow under
    projection onto it); a clamp trusts one head entirely and has no such guarantee. The
    projected values stay in [0, 1] (means of values in [0, 1]).

    Parameters
    ----------
    rows : pl.DataFrame
        Forecast rows with ``p_c24``, ``p_m24``, ``p_x24`` (any may be null).

    Returns
    -------
    pl.DataFrame
        ``rows`` with the three columns projected (same order and other columns).
    """
    cols = ["p_c24", "p_m24", "p_x24"]
    arr = rows.select(pl.col(c).cast(pl.Float64) for c in cols).to_numpy().astype(np.float64)
    present = ~np.isnan(arr)
    filled_hi = np.where(present, arr, np.inf)
    filled_lo = np.where(present, arr, -np.inf)
    # a violation between any two present classes (nulls never violate: a null is +inf as
    # the larger class of a pair, -inf as the smaller)
    bad = ((filled_hi[:, 0] < np.maximum(filled_lo[:, 1], filled_lo[:, 2]))
           | (filled_hi[:, 1] < filled_lo[:, 2])) & (present.sum(axis=1) > 1)
    for i in np.flatnonzero(bad):
        keep = present[i]
        arr[i, keep] = _nested_projection(arr[i, keep].tolist())
    if bad.any():
        logger.info("class probabilities of %d of %d row(s) projected onto C+ >= M+ >= X+",
                    int(bad.sum()), rows.height)
    return rows.with_columns(pl.Series(c, arr[:, k]).fill_nan(None) for k, c in
                             enumerate(cols))


@dataclass(frozen=True)
class HeadlineRule:
    """Which model gives each class of the ``headline`` forecast, and its warning thresholds.

    Attributes
    ----------
    m_model : str
        Published model whose P(M+) is the headline's: the highest validation TSS (>=M in
        24 h, on the validation regions or period, ``model.json``) among the published
        models of the bundle, ties broken by validation ROC AUC, then publishing order (`flare_core.models.registry.published_specs`).
    m_tss, m_auc : float or None
        Those validation scores.
    m_threshold : float
        The decision threshold chosen with that TSS (validation, calibrated scale).
    c_model : str or None
        Published model giving P(C+) (``defn``, the only >=C forecaster), or None.
    c_threshold : float or None
        Its validation threshold.
    x_from_forest : bool
        P(X+) = P(X | M) of the flare-class forest times the headline P(M+).
    curve_model : str or None
        ``survival`` when the bundle has it: survival curve and restricted mean lifetime.
    """

    m_model: str
    m_tss: float | None
    m_auc: float | None
    m_threshold: float
    c_model: str | None
    c_threshold: float | None
    x_from_forest: bool
    curve_model: str | None

    def describe(self) -> str:
        """The rule in words, stored with every headline row (``method``) and published."""
        score = ("" if self.m_tss is None else
                 f" (best validation TSS {self.m_tss:.3f}"
                 + ("" if self.m_auc is None else f", ROC AUC {self.m_auc:.3f}") + ")")
        parts = [f"M+: {self.m_model}{score}",
                 f"C+: {self.c_model}" if self.c_model else "C+: none",
                 "X+: P(X|M) of flare_class_forest x headline M+" if self.x_from_forest
                 else "X+: none",
                 (f"survival curve and restricted mean lifetime: {self.curve_model} "
                  "(its own M+ is 1 - S(24 h))") if self.curve_model else "no survival curve",
                 "classes projected onto C+ >= M+ >= X+ (pool-adjacent-violators)",
                 "warning: strongest class with P >= its validation threshold ("
                 + ", ".join(f"{k} {v:.4g}" for k, v in (("C+", self.c_threshold),
                                                           ("M+", self.m_threshold))
                             if v is not None)
                 + "; X+ has no validated threshold, never warned)"]
        return "; ".join(parts)


def headline_rule(bundle: ModelBundle) -> HeadlineRule | None:
    """The `HeadlineRule` of a bundle (None: no published model)."""
    #: published model -> bundle model of its P(M+) (validation scores, threshold)
    m_source = {s.published: s.name for s in published_specs() if s.name in bundle.models}
    published = list(m_source)
    if not published:
        return None
    order = {n: i for i, n in enumerate(published)}

    def scores(name: str) -> tuple[float | None, float | None]:
        val = bundle.meta["models"].get(m_source[name], {}).get("validation") or {}
        tss, auc = val.get("tss"), val.get("auc")
        return (None if tss is None else float(tss)), (None if auc is None else float(auc))

    scored = [(n, *scores(n)) for n in published]
    ranked = sorted((s for s in scored if s[1] is not None),
                    key=lambda s: (-s[1], -(s[2] if s[2] is not None else -1.0), order[s[0]]))
    m_model, tss, auc = ranked[0] if ranked else (published[0], None, None)
    c_model = "defn" if "defn_c" in bundle.models and "defn" in published else None
    return HeadlineRule(
        m_model=m_model, m_tss=tss, m_auc=auc,
        m_threshold=bundle.threshold(m_source[m_model]),
        c_model=c_model,
        c_threshold=bundle.threshold("defn_c") if c_model else None,
        x_from_forest="flare_class_forest" in bundle.models,
        curve_model="survival" if "survival" in published else None,
    )


def _headline_frame(rule: HeadlineRule, frames: list[pl.DataFrame], preds: pl.DataFrame,
                    x_given_m: pl.Expr | None) -> pl.DataFrame:
    by_model = {f["model"][0]: f for f in frames if f.height}
    if rule.m_model not in by_model:
        return frames[0].clear().with_columns(pl.lit("headline").alias("model"))
    m = by_model[rule.m_model]
    base = m.select("issue_time", "harpnum", "noaa_ars", "model_version", "t_rec", "p_m24")
    cols: list[pl.Series | pl.Expr] = [
        pl.lit("headline").alias("model"),
        (by_model[rule.c_model]["p_c24"] if rule.c_model else
         pl.lit(None, pl.Float64)).alias("p_c24"),
        ((pl.col("p_m24") * pl.lit(preds.select(x_given_m).to_series()))
         if rule.x_from_forest and x_given_m is not None
         else pl.lit(None, pl.Float64)).alias("p_x24"),
        pl.lit(None, pl.Utf8).alias("warning_class"),
        pl.lit(rule.describe()).alias("method"),
    ]
    curve = by_model.get(rule.curve_model) if rule.curve_model else None
    for c, dtype in (("mean_lifetime_h", pl.Float64), ("survival_grid_h", pl.List(pl.Float64)),
                     ("survival_curve", pl.List(pl.Float64))):
        cols.append(curve[c] if curve is not None and c in curve.columns
                    else pl.lit(None, dtype).alias(c))
    return base.with_columns(cols)


def _with_headline_warning(rows: pl.DataFrame, rule: HeadlineRule) -> pl.DataFrame:
    """Headline warning class: the strongest class whose (projected) probability reaches
    its validation threshold (X+ has none); null when none does."""
    warn = pl.when(pl.col("p_m24") >= rule.m_threshold).then(pl.lit("M"))
    if rule.c_threshold is not None:
        warn = warn.when(pl.col("p_c24") >= rule.c_threshold).then(pl.lit("C"))
    return rows.with_columns(
        pl.when(pl.col("model") == "headline").then(warn.otherwise(pl.lit(None)))
        .otherwise(pl.col("warning_class")).cast(pl.Utf8).alias("warning_class"))


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
    """The survival model's values re-based from ``t_rec`` to ``issue_time``.

    With lead ``L = issue_time - t_rec`` (hours) and the record's step curve ``S`` on hours
    after ``t_rec``, the curve on hours ``u`` after the issue time is
    ``S_i(u) = S(L + u) / S(L)`` (no >=M flare in ``(t_rec, issue_time]``): published on
    ``0`` and the grid points beyond ``L`` shifted by ``-L``, with ``S_i(0) = 1``. Returns
    ``p_m24 = 1 - S_i(24)``, ``p_x24 = p_m24 * P(X | M)``, ``mean_lifetime_h`` =
    ``integral_0^(Tmax - L) S_i`` (`flare_core.models.lifetime.restricted_mean_lifetime`,
    ``Tmax`` the grid's last point), ``survival_grid_h`` and ``survival_curve``; all null
    for a row without curve, with ``S(L) = 0`` or with ``L + 24 h`` beyond ``Tmax``.
    """
    n = preds.height
    p_x_given_m = _x_given_m(preds)
    has_x = np.array([v is not None for v in p_x_given_m] if p_x_given_m is not None
                     else [False] * n, dtype=bool)
    x_given_m = np.array([np.nan if v is None else v for v in p_x_given_m or [None] * n],
                         dtype=np.float64)
    out = {c: np.full(n, np.nan) for c in ("p_m24", "p_x24", "mean_lifetime_h")}
    done = np.zeros(n, dtype=bool)
    lists: list[pl.DataFrame] = []
    lead_us = (preds["issue_time"] - preds["t_rec"]).dt.total_microseconds()
    has = (preds["survival_grid_h"].is_not_null() & preds["survival_curve"].is_not_null()
           & lead_us.is_not_null()).to_numpy()
    # rows with the same grid and lead are re-based together (the same grid points kept)
    keyed = pl.DataFrame({"_row": np.arange(n, dtype=np.int64),
                          "grid": preds["survival_grid_h"], "lead": lead_us,
                          "curve": preds["survival_curve"]}).filter(pl.Series(has))
    for part in keyed.partition_by("grid", "lead", maintain_order=True):
        idx = part["_row"].to_numpy()
        g = np.asarray(part["grid"][0], dtype=np.float64)
        if g.size and (part["curve"].list.len() == g.size).all():
            blocks = [(idx, part["curve"].explode().to_numpy().reshape(idx.size, g.size))]
        else:  # malformed: a row at a time (raising as the row would)
            blocks = [(idx[k:k + 1], np.atleast_2d(np.asarray(c, dtype=np.float64)))
                      for k, c in enumerate(part["curve"])]
        for rows, s_all in blocks:
            lists.extend(_rebase_block(rows, g, np.asarray(s_all, dtype=np.float64),
                                       part["lead"][0], x_given_m, out, done))
    grid_curve = (pl.concat(lists) if lists else pl.DataFrame(
        schema={"_row": pl.Int64, "survival_grid_h": pl.List(pl.Float64),
                "survival_curve": pl.List(pl.Float64)}))
    grid_curve = pl.DataFrame({"_row": np.arange(n, dtype=np.int64)}).join(
        grid_curve, on="_row", how="left", maintain_order="left")

    def column(name: str, keep: np.ndarray) -> pl.Series:
        values = pl.Series(name, out[name], dtype=pl.Float64)
        return values.zip_with(pl.Series(keep), pl.Series(name, [None] * n, dtype=pl.Float64))

    return pl.DataFrame([
        column("p_m24", done), column("p_x24", done & has_x),
        column("mean_lifetime_h", done),
        grid_curve["survival_grid_h"], grid_curve["survival_curve"],
    ])


def _rebase_block(rows: np.ndarray, g: np.ndarray, s: np.ndarray, lead_us: int,
                  x_given_m: np.ndarray, out: dict[str, np.ndarray], done: np.ndarray
                  ) -> list[pl.DataFrame]:
    """`_rebased_survival` of the rows ``rows`` sharing the grid ``g`` and the lead (their
    curves ``s``, one row each): writes ``out`` and ``done`` at those rows, returns the
    rows' ``_row, survival_grid_h, survival_curve`` (none when not re-based)."""
    from .models.lifetime import restricted_mean_lifetime_rows

    lead = max(lead_us / 3.6e9, 0.0)
    tmax = float(g[-1])
    j = int(np.searchsorted(g, lead, side="right")) - 1
    s_lead = np.ones(rows.size) if j < 0 else s[:, j]
    ok = ~(s_lead <= 0)  # a NaN curve goes on (and is left out as invalid later)
    if lead + 24.0 > tmax or not ok.any():
        return []
    rows, s, s_lead = rows[ok], s[ok], s_lead[ok]
    keep = g > lead
    g_i = np.r_[0.0, g[keep] - lead]
    s_i = np.concatenate([np.ones((rows.size, 1)),
                          np.clip(s[:, keep] / s_lead[:, None], 0.0, 1.0)], axis=1)
    j24 = int(np.searchsorted(g_i, 24.0, side="right")) - 1
    p = np.minimum(np.maximum(1.0 - (np.ones(rows.size) if j24 < 0 else s_i[:, j24]), 0.0),
                   1.0)
    out["p_m24"][rows] = p
    out["p_x24"][rows] = p * x_given_m[rows]
    out["mean_lifetime_h"][rows] = restricted_mean_lifetime_rows(g_i, s_i, tmax - lead)
    done[rows] = True
    list_type = pl.List(pl.Float64)
    return [pl.DataFrame([
        pl.Series("_row", rows, dtype=pl.Int64),
        pl.Series("survival_grid_h", [g_i.tolist()], dtype=list_type).new_from_index(
            0, rows.size),
        pl.Series("survival_curve", np.ascontiguousarray(s_i)).cast(list_type),
    ])]


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
