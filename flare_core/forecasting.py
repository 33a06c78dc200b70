"""Forecasts from a trained model directory: per record (`predict_records`) and per issue time
(`forecast_at`).

`ModelBundle.load` reads MODEL_DIR (written by `flare_core.training.train_all`) without
unpickling anything: each model's own ``load`` reads torch state_dicts (``weights_only``),
skops files behind an allow-list and JSON.

Time conventions: datetimes are tz-aware UTC; ``p_*24`` is the probability that a flare of at
least that class peaks in ``(t, t + 24 h]`` after the record time ``t = t_rec`` (or after
``issue_time`` for `forecast_at`); ``mean_lifetime_h`` and survival-curve times are hours
after ``t``.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .errors import ConfigError, DataGapError, DataQualityWarning, ModelError
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
        """Decision threshold of a binary model, chosen on the validation regions."""
        return float(self.meta["models"][name].get("threshold", 0.5))

    def lookback_h(self) -> float:
        """Hours of SHARP history before a record that its features (or sequences) read."""
        cfg = self.config
        need = max(cfg.window_h, cfg.long_window_h)
        for model in self.models.values():
            need = max(need, float(getattr(model, "lookback_h", 0.0) or 0.0))
            model_cfg = getattr(model, "config", None)
            need = max(need, float(getattr(model_cfg, "max_lookback_h", 0.0) or 0.0))
        return need


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


def forecast_at(
    bundle: ModelBundle,
    sharp: pl.DataFrame,
    flares: pl.DataFrame,
    issue_time: datetime,
    *,
    freshness_h: float | None = None,
) -> pl.DataFrame:
    """Forecasts issued at ``issue_time`` for every region with a fresh SHARP record.

    Strictly no look-ahead: only SHARP rows with ``t_rec <= issue_time`` and flares with
    ``peak_time < issue_time`` are read, so the result is the same whatever later data the
    frames hold. Each region's newest record at or before ``issue_time`` is used if it is at
    most ``freshness_h`` old.

    Parameters
    ----------
    bundle : ModelBundle
    sharp : pl.DataFrame
        Canonical SHARP keyword frame (`flare_core.schema`), any time range.
    flares : pl.DataFrame
        Canonical flare frame with ``harpnum`` attached, any time range.
    issue_time : datetime
        Issue time (tz-aware; converted to UTC). The forecast window is
        ``(issue_time, issue_time + 24 h]``.
    freshness_h : float, optional
        Largest age (hours) of the record used; default ``bundle.config.freshness_h``.

    Returns
    -------
    pl.DataFrame
        Rows in the schema of `flare_core.publish.forecast_store.FORECAST_SCHEMA`, one per
        (region, published model): ``issue_time, harpnum, noaa_ars, model, model_version,
        t_rec, p_c24, p_m24, p_x24, mean_lifetime_h, warning_class, survival_grid_h,
        survival_curve``. Survival times are hours after ``issue_time`` (the curve of the
        record at ``t_rec`` shifted by ``issue_time - t_rec``, which is at most
        ``freshness_h``).

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
    past = sharp.filter(pl.col("t_rec") <= issue)
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
    dataset = dataset.join(latest.select("harpnum", "_latest"), on="harpnum").filter(
        pl.col("t_rec") == pl.col("_latest")
    ).drop("_latest").sort("harpnum")
    preds = predict_records(bundle, dataset).join(
        latest.select("harpnum", "noaa_ars"), on="harpnum", how="left"
    )
    rows = _published_rows(bundle, preds, issue)
    logger.info("forecast at %s: %d regions, %d rows in %.2f s", issue.isoformat(),
                preds.height, rows.height, time.perf_counter() - t0)
    return conform_forecasts(rows)


def _published_rows(bundle: ModelBundle, preds: pl.DataFrame, issue: datetime) -> pl.DataFrame:
    frames: list[pl.DataFrame] = []
    lead_h = (pl.lit(issue) - pl.col("t_rec")).dt.total_microseconds() / 3.6e9
    for model_name, needs, cmap in _PUBLISHED:
        if needs not in bundle.models:
            continue
        cols: list[pl.Expr] = [
            pl.lit(issue).alias("issue_time"), pl.col("harpnum"), pl.col("noaa_ars"),
            pl.lit(model_name).alias("model"), pl.lit(bundle.version).alias("model_version"),
            pl.col("t_rec"),
        ]
        for target in ("p_c24", "p_m24", "p_x24", "mean_lifetime_h"):
            src = cmap.get(target)
            if src is not None and src in preds.columns:
                expr = pl.col(src)
                if target == "mean_lifetime_h":  # hours after issue_time, not after t_rec
                    expr = (expr - lead_h).clip(lower_bound=0.0)
                cols.append(expr.cast(pl.Float64).alias(target))
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
        if frame["p_c24"].null_count() < frame.height:
            # P(>=C) >= P(>=M) >= P(>=X) by definition; separately trained heads may disagree
            frame = frame.with_columns(
                pl.max_horizontal("p_m24", "p_x24").alias("p_m24")
            ).with_columns(pl.max_horizontal("p_c24", "p_m24").alias("p_c24"))
        if model_name == "survival" and "survival_curve" in preds.columns:
            frame = frame.with_columns(_shifted_curves(preds, issue))
        frames.append(frame)
    if not frames:
        raise ModelError("the bundle has no model that publishes forecasts")
    return pl.concat(frames, how="diagonal_relaxed")


def _shifted_curves(preds: pl.DataFrame, issue: datetime) -> list[pl.Series]:
    """Survival curves re-expressed in hours after ``issue`` (conditional on no flare yet).

    A record's curve S(u) is on hours ``u`` after its ``t_rec``; at ``issue = t_rec + lead``
    the curve on hours ``h`` after ``issue`` is S(lead + h) / S(lead), evaluated on the grid
    points beyond ``lead`` (linear interpolation at ``lead``).
    """
    grids: list[list[float] | None] = []
    curves: list[list[float] | None] = []
    for t_rec, grid, curve in zip(preds["t_rec"], preds["survival_grid_h"],
                                  preds["survival_curve"], strict=True):
        if grid is None or curve is None:
            grids.append(None)
            curves.append(None)
            continue
        g = np.asarray(grid, dtype=np.float64)
        s = np.asarray(curve, dtype=np.float64)
        lead = (issue - t_rec).total_seconds() / 3600.0
        if lead <= 0:
            grids.append(g.tolist())
            curves.append(s.tolist())
            continue
        s_lead = float(np.interp(lead, np.r_[0.0, g], np.r_[1.0, s]))
        keep = g > lead
        if s_lead <= 0 or not keep.any():
            grids.append(None)
            curves.append(None)
            continue
        grids.append((g[keep] - lead).tolist())
        curves.append(np.clip(s[keep] / s_lead, 0.0, 1.0).tolist())
    return [pl.Series("survival_grid_h", grids, dtype=pl.List(pl.Float64)),
            pl.Series("survival_curve", curves, dtype=pl.List(pl.Float64))]
